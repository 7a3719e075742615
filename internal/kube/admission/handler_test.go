package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/mamorisec/mamori/internal/fleet"
)

// stubVerdicts is an image verdict table.
type stubVerdicts struct {
	mu      sync.Mutex
	table   map[string]string // image → pass|fail; missing → unknown
	fail    error
	scanned []string
}

func (s *stubVerdicts) Verdict(_ context.Context, image string) (string, []string, error) {
	if s.fail != nil {
		return "", nil, s.fail
	}
	switch s.table[image] {
	case VerdictPass:
		return VerdictPass, nil, nil
	case VerdictFail:
		return VerdictFail, []string{"max_severity: CVE-2024-0001 is CRITICAL"}, nil
	}
	return VerdictUnknown, nil, nil
}

func (s *stubVerdicts) RequestScan(_ context.Context, image string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scanned = append(s.scanned, image)
	return nil
}

// memSink collects events.
type memSink struct {
	mu     sync.Mutex
	events []fleet.Event
}

func (m *memSink) Send(_ context.Context, evs []fleet.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, evs...)
	return nil
}

type stubPods map[string]map[string]string

func (p stubPods) Labels(_ context.Context, ns, name string) (map[string]string, error) {
	l, ok := p[ns+"/"+name]
	if !ok {
		return nil, errors.New("not found")
	}
	return l, nil
}

// review builds an AdmissionReview JSON body.
func review(op, group, version, kind, resource, sub, ns, name, object string) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
"uid":"u-1","kind":{"group":%q,"version":%q,"kind":%q},"resource":{"group":%q,"version":%q,"resource":%q},
"subResource":%q,"namespace":%q,"name":%q,"operation":%q,"userInfo":{"username":"alice"},"object":%s}}`,
		group, version, kind, group, version, resource, sub, ns, name, op, object)
}

// compliantContainer is a container that passes every posture control.
const compliantContainer = `"securityContext":{"runAsNonRoot":true,"readOnlyRootFilesystem":true},"resources":{"limits":{"cpu":"1","memory":"64Mi"}}`

func pod(extraSpec string, containers ...string) string {
	var cs []string
	for _, c := range containers {
		cs = append(cs, "{"+c+"}")
	}
	return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"app"},"spec":{"automountServiceAccountToken":false,` + extraSpec + `"containers":[` + strings.Join(cs, ",") + `]}}`
}

func image(name string) string {
	return fmt.Sprintf(`"name":"c","image":%q,`, name) + compliantContainer
}

