package registry

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/server/jobs"
	"github.com/mamorisec/mamori/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/distribution-push.json from a real registry")

const secret = "webhook-secret-0123456789"

// recorder collects the pushes a Webhook hands on.
type recorder struct {
	mu     sync.Mutex
	pushes []Push
	fail   bool
}

func (r *recorder) onPush(_ context.Context, registry string, p []Push) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("queue down")
	}
	r.pushes = append(r.pushes, p...)
	return nil
}

func (r *recorder) get() []Push {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Push(nil), r.pushes...)
}

// startNotifyingRegistry starts Debian's docker-registry configured to
// send its notifications to hook with the webhook secret.
func startNotifyingRegistry(t *testing.T, hook string) string {
	t.Helper()
	bin := testenv.NeedCommand(t, "docker-registry")
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  secret: test-http-secret
notifications:
  endpoints:
    - name: mamori
      url: %s
      headers:
        Authorization: [Bearer %s]
      timeout: 2s
      threshold: 5
      backoff: 100ms
`, filepath.Join(dir, "storage"), host, hook, secret)
	confFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "serve", confFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return host
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(logFile.Name())
			t.Fatalf("docker-registry did not start: %v\n%s", err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWebhookRealDistribution has a real registry notify the handler of
// pushes and pulls.
func TestWebhookRealDistribution(t *testing.T) {
	rec := &recorder{}
	h := &Webhook{Kind: KindDistribution, Registry: "local", Secret: secret, OnPush: rec.onPush}
	var bodies sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if *update {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			bodies.Store(len(b), b)
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := startNotifyingRegistry(t, srv.URL+"/hook")
	p := pusher{t, host, authn.Anonymous}
	want := p.image("team/app", "v1", time.Time{})
	idx, _ := p.index("team/multi", "v2")
	// A pull must be ignored.
	ref, _ := name.ParseReference(host+"/team/app:v1", name.Insecure)
	if _, err := remote.Get(ref); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := map[string]Push{}
		for _, ps := range rec.get() {
			got[ps.Repository+":"+ps.Tag] = ps
		}
		app, ok1 := got["team/app:v1"]
		multi, ok2 := got["team/multi:v2"]
		if ok1 && ok2 {
			if app.Digest != want || app.Host != host || !manifestTypes[app.MediaType] {
				t.Errorf("push %+v, want digest %s on %s", app, want, host)
			}
			if multi.Digest != idx || multi.MediaType != "application/vnd.oci.image.index.v1+json" {
				t.Errorf("index push %+v, want %s", multi, idx)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no push notifications for both tags; got %+v", rec.get())
		}
		time.Sleep(50 * time.Millisecond)
	}
	seen := map[string]bool{}
	for _, ps := range rec.get() {
		if seen[ps.Digest] {
			t.Errorf("digest %s handed on twice", ps.Digest)
		}
		seen[ps.Digest] = true
	}
	if *update {
		var biggest []byte
		bodies.Range(func(_, v any) bool {
			if b := v.([]byte); strings.Contains(string(b), `"push"`) && len(b) > len(biggest) {
				biggest = b
			}
			return true
		})
		if err := os.WriteFile("testdata/distribution-push.json", biggest, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWebhookHandler(t *testing.T) {
	dist := readTestdata(t, "distribution-push.json")
	harbor := readTestdata(t, "harbor-push.json")
	hub := readTestdata(t, "dockerhub-push.json")
	pull := `{"events":[{"action":"pull","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","repository":"app","tag":"1"}}]}`
	blob := `{"events":[{"action":"push","target":{"mediaType":"application/octet-stream","digest":"sha256:` + strings.Repeat("b", 64) + `","repository":"app"}}]}`
	badDigest := `{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:xyz","repository":"app","tag":"1"}}]}`
	badRepo := `{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("c", 64) + `","repository":"UPPER/../x","tag":"1"}}]}`
	tests := []struct {
		name       string
		kind       WebhookKind
		method     string
		auth       string
		query      string
		body       string
		ctype      string
		failQueue  bool
		wantStatus int
		wantText   string
		wantPushes int
	}{
		{"distribution push", KindDistribution, "POST", "Bearer " + secret, "", string(dist), "application/vnd.docker.distribution.events.v1+json", false, 202, `"accepted":`, -1},
		{"duplicate digest", KindDistribution, "POST", "Bearer " + secret, "", string(dist), "", false, 202, `"accepted":0`, 0},
		{"raw secret header", KindHarbor, "POST", secret, "", string(harbor), "application/json", false, 202, `"accepted":1`, 1},
		{"token scheme", KindDockerHub, "POST", "Token " + secret, "", string(hub), "", false, 202, `"accepted":1`, 1},
		{"dockerhub query secret", KindDockerHub, "POST", "", "?token=" + secret, string(hub), "", false, 202, `"accepted":1`, 1},
		{"query secret only for dockerhub", KindDistribution, "POST", "", "?token=" + secret, string(dist), "", false, 401, "unauthenticated", 0},
		{"no secret", KindDistribution, "POST", "", "", string(dist), "", false, 401, "unauthenticated", 0},
		{"wrong secret", KindDistribution, "POST", "Bearer " + secret + "x", "", string(dist), "", false, 401, "unauthenticated", 0},
		{"GET", KindDistribution, "GET", "Bearer " + secret, "", "", "", false, 405, "POST", 0},
		{"pull ignored", KindDistribution, "POST", "Bearer " + secret, "", pull, "", false, 202, `"ignored":1`, 0},
		{"blob ignored", KindDistribution, "POST", "Bearer " + secret, "", blob, "", false, 202, `"ignored":1`, 0},
		{"not json", KindDistribution, "POST", "Bearer " + secret, "", "events", "", false, 400, "invalid JSON", 0},
		{"trailing data", KindDistribution, "POST", "Bearer " + secret, "", pull + "{}", "", false, 400, "after the JSON", 0},
		{"wrong type", KindDistribution, "POST", "Bearer " + secret, "", `{"events":{}}`, "", false, 400, "invalid JSON", 0},
		{"no events", KindDistribution, "POST", "Bearer " + secret, "", `{}`, "", false, 400, "no \\\"events\\\"", 0},
		{"harbor shape to distribution", KindDistribution, "POST", "Bearer " + secret, "", string(harbor), "", false, 400, "no \\\"events\\\"", 0},
		{"bad digest", KindDistribution, "POST", "Bearer " + secret, "", badDigest, "", false, 400, "bad digest", 0},
		{"bad repository", KindDistribution, "POST", "Bearer " + secret, "", badRepo, "", false, 400, "bad repository", 0},
		{"text content type", KindDistribution, "POST", "Bearer " + secret, "", pull, "text/plain", false, 415, "not JSON", 0},
		{"too large", KindDistribution, "POST", "Bearer " + secret, "", `{"events":[` + strings.Repeat(" ", MaxWebhookBody) + `]}`, "", false, 413, "larger than", 0},
		{"harbor pull ignored", KindHarbor, "POST", secret, "", `{"type":"PULL_ARTIFACT","event_data":{}}`, "", false, 202, `"ignored":1`, 0},
		{"queue down", KindHarbor, "POST", secret, "", strings.ReplaceAll(string(harbor), "sha256:9", "sha256:8"), "", true, 503, "retry later", 0},
	}
	handlers := map[WebhookKind]*Webhook{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{fail: tt.failQueue}
			h, ok := handlers[tt.kind]
			if !ok {
				h = &Webhook{Kind: tt.kind, Registry: "r", Secret: secret}
				handlers[tt.kind] = h
			}
			h.OnPush = rec.onPush
			req := httptest.NewRequest(tt.method, "/hook"+tt.query, strings.NewReader(tt.body))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), tt.wantText) {
				t.Errorf("status %d body %q, want %d containing %q", w.Code, w.Body.String(), tt.wantStatus, tt.wantText)
			}
			if tt.wantPushes >= 0 && len(rec.get()) != tt.wantPushes {
				t.Errorf("%d pushes handed on, want %d: %+v", len(rec.get()), tt.wantPushes, rec.get())
			}
			if tt.wantPushes == -1 && len(rec.get()) == 0 {
				t.Error("no pushes handed on")
			}
			if strings.Contains(w.Body.String(), secret) {
				t.Error("answer shows the secret")
			}
		})
	}
}

