package admission

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/kube/webhookcert"
	"github.com/mamorisec/mamori/internal/testenv"
)

// clientPods looks pod labels up with client-go.
type clientPods struct{ client kubernetes.Interface }

func (p clientPods) Labels(ctx context.Context, namespace, name string) (map[string]string, error) {
	pod, err := p.client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return pod.Labels, nil
}

// Webhook rules of the kube-enforcer, as the Helm chart installs them.
func webhookRules() []admissionregistrationv1.RuleWithOperations {
	rule := func(ops []admissionregistrationv1.OperationType, group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{Operations: ops, Rule: admissionregistrationv1.Rule{
			APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources}}
	}
	cu := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	return []admissionregistrationv1.RuleWithOperations{
		rule(cu, "", "pods", "pods/ephemeralcontainers"),
		rule(cu, "apps", "deployments", "statefulsets", "daemonsets", "replicasets"),
		rule(cu, "batch", "jobs", "cronjobs"),
		rule([]admissionregistrationv1.OperationType{admissionregistrationv1.Connect}, "", "pods/exec", "pods/attach", "pods/portforward"),
	}
}

// startWebhook serves the handler held by h over HTTPS on 127.0.0.1 and
// registers it with the API server; it returns the webhook URL.
func startWebhook(t testing.TB, client kubernetes.Interface, h *atomic.Pointer[Handler], name string) string {
	t.Helper()
	certs, err := webhookcert.New(webhookcert.Config{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, ValidatingWebhook: name})
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.Load().ServeHTTP(w, r) })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	url := "https://" + l.Addr().String() + "/validate"

	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	timeout := int32(5)
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "validate.kube-enforcer.mamori.dev", SideEffects: &none, FailurePolicy: &fail, TimeoutSeconds: &timeout,
			AdmissionReviewVersions: []string{"v1"},
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules:                   webhookRules(),
		}}}
	ctx := context.Background()
	if _, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	// The CA bundle is patched in by webhookcert, as in a cluster.
	if err := certs.Sync(ctx, client); err != nil {
		t.Fatal(err)
	}
	return url
}