func TestReview(t *testing.T) {
	verdicts := &stubVerdicts{table: map[string]string{
		"registry.example/good:1":      VerdictPass,
		"registry.example/bad:1":       VerdictFail,
		"registry.example/good":        VerdictPass,
		"registry.example/good:latest": VerdictPass,
	}}
	podTemplate := `{"metadata":{"labels":{"app":"x"}},"spec":{"automountServiceAccountToken":false,"containers":[{` + image("registry.example/bad:1") + `}]}}`
	execRules := &ExecRules{Rules: []ExecRule{{Name: "protect-db", Mode: Enforce, Labels: map[string]string{"tier": "db"}, AllowedProcesses: []string{"/usr/bin/pg_dump", "pg_isready"}}}}
	pods := stubPods{"app/db-0": {"tier": "db"}, "app/web-0": {"tier": "web"}, "app/sys": {"tier": "db", PodLabelNamespace: "kube-system"}}

	tests := []struct {
		name    string
		config  Config
		body    []byte
		allowed bool
		message string   // substring of the denial
		warn    string   // substring of a warning
		status  []string // statuses of the recorded events
	}{
		{"compliant pod", Config{}, review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", pod("", image("registry.example/good:1"))), true, "", "", []string{StatusAllow}},
		{"failing image", Config{}, review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", pod("", image("registry.example/bad:1"))), false, "CVE-2024-0001 is CRITICAL", "", []string{fleet.StatusBlock}},
		{"unscanned image denied", Config{}, review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", pod("", image("registry.example/new:1"))), false, "not yet scanned", "", []string{fleet.StatusBlock}},
		{"unscanned image allowed", Config{Images: ImageGate{Unscanned: UnscannedAllow}}, review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", pod("", image("registry.example/new:1"))), true, "", "", []string{StatusAllow}},
		{"unscanned image scanned", Config{Images: ImageGate{Unscanned: UnscannedScan}}, review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", pod("", image("registry.example/new:1"))), false, "a scan was queued", "", []string{fleet.StatusBlock}},
		{"init container image", Config{}, review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", pod(`"initContainers":[{`+image("registry.example/bad:1")+`}],`, image("registry.example/good:1"))), false, "registry.example/bad:1", "", []string{fleet.StatusBlock}},
		{"audit mode admits", Config{Mode: Audit}, review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", pod("", image("registry.example/bad:1"))), true, "", "image-assurance", []string{fleet.StatusDetect}},
		{"kube-system bypassed", Config{}, review("CREATE", "", "v1", "Pod", "pods", "", "kube-system", "p", pod("", image("registry.example/bad:1"))), true, "", "", nil},
		{"bypass label", Config{}, review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", `{"metadata":{"labels":{"io.kubernetes.pod.namespace":"kube-system"}},"spec":{"containers":[{"image":"registry.example/bad:1"}]}}`), true, "", "", nil},
		{"bypass list emptied", Config{BypassNamespaces: &[]string{}}, review("CREATE", "", "v1", "Pod", "pods", "", "kube-system", "p", pod("", image("registry.example/bad:1"))), false, "CRITICAL", "", []string{fleet.StatusBlock}},
		{"deployment", Config{}, review("CREATE", "apps", "v1", "Deployment", "deployments", "", "app", "d", `{"spec":{"template":`+podTemplate+`}}`), false, "registry.example/bad:1", "", []string{fleet.StatusBlock}},
		{"statefulset", Config{}, review("CREATE", "apps", "v1", "StatefulSet", "statefulsets", "", "app", "d", `{"spec":{"template":`+podTemplate+`}}`), false, "registry.example/bad:1", "", []string{fleet.StatusBlock}},
		{"daemonset", Config{}, review("CREATE", "apps", "v1", "DaemonSet", "daemonsets", "", "app", "d", `{"spec":{"template":`+podTemplate+`}}`), false, "registry.example/bad:1", "", []string{fleet.StatusBlock}},
		{"replicaset", Config{}, review("CREATE", "apps", "v1", "ReplicaSet", "replicasets", "", "app", "d", `{"spec":{"template":`+podTemplate+`}}`), false, "registry.example/bad:1", "", []string{fleet.StatusBlock}},
		{"job", Config{}, review("CREATE", "batch", "v1", "Job", "jobs", "", "app", "d", `{"spec":{"template":`+podTemplate+`}}`), false, "registry.example/bad:1", "", []string{fleet.StatusBlock}},
		{"cronjob", Config{}, review("CREATE", "batch", "v1", "CronJob", "cronjobs", "", "app", "d", `{"spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":`+podTemplate+`}}}}`), false, "registry.example/bad:1", "", []string{fleet.StatusBlock}},
		{"privileged", Config{}, review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", pod("", `"name":"c","image":"registry.example/good:1","securityContext":{"privileged":true,"runAsNonRoot":true,"readOnlyRootFilesystem":true},"resources":{"limits":{"cpu":"1","memory":"1Gi"}}`)), false, "[privileged] container c is privileged", "", []string{fleet.StatusBlock}},
		{"host namespaces", Config{}, review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", pod(`"hostPID":true,"hostNetwork":true,`, image("registry.example/good:1"))), false, "hostNetwork is not allowed", "", []string{fleet.StatusBlock, fleet.StatusBlock}},
		{"posture audited", Config{}, review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", `{"spec":{"volumes":[{"name":"h","hostPath":{"path":"/etc"}}],"containers":[{"name":"c","image":"registry.example/good","securityContext":{"capabilities":{"add":["SYS_ADMIN","NET_BIND_SERVICE"]}}}]}}`), true, "", "SYS_ADMIN not in the allow-list",
			[]string{fleet.StatusDetect, fleet.StatusDetect, fleet.StatusDetect, fleet.StatusDetect, fleet.StatusDetect, fleet.StatusDetect, fleet.StatusDetect}},
		{"posture enforced", Config{Posture: Posture{RunAsNonRoot: Enforce, ResourceLimits: Enforce, LatestTag: Enforce, ServiceAccountToken: Enforce, ReadOnlyRootFilesystem: Enforce}},
			review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", `{"spec":{"securityContext":{"runAsNonRoot":true},"containers":[{"name":"c","image":"registry.example/good:latest","securityContext":{"runAsUser":0}}]}}`), false, "[run-as-non-root] container c does not set runAsNonRoot", "",
			[]string{fleet.StatusBlock, fleet.StatusBlock, fleet.StatusBlock, fleet.StatusBlock, fleet.StatusBlock}},
		{"exec denied", Config{}, review("CONNECT", "", "v1", "PodExecOptions", "pods", "exec", "app", "db-0", `{"kind":"PodExecOptions","apiVersion":"v1","command":["/bin/sh","-c","id"],"container":"db"}`), false, `exec denied: exec of "/bin/sh"`, "", []string{fleet.StatusBlock}},
		{"exec allowed process", Config{}, review("CONNECT", "", "v1", "PodExecOptions", "pods", "exec", "app", "db-0", `{"command":["pg_isready"]}`), true, "", "", []string{StatusAllow}},
		{"exec out of scope", Config{}, review("CONNECT", "", "v1", "PodExecOptions", "pods", "exec", "app", "web-0", `{"command":["/bin/sh"]}`), true, "", "", []string{StatusAllow}},
		{"attach denied", Config{}, review("CONNECT", "", "v1", "PodAttachOptions", "pods", "attach", "app", "db-0", `{"stdin":true}`), false, "attach denied: pod app/db-0 is protected", "", []string{fleet.StatusBlock}},
		{"port-forward denied", Config{}, review("CONNECT", "", "v1", "PodPortForwardOptions", "pods", "portforward", "app", "db-0", `{"ports":[5432]}`), false, "port-forward denied", "", []string{fleet.StatusBlock}},
		{"exec bypass label", Config{}, review("CONNECT", "", "v1", "PodExecOptions", "pods", "exec", "app", "sys", `{"command":["/bin/sh"]}`), true, "", "", nil},
		{"exec audited", Config{Mode: Audit}, review("CONNECT", "", "v1", "PodExecOptions", "pods", "exec", "app", "db-0", `{"command":["/bin/sh"]}`), true, "", "block-exec", []string{fleet.StatusDetect}},
		{"status subresource ignored", Config{}, review("UPDATE", "", "v1", "Pod", "pods", "status", "app", "p", pod("", image("registry.example/bad:1"))), true, "", "", nil},
		{"other kinds ignored", Config{}, review("CREATE", "", "v1", "ConfigMap", "configmaps", "", "app", "c", `{"data":{}}`), true, "", "", nil},
		{"delete ignored", Config{}, review("DELETE", "", "v1", "Pod", "pods", "", "app", "p", `null`), true, "", "", nil},
		{"broken object", Config{}, review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", `{"spec":{"containers":"nope"}}`), false, "cannot unmarshal", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &memSink{}
			q := NewQueue(sink, 100)
			h, err := NewHandler(tc.config, verdicts, execRules, pods, q)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil || out.Response.UID != "u-1" {
				t.Fatalf("malformed response %s", rec.Body)
			}
			r := out.Response
			if r.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%s)", r.Allowed, tc.allowed, rec.Body)
			}
			if tc.message != "" && (r.Result == nil || !strings.Contains(r.Result.Message, tc.message)) {
				t.Errorf("denial %+v lacks %q", r.Result, tc.message)
			}
			if tc.warn != "" && !slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, tc.warn) }) {
				t.Errorf("warnings %q lack %q", r.Warnings, tc.warn)
			}
			q.Close()
			var got []string
			for _, e := range sink.events {
				got = append(got, e.Status)
				if e.ID == "" || e.Namespace != "app" && e.Namespace != "kube-system" || e.Count != 1 {
					t.Errorf("malformed event %+v", e)
				}
			}
			if !slices.Equal(got, tc.status) {
				t.Errorf("event statuses %q, want %q (%+v)", got, tc.status, sink.events)
			}
		})
	}
	if !slices.Contains(verdicts.scanned, "registry.example/new:1") {
		t.Errorf("no scan queued for the unscanned image: %q", verdicts.scanned)
	}
}

func TestReviewUpdateOnlyNewViolations(t *testing.T) {
	verdicts := &stubVerdicts{table: map[string]string{"registry.example/good:1": VerdictPass}}
	h, err := NewHandler(Config{}, verdicts, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := pod("", image("registry.example/bad:1"))
	body := func(object string) *admissionv1.AdmissionRequest {
		r, err := DecodeReview(review("UPDATE", "", "v1", "Pod", "pods", "", "app", "p", object))
		if err != nil {
			t.Fatal(err)
		}
		r.Request.OldObject.Raw = []byte(old)
		return r.Request
	}
	// A label change of a pod admitted before is not re-judged.
	if r := h.Review(context.Background(), body(old)); !r.Allowed {
		t.Errorf("unchanged bad pod update denied: %+v", r.Result)
	}
	// A new failing image in an update is.
	if r := h.Review(context.Background(), body(pod("", image("registry.example/new:1")))); r.Allowed {
		t.Error("update to an unscanned image admitted")
	}
}

func TestImageGateOnError(t *testing.T) {
	for _, onError := range []string{"allow", "deny"} {
		verdicts := &stubVerdicts{fail: errors.New("server unreachable")}
		h, err := NewHandler(Config{Images: ImageGate{OnError: onError}}, verdicts, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := DecodeReview(review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", pod("", image("registry.example/x:1"))))
		resp := h.Review(context.Background(), r.Request)
		if resp.Allowed != (onError == "allow") {
			t.Errorf("onError %s: allowed = %v", onError, resp.Allowed)
		}
	}
}

func TestServeHTTPErrors(t *testing.T) {
	h, err := NewHandler(Config{}, &stubVerdicts{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, ctype, body string
		want                int
	}{
		{http.MethodGet, "application/json", "", http.StatusMethodNotAllowed},
		{http.MethodPost, "text/plain", "{}", http.StatusUnsupportedMediaType},
		{http.MethodPost, "application/json", "{", http.StatusBadRequest},
		{http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`, http.StatusBadRequest},
		{http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest},
		{http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`, http.StatusBadRequest},
		{http.MethodPost, "application/json", strings.Repeat(" ", MaxReviewSize+1), http.StatusRequestEntityTooLarge},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(tc.method, "/validate", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ctype)
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s %s %.40q: %d, want %d", tc.method, tc.ctype, tc.body, rec.Code, tc.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte("mode: audit\nbypassNamespaces: [kube-system, monitoring]\nimages: {unscanned: scan}\nposture: {hostPath: enforce}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != Audit || c.Images.Unscanned != UnscannedScan || c.Posture.HostPath != Enforce || c.Posture.Privileged != Enforce || len(*c.BypassNamespaces) != 2 {
		t.Errorf("parsed %+v", c)
	}
	if c, err := ParseConfig(nil); err != nil || c.Images.Mode != Enforce || (*c.BypassNamespaces)[0] != "kube-system" {
		t.Errorf("empty config: %+v, %v", c, err)
	}
	for _, bad := range []string{"mode: sometimes", "images: {unscanned: maybe}", "posture: {privileged: deny}", "bogus: 1", "posture: {allowedCapabilities: [CAP_NET_ADMIN]}", "images: {onError: retry}", "mode: [", "exec: never"} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("ParseConfig(%q) accepted", bad)
		}
	}
}

func TestParseExecRules(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "exec-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseExecRules(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ns      string
		labels  map[string]string
		command []string
		allow   bool
		policy  string
	}{
		{"payments", nil, []string{"/bin/sh"}, false, "payments"},
		{"payments", nil, []string{"/usr/bin/env"}, true, "payments"},
		{"payments", nil, nil, false, "payments"},
		{"shop", map[string]string{"pci": "yes"}, []string{"/bin/sh"}, false, "pci-pods"},
		{"shop", map[string]string{"pci": "no"}, []string{"/bin/sh"}, true, ""},
		{"shop", nil, []string{"/bin/sh"}, true, ""},
	} {
		allow, _, policy, _ := r.Decide(tc.ns, "p", tc.labels, tc.command)
		if allow != tc.allow || policy != tc.policy {
			t.Errorf("Decide(%s, %v, %q) = %v %q, want %v %q", tc.ns, tc.labels, tc.command, allow, policy, tc.allow, tc.policy)
		}
	}
	for _, bad := range []string{"rules: [{mode: enforce}]", "rules: [{name: x, mode: maybe}]", "rules: [{name: x, mode: audit, namespaces: ['[']}]", "rules: [{name: x, mode: audit, extra: 1}]"} {
		if _, err := ParseExecRules([]byte(bad)); err == nil {
			t.Errorf("ParseExecRules(%q) accepted", bad)
		}
	}
}

func TestQueueNeverBlocks(t *testing.T) {
	block := make(chan struct{})
	q := NewQueue(sinkFunc(func(context.Context, []fleet.Event) error { <-block; return nil }), 10)
	for range 1000 {
		q.Add(fleet.Event{ID: "x"})
	}
	if q.Dropped() == 0 {
		t.Error("a full queue dropped nothing")
	}
	close(block)
	q.Close()
}

type sinkFunc func(context.Context, []fleet.Event) error

func (f sinkFunc) Send(ctx context.Context, e []fleet.Event) error { return f(ctx, e) }

func TestLatestTag(t *testing.T) {
	for image, want := range map[string]bool{
		"nginx": true, "nginx:latest": true, "registry.example:5000/app": true, "registry.example:5000/app:1.2": false,
		"app@sha256:0000000000000000000000000000000000000000000000000000000000000000": false, "": true, "UPPER:1": true,
	} {
		if got := latestTag(image); got != want {
			t.Errorf("latestTag(%q) = %v, want %v", image, got, want)
		}
	}
}

func FuzzDecodeReview(f *testing.F) {
	f.Add(review("CREATE", "", "v1", "Pod", "pods", "", "app", "p", pod("", image("registry.example/bad:1"))))
	f.Add(review("CONNECT", "", "v1", "PodExecOptions", "pods", "exec", "app", "db-0", `{"command":["/bin/sh"]}`))
	f.Add(review("CREATE", "batch", "v1", "CronJob", "cronjobs", "", "app", "d", `{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`))
	h, err := NewHandler(Config{Images: ImageGate{Unscanned: UnscannedScan}}, &stubVerdicts{}, &ExecRules{Rules: []ExecRule{{Name: "all", Mode: Enforce}}}, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeReview(body)
		if err != nil {
			return
		}
		resp := h.Review(context.Background(), r.Request)
		if resp == nil || resp.UID != r.Request.UID {
			t.Fatalf("response %+v does not answer %s", resp, r.Request.UID)
		}
		if !resp.Allowed && (resp.Result == nil || resp.Result.Message == "") {
			t.Fatalf("denial without a message: %+v", resp)
		}
	})
}