func TestWebhookNoSecretDenies(t *testing.T) {
	for _, s := range []string{"", "short"} {
		h := &Webhook{Kind: KindDistribution, Secret: s, OnPush: (&recorder{}).onPush}
		req := httptest.NewRequest("POST", "/hook", strings.NewReader(`{"events":[]}`))
		req.Header.Set("Authorization", "Bearer "+s)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("secret %q: status %d, want 401", s, w.Code)
		}
	}
}

func TestWebhookDedupeWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := &recorder{}
	h := &Webhook{Kind: KindHarbor, Secret: secret, OnPush: rec.onPush, Now: func() time.Time { return now }, DedupeWindow: time.Minute}
	body := string(readTestdata(t, "harbor-push.json"))
	send := func() {
		req := httptest.NewRequest("POST", "/hook", strings.NewReader(body))
		req.Header.Set("Authorization", secret)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	send()
	send()
	if n := len(rec.get()); n != 1 {
		t.Fatalf("%d pushes within the window, want 1", n)
	}
	now = now.Add(2 * time.Minute)
	send()
	if n := len(rec.get()); n != 2 {
		t.Errorf("%d pushes after the window, want 2", n)
	}
}

func TestParsers(t *testing.T) {
	ps, _, err := ParseHarbor(readTestdata(t, "harbor-push.json"))
	if err != nil || len(ps) != 1 || ps[0].Repository != "library/app" || ps[0].Tag != "v1.2" || ps[0].Host != "harbor.example.com" || !strings.HasPrefix(ps[0].Digest, "sha256:") {
		t.Errorf("harbor: %+v %v", ps, err)
	}
	ps, _, err = ParseDockerHub(readTestdata(t, "dockerhub-push.json"))
	if err != nil || len(ps) != 1 || ps[0].Repository != "mamorisec/app" || ps[0].Tag != "latest" || ps[0].Digest != "" {
		t.Errorf("docker hub: %+v %v", ps, err)
	}
	ps, _, err = ParseDistribution(readTestdata(t, "distribution-push.json"))
	if err != nil || len(ps) == 0 {
		t.Fatalf("distribution: %+v %v", ps, err)
	}
	for _, p := range ps {
		if p.Digest == "" || p.Repository == "" || !manifestTypes[p.MediaType] {
			t.Errorf("distribution push %+v", p)
		}
	}
}

