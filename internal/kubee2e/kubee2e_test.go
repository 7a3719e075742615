package kubee2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mamorisec/mamori/internal/demo"
	"github.com/mamorisec/mamori/internal/kube/admission"
	"github.com/mamorisec/mamori/internal/kube/enforcer"
	"github.com/mamorisec/mamori/internal/server"
	"github.com/mamorisec/mamori/internal/testenv"
	"github.com/mamorisec/mamori/internal/vulndb"
)

// console is a real console server on SQLite served over HTTPS, with an
// administrator session for the test's own calls.
type console struct {
	t      *testing.T
	h      http.Handler
	https  *httptest.Server
	pool   *x509.CertPool
	cookie *http.Cookie
	csrf   string
}

// call sends a request to the server as the administrator and returns the
// status and body.
func (c *console) call(method, path string, body any) (int, []byte) {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(method, "https://console.example"+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://console.example")
	if c.cookie != nil {
		req.AddCookie(c.cookie)
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, req)
	if c.cookie == nil {
		for _, ck := range w.Result().Cookies() {
			c.cookie = ck
		}
	}
	return w.Code, w.Body.Bytes()
}

// must calls and decodes the answer into out, failing unless the status
// is want.
func (c *console) must(want int, method, path string, body, out any) {
	c.t.Helper()
	code, b := c.call(method, path, body)
	if code != want {
		c.t.Fatalf("%s %s: %d %s", method, path, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// startConsole starts the server with the demo vulnerability database and
// logs in as the first administrator.
func startConsole(t *testing.T) *console {
	dir := t.TempDir()
	feed := filepath.Join(dir, "feed")
	if err := demo.WriteFeed(feed); err != nil {
		t.Fatal(err)
	}
	b := vulndb.NewBuilder()
	if _, err := b.AddPath("demo", "demo feed", feed); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "vuln.db")
	if _, err := b.Write(dbPath, time.Now()); err != nil {
		t.Fatal(err)
	}
	var adminPwd string
	srv, err := server.New(context.Background(), server.Config{
		DataDir: filepath.Join(dir, "data"), VulnDB: dbPath,
		Log:      slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		FirstRun: func(_, pw string) { adminPwd = pw },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := &console{t: t, h: srv.Handler()}
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	c.must(http.StatusOK, "POST", "/api/v1/auth/login", map[string]string{"username": "admin", "password": adminPwd}, &login)
	c.csrf = login.CSRF
	srv.Start()
	c.https = httptest.NewTLSServer(c.h)
	t.Cleanup(c.https.Close)
	c.pool = x509.NewCertPool()
	c.pool.AddCert(c.https.Certificate())
	return c
}

// push writes img to ref in the registry.
func push(t *testing.T, ref string, img v1.Image) {
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}

// demoImage returns the demo image (malware, vulnerable packages).
func demoImage(t *testing.T) v1.Image {
	lay := filepath.Join(t.TempDir(), "layout")
	if err := demo.Write(lay, ""); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// webhook registers the kube-enforcer's validating webhook at url, with
// no CA bundle: the kube-enforcer patches it in.
func webhook(t *testing.T, client kubernetes.Interface, name, url string) {
	rule := func(ops []admissionregistrationv1.OperationType, group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{Operations: ops, Rule: admissionregistrationv1.Rule{
			APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources}}
	}
	cu := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	timeout := int32(5)
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "validate.kube-enforcer.mamori.dev", SideEffects: &none, FailurePolicy: &fail, TimeoutSeconds: &timeout,
			AdmissionReviewVersions: []string{"v1"},
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules: []admissionregistrationv1.RuleWithOperations{
				rule(cu, "", "pods", "pods/ephemeralcontainers"),
				rule(cu, "apps", "deployments", "statefulsets", "daemonsets", "replicasets"),
				rule(cu, "batch", "jobs", "cronjobs"),
				rule([]admissionregistrationv1.OperationType{admissionregistrationv1.Connect}, "", "pods/exec", "pods/attach", "pods/portforward"),
			},
		}}}
	ctx := context.Background()
	if _, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, vwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// running is one kube-enforcer started by the test.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's error
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("kube-enforcer: %v", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the kube-enforcer did not stop")
	}
}

// start runs the kube-enforcer on addr until stopped.
func start(t *testing.T, addr string, cfg enforcer.Config) *running {
	t.Helper()
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ { // the previous run's port may linger briefly
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener = l
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = enforcer.Run(ctx, cfg)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// eventually retries f every 200ms until it returns nil or 60s passed.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestKubeEnforcerEndToEnd runs the kube-enforcer against the real API
// server and console server and drives it with kubectl.
func TestKubeEnforcerEndToEnd(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	reg := testenv.Distribution(t, false)
	c := startConsole(t)
	ctx := context.Background()

	// Images: the demo image carries malware; a random image is clean.
	bad, good := reg.Host+"/team/demo:1", reg.Host+"/team/clean:1"
	push(t, bad, demoImage(t))
	clean, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	push(t, good, clean)

	// The console: a registry, a malware assurance policy, both images
	// scanned, an enforcer group with its enrollment token, the
	// kube-enforcer's API token, and a runtime policy blocking exec in the
	// payments namespace.
	c.must(http.StatusCreated, "POST", "/api/v1/registries", map[string]any{"name": "local", "url": "http://" + reg.Host, "authType": "none"}, nil)
	policy := json.RawMessage(`{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"baseline","controls":{"disallow_malware":true}}`)
	if code, _ := c.call("POST", "/api/v1/policies/assurance", map[string]any{"name": "baseline", "definition": policy}); code != http.StatusCreated {
		c.must(http.StatusOK, "PUT", "/api/v1/policies/assurance/baseline", map[string]any{"definition": policy}, nil)
	}
	var tok struct{ Token string }
	c.must(http.StatusCreated, "POST", "/api/v1/tokens", map[string]any{"name": "kube-enforcer",
		"scopes": []string{"images:view", "scans:view", "enforcers:edit"}, "ttl": "1h"}, &tok)
	var group struct{ Token string }
	c.must(http.StatusCreated, "POST", "/api/v1/enforcer-groups", map[string]any{"name": "clusters",
		"settings": map[string]bool{"auditOnly": false, "containerProtection": true}}, &group)
	c.must(http.StatusCreated, "POST", "/api/v1/runtime-policies", json.RawMessage(`{"name":"payments-no-exec","enabled":true,"mode":"enforce",
		"criteria":"namespace == \"payments\"","controls":{"blockExec":{"allowedProcesses":["/usr/bin/env"]}}}`), nil)
	for _, ref := range []string{bad, good} {
		c.must(http.StatusAccepted, "POST", "/api/v1/scans", map[string]string{"image": ref}, nil)
	}
	verdicts := &admission.ServerVerdicts{URL: c.https.URL, Token: tok.Token, TTL: time.Nanosecond,
		Client: c.https.Client()}
	for ref, want := range map[string]string{bad: admission.VerdictFail, good: admission.VerdictPass} {
		eventually(t, "scan of "+ref, func() error {
			status, reasons, err := verdicts.Verdict(ctx, ref)
			if err != nil {
				return err
			}
			if status != want {
				return fmt.Errorf("verdict %s %q, want %s", status, reasons, want)
			}
			return nil
		})
	}

	// The cluster side.
	rc, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"apps", "payments"} {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kubectl := func(args ...string) (string, error) {
		out, err := exec.Command(k.Kubectl, append([]string{"--kubeconfig", k.Kubeconfig}, args...)...).CombinedOutput()
		return string(out), err
	}
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	const vwcName = "mamori-kube-enforcer-e2e"
	webhook(t, client, vwcName, "https://"+addr+"/validate")

	stateDir := t.TempDir()
	base := enforcer.Config{Kube: client, Admission: admission.DefaultConfig(), Cluster: "e2e-cluster", Version: "e2e",
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, ValidatingWebhook: vwcName,
		Server: c.https.URL, ServerCA: c.pool, Token: tok.Token, EnrollmentToken: group.Token, StateDir: stateDir,
		HeartbeatInterval: 500 * time.Millisecond, CertCheckInterval: time.Second, Debounce: 200 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))}
	run := start(t, addr, base)

	// The kube-enforcer patches its CA bundle in; the API server then
	// picks the configuration up asynchronously.
	eventually(t, "CA bundle", func() error {
		v, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, vwcName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(v.Webhooks[0].ClientConfig.CABundle) == 0 {
			return errors.New("no caBundle yet")
		}
		return nil
	})
	eventually(t, "kubectl run of the malware image denied", func() error {
		out, err := kubectl("-n", "apps", "run", "bad", "--image="+bad, "--restart=Never", "--dry-run=server")
		if err == nil || !strings.Contains(out, "disallow_malware") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	out, err := kubectl("-n", "apps", "run", "bad", "--image="+bad, "--restart=Never")
	if err == nil || !strings.Contains(out, "mamori denied") || !strings.Contains(out, "disallow_malware") {
		t.Fatalf("kubectl run of the malware image: %v\n%s", err, out)
	}
	t.Logf("malware image denied: %s", out)

	// The clean image is admitted (audit-mode posture controls warn).
	if out, err := kubectl("-n", "apps", "run", "good", "--image="+good, "--restart=Never"); err != nil {
		t.Fatalf("clean image denied: %v\n%s", err, out)
	}
	if out, err := kubectl("-n", "payments", "run", "pay", "--image="+good, "--restart=Never"); err != nil {
		t.Fatalf("clean image denied in payments: %v\n%s", err, out)
	}

	// A Deployment with the malware image is denied.
	out, err = kubectl("-n", "apps", "create", "deployment", "bad", "--image="+bad)
	if err == nil || !strings.Contains(out, "disallow_malware") {
		t.Errorf("Deployment with the malware image: %v\n%s", err, out)
	}

	// kube-system is bypassed (the bundle's bypass and the default).
	if out, err := kubectl("-n", "kube-system", "run", "bad-e2e", "--image="+bad, "--restart=Never"); err != nil {
		t.Errorf("kube-system not bypassed: %v\n%s", err, out)
	} else {
		t.Cleanup(func() { kubectl("-n", "kube-system", "delete", "pod", "bad-e2e", "--wait=false") })
	}

	// exec: the runtime policy from the server blocks a shell in payments;
	// the allowed process passes admission (and then fails for want of a
	// node); the same exec outside the policy's scope passes admission.
	eventually(t, "kubectl exec denied by the runtime policy", func() error {
		out, err := kubectl("-n", "payments", "exec", "pay", "--", "/bin/sh", "-c", "id")
		if err == nil || !strings.Contains(out, "payments-no-exec") || !strings.Contains(out, "not an allowed process") {
			return fmt.Errorf("%v: %s", err, out)
		}
		t.Logf("exec denied: %s", out)
		return nil
	})
	for _, tc := range [][]string{{"payments", "pay", "/usr/bin/env"}, {"apps", "good", "/bin/sh"}} {
		out, err := kubectl("-n", tc[0], "exec", tc[1], "--", tc[2])
		if err == nil || strings.Contains(out, "mamori denied") || strings.Contains(out, "denied the request") {
			t.Errorf("exec of %s into %s/%s: %v\n%s", tc[2], tc[0], tc[1], err, out)
		}
	}

	// Discovery: a running pod appears in the server's inventory.
	if out, err := kubectl("-n", "apps", "patch", "pod", "good", "--subresource=status", "--type=merge",
		"-p", `{"status":{"phase":"Running"}}`); err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	eventually(t, "inventory", func() error {
		var inv struct {
			Namespaces []struct {
				Namespace string
				Workloads []struct {
					Kind, Name, Cluster string
					Pods                []struct {
						Name   string
						Images []string
					}
				}
			}
		}
		code, body := c.call("GET", "/api/v1/inventory", nil)
		if code != http.StatusOK {
			return fmt.Errorf("%d %s", code, body)
		}
		json.Unmarshal(body, &inv)
		for _, ns := range inv.Namespaces {
			for _, w := range ns.Workloads {
				if ns.Namespace == "apps" && w.Name == "good" && w.Kind == "Pod" && len(w.Pods) == 1 && w.Pods[0].Images[0] == good {
					return nil
				}
			}
		}
		return fmt.Errorf("pod apps/good not in %s", body)
	})

	// The agent enrolled as a kube-enforcer and reports its capabilities.
	var agents struct {
		Items []struct {
			ID, Kind, Hostname string
			Capabilities       []struct{ Name string }
		}
	}
	eventually(t, "agent", func() error {
		c.must(http.StatusOK, "GET", "/api/v1/agents", nil, &agents)
		if len(agents.Items) != 1 || agents.Items[0].Kind != "kube-enforcer" || agents.Items[0].Hostname != "e2e-cluster" {
			return fmt.Errorf("agents %+v", agents)
		}
		return nil
	})

	// The denials are in the server's audit trail.
	trail := func(typ, control, pod string) error {
		var page struct {
			Items []struct {
				Action string
				After  json.RawMessage
			}
		}
		c.must(http.StatusOK, "GET", "/api/v1/runtime-events?type="+typ+"&limit=100", nil, &page)
		for _, e := range page.Items {
			var ev struct{ Control, Pod, Namespace string }
			json.Unmarshal(e.After, &ev)
			if ev.Control == control && ev.Pod == pod {
				return nil
			}
		}
		return fmt.Errorf("no %s event of %s for pod %s in %d events", typ, control, pod, len(page.Items))
	}
	eventually(t, "image denial in the audit trail", func() error { return trail("runtime.block", admission.ControlImage, "bad") })
	eventually(t, "exec denial in the audit trail", func() error { return trail("runtime.block", admission.ControlExec, "pay") })
	// Admitted requests are decisions too: they are in the trail as well.
	eventually(t, "admission of the clean pod in the audit trail", func() error { return trail("runtime.allow", "admission", "good") })
	run.stop(t)

	// Audit mode, restarted with the same state directory (no second
	// enrollment): the malware image is admitted with a warning and the
	// decision is recorded as a detection.
	audit := base
	audit.Admission.Mode = admission.Audit
	run = start(t, addr, audit)
	eventually(t, "audit mode", func() error {
		out, err := kubectl("-n", "apps", "run", "audited", "--image="+bad, "--restart=Never")
		if err != nil || !strings.Contains(out, "disallow_malware") {
			return fmt.Errorf("%v: %s", err, out)
		}
		t.Logf("audit mode: %s", out)
		return nil
	})
	eventually(t, "audit-mode detection in the audit trail", func() error {
		return trail("runtime.detect", admission.ControlImage, "audited")
	})
	c.must(http.StatusOK, "GET", "/api/v1/agents", nil, &agents)
	if len(agents.Items) != 1 {
		t.Errorf("the restarted kube-enforcer enrolled again: %+v", agents)
	}
	run.stop(t)

	// The real command, `mamori kube-enforcer`, with the same state
	// directory: it serves the webhook, patches the CA bundle and denies.
	binary(t, addr, c, k.Kubeconfig, tok.Token, stateDir, vwcName, func() {
		eventually(t, "mamori kube-enforcer denies the malware image", func() error {
			out, err := kubectl("-n", "apps", "run", "bad-binary", "--image="+bad, "--restart=Never", "--dry-run=server")
			if err == nil || !strings.Contains(out, "disallow_malware") {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		eventually(t, "mamori kube-enforcer denies exec", func() error {
			out, err := kubectl("-n", "payments", "exec", "pay", "--", "/bin/sh")
			if err == nil || !strings.Contains(out, "payments-no-exec") {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	})
	c.must(http.StatusOK, "GET", "/api/v1/agents", nil, &agents)
	if len(agents.Items) != 1 {
		t.Errorf("mamori kube-enforcer enrolled again: %+v", agents)
	}

	// The server is unreachable: the exec block keeps working from the
	// policy bundle cached in the state directory, and the image gate
	// falls back to images.onError.
	c.https.Close()
	down := base
	down.Server = "https://" + c.https.Listener.Addr().String()
	down.Admission.Images.OnError = "deny"
	run = start(t, addr, down)
	out, err = kubectl("-n", "payments", "exec", "pay", "--", "/bin/sh")
	if err == nil || !strings.Contains(out, "payments-no-exec") {
		t.Errorf("exec with the server down: %v\n%s", err, out)
	}
	out, err = kubectl("-n", "apps", "run", "unreachable", "--image="+good, "--restart=Never", "--dry-run=server")
	if err == nil || !strings.Contains(out, "mamori denied") {
		t.Errorf("image gate with the server down and onError deny: %v\n%s", err, out)
	}
	t.Logf("server down: %s", out)
	run.stop(t)
}

// binary builds cmd/mamori, runs `mamori kube-enforcer` on addr with the
// given server, token and state, calls check, then stops it with SIGTERM
// and expects a clean exit.
func binary(t *testing.T, addr string, c *console, kubeconfig, token, stateDir, vwc string, check func()) {
	t.Helper()
	goCmd := testenv.NeedCommand(t, "go")
	dir := t.TempDir()
	bin := filepath.Join(dir, "mamori")
	build := exec.Command(goCmd, "build", "-o", bin, "./cmd/mamori")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tokenFile, caFile := filepath.Join(dir, "token"), filepath.Join(dir, "server-ca.crt")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.https.Certificate().Raw})
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(dir, "kube-enforcer.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	cmd := exec.Command(bin, "kube-enforcer", "--kubeconfig", kubeconfig, "--cluster", "e2e-cluster",
		"--webhook-addr", addr, "--webhook-ip", "127.0.0.1", "--webhook-configuration", vwc,
		"--server", c.https.URL, "--server-ca", caFile, "--token-file", tokenFile,
		"--state-dir", stateDir, "--log-format", "text")
	cmd.Stdout, cmd.Stderr = logs, logs
	for i := 0; i < 50; i++ { // wait for the previous run's port to be free
		l, lerr := net.Listen("tcp", addr)
		if err = lerr; err == nil {
			l.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed when the process is gone
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	defer func() {
		if t.Failed() {
			out, _ := os.ReadFile(logs.Name())
			t.Logf("mamori kube-enforcer output:\n%s", out)
		}
	}()
	defer func() {
		cmd.Process.Kill() // an error only says it already exited
		<-exited
	}()
	check()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("mamori kube-enforcer exited with %v", waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Error("mamori kube-enforcer did not stop on SIGTERM")
	}
}
