package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mamorisec/mamori/internal/demo"
	"github.com/mamorisec/mamori/internal/server"
	"github.com/mamorisec/mamori/internal/testenv"
	"github.com/mamorisec/mamori/internal/vulndb"
)

// TestServerVerdictsRealConsole asks a real console server (internal/server
// on SQLite) for the verdict of an image in a real registry: unknown before
// the scan, a scan queued through RequestScan, then the failing verdict of
// an assurance policy with its reason.
func TestServerVerdictsRealConsole(t *testing.T) {
	reg := testenv.Distribution(t, false)
	dir := t.TempDir()
	lay := filepath.Join(dir, "layout")
	if err := demo.Write(lay, ""); err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/team/demo:1"
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
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}

	// The server needs a vulnerability database to scan: the demo feed.
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

	ctx := context.Background()
	var adminPwd string
	srv, err := server.New(ctx, server.Config{
		DataDir: filepath.Join(dir, "data"), VulnDB: dbPath,
		Log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})), FirstRun: func(_, pw string) { adminPwd = pw },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	h := srv.Handler()

	// Log in as the first admin and create an API token for the
	// kube-enforcer, as an operator would.
	var cookie *http.Cookie
	var csrf string
	call := func(method, path string, body any) (int, []byte) {
		b, _ := json.Marshal(body)
		req := httptest.NewRequest(method, "https://console.example"+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "https://console.example")
		if cookie != nil {
			req.AddCookie(cookie)
			req.Header.Set("X-CSRF-Token", csrf)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if cookie == nil {
			for _, c := range w.Result().Cookies() {
				cookie = c
			}
		}
		return w.Code, w.Body.Bytes()
	}
	code, body := call("POST", "/api/v1/auth/login", map[string]string{"username": "admin", "password": adminPwd})
	if code != http.StatusOK {
		t.Fatalf("login: %d %s", code, body)
	}
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	json.Unmarshal(body, &login)
	csrf = login.CSRF
	code, body = call("POST", "/api/v1/tokens", map[string]any{"name": "kube-enforcer", "scopes": []string{"images:view", "scans:view", "scans:edit"}, "ttl": "1h"})
	if code != http.StatusCreated {
		t.Fatalf("token: %d %s", code, body)
	}
	var tok struct{ Token string }
	json.Unmarshal(body, &tok)
	code, body = call("POST", "/api/v1/registries", map[string]any{"name": "local", "url": "http://" + reg.Host, "authType": "none"})
	if code != http.StatusCreated {
		t.Fatalf("registry: %d %s", code, body)
	}
	policy := json.RawMessage(`{"apiVersion":"mamori.dev/v1","kind":"AssurancePolicy","name":"baseline","controls":{"disallow_malware":true}}`)
	if code, _ = call("POST", "/api/v1/policies/assurance", map[string]any{"name": "baseline", "definition": policy}); code != http.StatusCreated {
		// A first-run baseline policy exists: replace it.
		if code, body = call("PUT", "/api/v1/policies/assurance/baseline", map[string]any{"definition": policy}); code != http.StatusOK {
			t.Fatalf("policy: %d %s", code, body)
		}
	}
	srv.Start()
	console := httptest.NewServer(h)
	defer console.Close()

	v := &ServerVerdicts{URL: console.URL, Token: tok.Token, TTL: time.Nanosecond}
	if status, _, err := v.Verdict(ctx, ref); err != nil || status != VerdictUnknown {
		t.Fatalf("before the scan: %s %v", status, err)
	}
	if err := v.RequestScan(ctx, ref); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, reasons, err := v.Verdict(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if status == VerdictFail {
			if len(reasons) == 0 || !strings.Contains(strings.Join(reasons, "; "), "disallow_malware") {
				t.Errorf("reasons %q lack the disallow_malware violation", reasons)
			}
			t.Logf("verdict: %s %q", status, reasons)
			break
		}
		if status != VerdictUnknown {
			t.Fatalf("verdict %s %q, want fail", status, reasons)
		}
		if time.Now().After(deadline) {
			_, images := call("GET", "/api/v1/images", nil)
			_, scans := call("GET", "/api/v1/scans", nil)
			_, audit := call("GET", "/api/v1/audit?limit=4&sort=-seq", nil)
			t.Fatalf("the scan did not finish: images %s; scans %s; audit %s", images, scans, audit)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A wrong token is refused by the server.
	bad := &ServerVerdicts{URL: console.URL, Token: "mamori_x_y"}
	if _, _, err := bad.Verdict(ctx, ref); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v", err)
	}
}
