package admissionbench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/kube/admission"
	"github.com/mamorisec/mamori/internal/kube/webhookcert"
	"github.com/mamorisec/mamori/internal/testenv"
)

var (
	rate     = flag.Int("rate", 200, "requests per second")
	duration = flag.Duration("duration", 30*time.Second, "how long to send requests at the rate")
)

// table is the benchmark's image verdicts: an in-memory table, so the
// figures are those of the handler, TLS and the API server, not of the
// console server.
type table map[string]string

func (t table) Verdict(_ context.Context, image string) (string, []string, error) {
	if s, ok := t[image]; ok {
		return s, []string{"max_severity: CVE-2024-0001 is CRITICAL"}, nil
	}
	return admission.VerdictUnknown, nil, nil
}

// discard is an event sink that drops events.
type discard struct{}

func (discard) Send(context.Context, []fleet.Event) error { return nil }

// timedHandler records how long the handler takes per request.
type timedHandler struct {
	h  http.Handler
	mu sync.Mutex
	d  []time.Duration
}

func (t *timedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	t.h.ServeHTTP(w, r)
	d := time.Since(start)
	t.mu.Lock()
	t.d = append(t.d, d)
	t.mu.Unlock()
}

func (t *timedHandler) take() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.d
	t.d = nil
	return d
}

// pod returns a compliant pod, or one with a failing image.
func pod(i int) *corev1.Pod {
	img := "registry.example/good:1"
	if i%10 == 0 {
		img = "registry.example/bad:1"
	}
	yes, no := true, false
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i), Namespace: "bench", Labels: map[string]string{"app": "bench"}},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: &no,
			Containers: []corev1.Container{{
				Name: "app", Image: img,
				SecurityContext: &corev1.SecurityContext{RunAsNonRoot: &yes, ReadOnlyRootFilesystem: &yes},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
			}},
		},
	}
}