func TestImageForPush(t *testing.T) {
	reg := testenv.Distribution(t, true)
	p := pusher{t, reg.Host, &authn.Basic{Username: reg.Username, Password: reg.Password}}
	want := p.image("team/app", "v1", time.Time{})
	r := Registry{Name: "local", URL: reg.Host, Type: TypeGeneric, Insecure: true,
		Auth:    Auth{Type: AuthBasic, Username: reg.Username, Password: reg.Password},
		Include: []string{"team/*"}, Tags: TagFilter{Exclude: []string{"*-dev"}}}
	tests := []struct {
		name     string
		push     Push
		selected bool
		digest   string
	}{
		{"digest given, host from config", Push{Host: "evil.example.com", Repository: "team/app", Tag: "v1", Digest: want}, true, want},
		{"tag resolved", Push{Repository: "team/app", Tag: "v1"}, true, want},
		{"repository excluded", Push{Repository: "other/app", Tag: "v1"}, false, ""},
		{"tag excluded", Push{Repository: "team/app", Tag: "v1-dev"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, sel, err := ImageForPush(context.Background(), r, tt.push)
			if err != nil {
				t.Fatal(err)
			}
			if sel != tt.selected || img.Digest != tt.digest {
				t.Fatalf("got %+v selected=%v", img, sel)
			}
			if sel && img.Host != reg.Host {
				t.Errorf("host %q, want the configured %q", img.Host, reg.Host)
			}
		})
	}
	if _, _, err := ImageForPush(context.Background(), r, Push{Repository: "team/gone", Tag: "v1"}); err == nil || !strings.Contains(err.Error(), `repository "team/gone"`) {
		t.Errorf("missing tag: %v", err)
	}
}

func FuzzParseWebhook(f *testing.F) {
	for _, name := range []string{"distribution-push.json", "harbor-push.json", "dockerhub-push.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:","repository":"a"}}]}`))
	f.Add([]byte(`{"type":"PUSH_ARTIFACT","event_data":{"resources":[{}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, k := range []WebhookKind{KindDistribution, KindHarbor, KindDockerHub} {
			ps, _, err := k.Parse(b)
			if err != nil {
				continue
			}
			for _, p := range ps {
				if err := checkPush(p); err != nil {
					t.Fatalf("%s accepted an invalid push %+v: %v", k, p, err)
				}
				if k == KindDistribution && p.Digest == "" {
					t.Fatalf("distribution push without digest: %+v", p)
				}
			}
		}
	})
}

// TestPushToScan wires a real registry's notifications through the
// webhook, ImageForPush and the job queue to a local worker.
func TestPushToScan(t *testing.T) {
	sink := &jobs.MemorySink{}
	q := jobs.NewQueue(jobs.Config{Sink: sink})
	var mu sync.Mutex
	var r Registry
	scanned := make(chan string, 10)
	h := &Webhook{Kind: KindDistribution, Registry: "local", Secret: secret,
		OnPush: func(ctx context.Context, _ string, pushes []Push) error {
			mu.Lock()
			reg := r
			mu.Unlock()
			for _, p := range pushes {
				img, ok, err := ImageForPush(ctx, reg, p)
				if err != nil {
					return err
				}
				if ok {
					if _, _, err := q.Enqueue(JobRequest(img, ReasonPush)); err != nil {
						return err
					}
				}
			}
			return nil
		}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	host := startNotifyingRegistry(t, srv.URL)
	mu.Lock()
	r = Registry{Name: "local", URL: host, Type: TypeGeneric, Insecure: true, Include: []string{"team/**"}}
	mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.RunWorkers(ctx, func(_ context.Context, ref string) (*report.Scan, error) {
		scanned <- ref
		return &report.Scan{SchemaVersion: report.SchemaVersion, Inventory: &inventory.Report{Image: inventory.ImageInfo{Ref: ref}}}, nil
	}, jobs.PoolOptions{Workers: 1})
	p := pusher{t, host, authn.Anonymous}
	p.image("other/skip", "1", time.Time{})
	d := p.image("team/app", "1", time.Time{})
	select {
	case ref := <-scanned:
		if ref != host+"/team/app@"+d {
			t.Errorf("scanned %s, want %s", ref, host+"/team/app@"+d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the push was not scanned")
	}
	select {
	case ref := <-scanned:
		t.Errorf("excluded repository scanned: %s", ref)
	case <-time.After(300 * time.Millisecond):
	}
}