func TestKubeAPIServerAdmission(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	rc, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(rc)
	ctx := context.Background()

	verdicts := &stubVerdicts{table: map[string]string{"registry.example/good:1": VerdictPass, "registry.example/bad:1": VerdictFail}}
	rules := &ExecRules{Rules: []ExecRule{{Name: "protect-web", Mode: Enforce, Labels: map[string]string{"run": "web"}, AllowedProcesses: []string{"/bin/date"}}}}
	sink := &memSink{}
	var queues []*Queue
	newHandler := func(cfg Config) *Handler {
		q := NewQueue(sink, 1000)
		queues = append(queues, q)
		h, err := NewHandler(cfg, verdicts, rules, clientPods{client}, q)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var h atomic.Pointer[Handler]
	h.Store(newHandler(Config{}))
	startWebhook(t, client, &h, "mamori-kube-enforcer-test")

	ns := "admission-e2e"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubectl := func(args ...string) (string, error) {
		out, err := exec.Command(k.Kubectl, append([]string{"--kubeconfig", k.Kubeconfig}, args...)...).CombinedOutput()
		return string(out), err
	}

	// The API server picks the webhook configuration up asynchronously:
	// wait until the bad image is denied.
	var out string
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err = kubectl("-n", ns, "run", "bad", "--image=registry.example/bad:1", "--restart=Never")
		if err != nil || time.Now().After(deadline) {
			break
		}
		kubectl("-n", ns, "delete", "pod", "bad", "--wait=false")
		time.Sleep(200 * time.Millisecond)
	}
	if err == nil || !strings.Contains(out, "admission webhook") || !strings.Contains(out, "CVE-2024-0001 is CRITICAL") {
		t.Fatalf("kubectl run with a failing image: %v\n%s", err, out)
	}
	t.Logf("bad image: %s", out)

	if out, err := kubectl("-n", ns, "run", "web", "--image=registry.example/good:1", "--restart=Never"); err != nil {
		t.Fatalf("compliant image denied: %v\n%s", err, out)
	} else if !strings.Contains(out, "mamori audit") {
		t.Errorf("audited posture violations not shown as warnings:\n%s", out)
	}

	if out, err := kubectl("-n", ns, "run", "new", "--image=registry.example/new:1", "--restart=Never"); err == nil || !strings.Contains(out, "not yet scanned") {
		t.Errorf("unscanned image: %v\n%s", err, out)
	}

	// exec into a protected pod: the API server runs admission on the
	// CONNECT before it looks for the pod's node.
	out, err = kubectl("-n", ns, "exec", "web", "--", "/bin/sh", "-c", "id")
	if err == nil || !strings.Contains(out, `exec of \"/bin/sh\"`) && !strings.Contains(out, `exec of "/bin/sh"`) {
		t.Errorf("kubectl exec into a protected pod: %v\n%s", err, out)
	}
	t.Logf("exec denied: %s", out)
	// An allowed process passes admission and then fails for want of a node.
	out, err = kubectl("-n", ns, "exec", "web", "--", "/bin/date")
	if err == nil || strings.Contains(out, "mamori denied") {
		t.Errorf("kubectl exec of an allowed process: %v\n%s", err, out)
	}
	t.Logf("allowed exec: %s", out)
	// kubectl port-forward and attach refuse a pod that is not running
	// before asking the API server, so they are sent as plain CONNECT
	// requests; admission answers before any upgrade.
	for _, sub := range []string{"portforward", "attach"} {
		err := client.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name("web").SubResource(sub).Do(ctx).Error()
		if err == nil || !strings.Contains(err.Error(), "pod "+ns+"/web is protected") {
			t.Errorf("%s into a protected pod: %v", sub, err)
		}
	}

	// kube-system is bypassed.
	if out, err := kubectl("-n", "kube-system", "run", "bad", "--image=registry.example/bad:1", "--restart=Never"); err != nil {
		t.Errorf("kube-system not bypassed: %v\n%s", err, out)
	}
	t.Cleanup(func() { kubectl("-n", "kube-system", "delete", "pod", "bad", "--wait=false") })

	// A Deployment with a bad image.
	out, err = kubectl("-n", ns, "create", "deployment", "bad", "--image=registry.example/bad:1")
	if err == nil || !strings.Contains(out, "registry.example/bad:1 fails its assurance policy") {
		t.Errorf("deployment with a failing image: %v\n%s", err, out)
	}
	// A CronJob too (client-go, to check the nested template).
	out, err = kubectl("-n", ns, "create", "cronjob", "bad", "--image=registry.example/bad:1", "--schedule=* * * * *")
	if err == nil || !strings.Contains(out, "fails its assurance policy") {
		t.Errorf("cronjob with a failing image: %v\n%s", err, out)
	}
	// A privileged pod.
	out, err = kubectl("-n", ns, "run", "priv", "--image=registry.example/good:1", "--restart=Never", "--privileged")
	if err == nil || !strings.Contains(out, "[privileged]") {
		t.Errorf("privileged pod: %v\n%s", err, out)
	}

	// Audit mode admits and records.
	h.Store(newHandler(Config{Mode: Audit}))
	out, err = kubectl("-n", ns, "run", "bad-audited", "--image=registry.example/bad:1", "--restart=Never")
	if err != nil || !strings.Contains(out, "mamori audit [image-assurance]") {
		t.Errorf("audit mode: %v\n%s", err, out)
	}
	for _, q := range queues {
		q.Close()
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	var audited, blocked bool
	for _, e := range sink.events {
		if e.Pod == "bad-audited" && e.Status == fleet.StatusDetect && e.Control == ControlImage && e.Image == "registry.example/bad:1" {
			audited = true
		}
		if e.Pod == "web" && e.Status == fleet.StatusBlock && e.Control == ControlExec && e.Process.Path == "/bin/sh" {
			blocked = true
		}
	}
	if !audited || !blocked {
		var lines []string
		for _, e := range sink.events {
			lines = append(lines, fmt.Sprintf("%s %s %s %s %s", e.Status, e.Control, e.Pod, e.Image, e.Message))
		}
		t.Errorf("events: audited image %v, blocked exec %v:\n%s", audited, blocked, strings.Join(lines, "\n"))
	}
	if !slices.ContainsFunc(sink.events, func(e fleet.Event) bool { return e.Status == StatusAllow && e.Pod == "web" }) {
		t.Error("no allow event for the admitted pod")
	}
}