// load calls do at the rate for the duration (open loop: a slow answer
// does not delay the next request) and returns the latencies and errors.
func load(do func(i int) error) ([]time.Duration, int) {
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs atomic.Int64
		wg   sync.WaitGroup
	)
	interval := time.Second / time.Duration(*rate)
	start := time.Now()
	n := int(*duration / interval)
	for i := range n {
		// Send on schedule: a late wake-up sends the missed requests at
		// once instead of lowering the rate.
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		wg.Go(func() {
			start := time.Now()
			if err := do(i); err != nil {
				if errs.Add(1) == 1 {
					fmt.Fprintf(os.Stderr, "first error: %v\n", err)
				}
				return
			}
			d := time.Since(start)
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	return lat, int(errs.Load())
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func report(name string, d []time.Duration, errs int) {
	fmt.Printf("%-58s n=%-6d errors=%-4d p50=%-10s p99=%-10s max=%s\n", name, len(d), errs,
		pct(d, 0.50).Round(time.Microsecond), pct(d, 0.99).Round(time.Microsecond), pct(d, 1).Round(time.Microsecond))
}

func TestAdmissionLatency(t *testing.T) {
	if os.Getenv("MAMORI_BENCH") != "1" {
		t.Skip("benchmark: run bench/admission/run.sh (MAMORI_BENCH=1)")
	}
	q := admission.NewQueue(discard{}, 10000)
	defer q.Close()
	h, err := admission.NewHandler(admission.Config{}, table{"registry.example/good:1": admission.VerdictPass, "registry.example/bad:1": admission.VerdictFail}, nil, nil, q)
	if err != nil {
		t.Fatal(err)
	}
	timed := &timedHandler{h: h}
	certs, err := webhookcert.New(webhookcert.Config{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, ValidatingWebhook: "mamori-bench"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: certs.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: timed}
	go srv.Serve(l)
	defer srv.Close()
	url := "https://" + l.Addr().String() + "/validate"
	fmt.Printf("admission latency at %d requests/s for %s (%d CPUs, GOMAXPROCS %d)\n", *rate, *duration, runtime.NumCPU(), runtime.GOMAXPROCS(0))

	// 1. AdmissionReview POSTs over HTTPS (keep-alive connections, as the
	// API server uses).
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certs.CABundle())
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 100}}
	bodies := make([][]byte, 10)
	for i := range bodies {
		raw, _ := json.Marshal(pod(i))
		bodies[i], _ = json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{
				UID: types.UID(fmt.Sprintf("uid-%d", i)), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
				Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: "bench", Name: fmt.Sprintf("bench-%d", i),
				Operation: admissionv1.Create, Object: kruntime.RawExtension{Raw: raw},
			},
		})
	}
	lat, errs := load(func(i int) error {
		resp, err := client.Post(url, "application/json", bytes.NewReader(bodies[i%len(bodies)]))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(b, &out); err != nil || out.Response == nil {
			return fmt.Errorf("bad answer %s: %v", b, err)
		}
		if out.Response.Allowed != (i%10 != 0) {
			return fmt.Errorf("request %d: allowed %v", i, out.Response.Allowed)
		}
		return nil
	})
	report("direct HTTPS AdmissionReview POST (client round trip)", lat, errs)
	report("direct: time in the handler", timed.take(), 0)

	// 2. Through the API server: Pod creates with dry-run=All, which call
	// the validating webhook and store nothing.
	if os.Getenv("MAMORI_KUBE_BIN") == "" {
		if _, err := os.Stat(testenv.KubeBinDir()); err != nil {
			fmt.Printf("API server stage skipped: no binaries in %s (run scripts/build-kube.sh)\n", testenv.KubeBinDir())
			return
		}
	}
	k := testenv.KubeAPIServer(t)
	rc, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = float32(*rate*5), *rate*5
	kc := kubernetes.NewForConfigOrDie(rc)
	ctx := context.Background()
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "mamori-bench"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "validate.kube-enforcer.mamori.dev", SideEffects: &none, FailurePolicy: &fail, AdmissionReviewVersions: []string{"v1"},
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
		}}}
	if _, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, "mamori-bench", metav1.DeleteOptions{})
	if err := certs.Sync(ctx, kc); err != nil {
		t.Fatal(err)
	}
	create := func(i int) error {
		_, err := kc.CoreV1().Pods("bench").Create(ctx, pod(i), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if i%10 == 0 {
			if err == nil {
				return fmt.Errorf("pod %d with a failing image admitted", i)
			}
			return nil
		}
		return err
	}
	// Wait until the API server calls the webhook (it loads webhook
	// configurations asynchronously), then measure the whole create and
	// the handler's share of it.
	deadline := time.Now().Add(30 * time.Second)
	for create(0) != nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if create(0) != nil {
		t.Fatal("the API server does not call the webhook")
	}
	timed.take()
	before := webhookBuckets(t, kc)
	lat, errs = load(create)
	after := webhookBuckets(t, kc)
	report("API server: dry-run Pod create (client-go round trip)", lat, errs)
	report("API server: time in the handler", timed.take(), 0)
	// The API server's own measure of the webhook call (its histogram
	// apiserver_admission_webhook_admission_duration_seconds).
	total := after["+Inf"] - before["+Inf"]
	for _, le := range []string{"0.005", "0.025", "0.1"} {
		if total > 0 {
			fmt.Printf("API server: webhook calls under %ss as the API server measures them: %.2f%% of %d\n", le, 100*(after[le]-before[le])/total, int(total))
		}
	}
}

// webhookBuckets reads the API server's webhook latency histogram for the
// benchmark webhook, summed over its labels, by bucket bound.
func webhookBuckets(t *testing.T, kc kubernetes.Interface) map[string]float64 {
	t.Helper()
	raw, err := kc.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("reading the API server's metrics: %v", err)
	}
	b := map[string]float64{}
	for line := range strings.Lines(string(raw)) {
		if !strings.HasPrefix(line, "apiserver_admission_webhook_admission_duration_seconds_bucket{") ||
			!strings.Contains(line, `name="validate.kube-enforcer.mamori.dev"`) {
			continue
		}
		i := strings.Index(line, `le="`)
		j := strings.LastIndex(line, " ")
		if i < 0 || j < 0 {
			continue
		}
		le := line[i+4:]
		le = le[:strings.IndexByte(le, '"')]
		v, err := strconv.ParseFloat(strings.TrimSpace(line[j+1:]), 64)
		if err == nil {
			b[le] += v
		}
	}
	return b
}
