package admission

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/report"
)

// fakeConsole answers the console server's image, report and scan
// endpoints as documented in docs/api.md. It stands in for the server
// only to test the client's caching and offline behaviour; the lead
// tests against a real internal/server instance.
func fakeConsole(t *testing.T, token string, gets *atomic.Int64, scans *[]string) *httptest.Server {
	images := map[string]string{ // filter → items JSON
		"registry=registry.example;repository=team/app;tag=1":          `[{"id":1,"latestScanID":7,"assurance":"fail"}]`,
		"registry=registry.example;repository=team/app;tag=2":          `[{"id":2,"latestScanID":8,"assurance":"pass"}]`,
		"registry=registry.example;repository=team/app;tag=3":          `[{"id":3,"latestScanID":9,"assurance":"warn"}]`,
		"registry=registry.example;repository=team/new;tag=1":          `[]`,
		"registry=index.docker.io;repository=library/nginx;tag=latest": `[{"id":4,"assurance":"none"}]`,
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"error":{"code":"unauthenticated"}}`, http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/images":
			gets.Add(1)
			items, ok := images[r.URL.Query().Get("filter")]
			if !ok {
				t.Errorf("unexpected filter %q", r.URL.Query().Get("filter"))
				items = "[]"
			}
			io.WriteString(w, `{"items":`+items+`}`)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/scans/7/report":
			json.NewEncoder(w).Encode(report.Scan{Assurance: &assurance.Verdict{Policy: "baseline", Violations: []assurance.Violation{
				{Control: "max_severity", Message: "CVE-2024-0727 is CRITICAL"}}}})
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/scans":
			var in struct{ Image string }
			json.NewDecoder(r.Body).Decode(&in)
			*scans = append(*scans, in.Image)
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"job":{}}`)
		default:
			http.NotFound(w, r)
		}
	}))
}

func TestServerVerdicts(t *testing.T) {
	var gets atomic.Int64
	var scans []string
	srv := fakeConsole(t, "tok", &gets, &scans)
	v := &ServerVerdicts{URL: srv.URL, Token: "tok", TTL: time.Hour}
	ctx := context.Background()
	for _, tc := range []struct {
		image, status, reason string
	}{
		{"registry.example/team/app:1", VerdictFail, "max_severity: CVE-2024-0727 is CRITICAL (policy baseline)"},
		{"registry.example/team/app:2", VerdictPass, ""},
		{"registry.example/team/app:3", VerdictPass, ""},
		{"registry.example/team/new:1", VerdictUnknown, ""},
		{"nginx", VerdictUnknown, ""},
	} {
		status, reasons, err := v.Verdict(ctx, tc.image)
		if err != nil || status != tc.status || tc.reason != "" && (len(reasons) != 1 || reasons[0] != tc.reason) {
			t.Errorf("Verdict(%s) = %s %q %v, want %s %q", tc.image, status, reasons, err, tc.status, tc.reason)
		}
	}
	if err := v.RequestScan(ctx, "registry.example/team/new:1"); err != nil || len(scans) != 1 {
		t.Errorf("RequestScan: %v, scans %q", err, scans)
	}
	// Fresh answers come from the cache.
	before := gets.Load()
	v.Verdict(ctx, "registry.example/team/app:1")
	if gets.Load() != before {
		t.Error("a fresh cached answer was fetched again")
	}
	// With the server gone, stale answers are still given; unseen images
	// are errors.
	srv.Close()
	v.TTL = time.Nanosecond
	if status, _, err := v.Verdict(ctx, "registry.example/team/app:1"); err != nil || status != VerdictFail {
		t.Errorf("offline, cached image: %s %v", status, err)
	}
	if _, _, err := v.Verdict(ctx, "registry.example/team/other:1"); err == nil {
		t.Error("offline, unseen image: no error")
	}
	// A wrong token is an error naming the status.
	var g2 atomic.Int64
	srv2 := fakeConsole(t, "right", &g2, &scans)
	defer srv2.Close()
	bad := &ServerVerdicts{URL: srv2.URL, Token: "wrong"}
	if _, _, err := bad.Verdict(ctx, "registry.example/team/app:1"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v", err)
	}
	if _, _, err := bad.Verdict(ctx, "Not A Reference"); err == nil {
		t.Error("bad reference: no error")
	}
}

func TestServerVerdictsCacheBound(t *testing.T) {
	v := &ServerVerdicts{MaxEntries: 10}
	for i := range 100 {
		v.store(strings.Repeat("x", i), cached{status: VerdictPass, at: time.Now().Add(time.Duration(i) * time.Millisecond)})
	}
	if len(v.cache) > 10 {
		t.Errorf("cache holds %d entries, bound 10", len(v.cache))
	}
}
