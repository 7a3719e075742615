package jobs

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/report"
)

const testToken = "scanner-token-0123456789abcdef"

func authorize(r *http.Request) error {
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		return errors.New("bad token")
	}
	return nil
}

func newServer(t *testing.T, q *Queue, maxResult int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHandler(q, HandlerOptions{Authorize: authorize, MaxResult: maxResult}))
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url string, body []byte, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestResultAPI(t *testing.T) {
	q := NewQueue(Config{Sink: &MemorySink{}})
	srv := newServer(t, q, 4096)
	base := srv.URL + "/api/v1/scanner"
	valid, _ := json.Marshal(fakeScan("reg/app@" + digest(1)))
	big, _ := json.Marshal(fakeScan(strings.Repeat("x", 5000)))
	tests := []struct {
		name       string
		body       []byte
		hdr        map[string]string
		badLease   bool
		wantStatus int
		wantText   string
	}{
		{"no token", valid, map[string]string{"Authorization": ""}, false, 401, "unauthenticated"},
		{"wrong token", valid, map[string]string{"Authorization": "Bearer nope"}, false, 401, "unauthenticated"},
		{"wrong lease", valid, nil, true, 409, "lease lost"},
		{"malformed", []byte(`{"schemaVersion":1,`), nil, false, 400, "invalid JSON"},
		{"trailing data", append(append([]byte{}, valid...), []byte(`{}`)...), nil, false, 400, "after the JSON"},
		{"unknown field", []byte(`{"schemaVersion":1,"inventory":{"image":{"ref":"a"}},"evil":1}`), nil, false, 400, "unknown field"},
		{"wrong schema", []byte(`{"schemaVersion":99,"inventory":{"image":{"ref":"a"}}}`), nil, false, 400, "schemaVersion 99"},
		{"no inventory", []byte(`{"schemaVersion":1}`), nil, false, 400, "no inventory"},
		{"no image", []byte(`{"schemaVersion":1,"inventory":{}}`), nil, false, 400, "names no image"},
		{"oversized", big, nil, false, 413, "larger than 4096"},
		{"oversized gzip", gz(big), map[string]string{"Content-Encoding": "gzip"}, false, 413, "larger than 4096"},
		{"bad gzip", []byte("not gzip"), map[string]string{"Content-Encoding": "gzip"}, false, 400, "gzip"},
		{"bad encoding", valid, map[string]string{"Content-Encoding": "br"}, false, 415, "not supported"},
		{"bad content type", valid, map[string]string{"Content-Type": "text/plain"}, false, 415, "not application/json"},
		{"gzip ok", gz(valid), map[string]string{"Content-Encoding": "gzip"}, false, 204, ""},
		{"plain ok", valid, nil, false, 204, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, _, _ := q.Enqueue(Request{Ref: "reg/app", Digest: digest(100 + i)})
			l, _ := q.TryLease("w")
			if l == nil || l.Job.ID != j.ID {
				t.Fatal("lease failed")
			}
			hdr := map[string]string{LeaseHeader: l.Token}
			if tt.badLease {
				hdr[LeaseHeader] = "forged"
			}
			for k, v := range tt.hdr {
				hdr[k] = v
			}
			status, body := post(t, base+"/jobs/"+j.ID+"/result", tt.body, hdr)
			if status != tt.wantStatus || !strings.Contains(body, tt.wantText) {
				t.Errorf("status %d body %q, want %d containing %q", status, body, tt.wantStatus, tt.wantText)
			}
			got, _ := q.Get(j.ID)
			if wantDone := tt.wantStatus == 204; (got.State == StateDone) != wantDone {
				t.Errorf("job state %s", got.State)
			}
			q.Cancel(j.ID)
		})
	}
}

func TestLeaseHeartbeatFailAPI(t *testing.T) {
	q := NewQueue(Config{Sink: &MemorySink{}})
	srv := newServer(t, q, 0)
	base := srv.URL + "/api/v1/scanner"
	if status, body := post(t, base+"/lease", []byte(`{"worker":"w1","waitSeconds":0}`), nil); status != 204 {
		t.Fatalf("empty lease: %d %s", status, body)
	}
	for _, bad := range []string{`{"waitSeconds":1000}`, `{"worker":1}`, `{"x":1}`, `[]`, ``} {
		if status, body := post(t, base+"/lease", []byte(bad), nil); status != 400 {
			t.Errorf("lease %q: %d %s, want 400", bad, status, body)
		}
	}
	job, _, _ := q.Enqueue(Request{Ref: "reg/app@" + digest(1), Digest: digest(1)})
	status, body := post(t, base+"/lease", []byte(`{"worker":"w1","waitSeconds":1}`), nil)
	if status != 200 {
		t.Fatalf("lease: %d %s", status, body)
	}
	var l LeaseResponse
	if err := json.Unmarshal([]byte(body), &l); err != nil || l.ID != job.ID || l.LeaseToken == "" || l.HeartbeatMillis <= 0 {
		t.Fatalf("lease answer %s (%v)", body, err)
	}
	if j, _ := q.Get(job.ID); j.Worker != "remote:w1" || j.State != StateRunning {
		t.Errorf("job after lease: %+v", j)
	}
	hb, _ := json.Marshal(HeartbeatRequest{LeaseToken: l.LeaseToken})
	if status, body := post(t, base+"/jobs/"+job.ID+"/heartbeat", hb, nil); status != 200 {
		t.Errorf("heartbeat: %d %s", status, body)
	}
	if status, _ := post(t, base+"/jobs/"+job.ID+"/heartbeat", []byte(`{"leaseToken":"forged"}`), nil); status != 409 {
		t.Errorf("forged heartbeat: %d, want 409", status)
	}
	if status, _ := post(t, base+"/jobs/unknown/heartbeat", hb, nil); status != 404 {
		t.Errorf("unknown job heartbeat: %d, want 404", status)
	}
	fb, _ := json.Marshal(FailRequest{LeaseToken: l.LeaseToken, Error: "disk full", Transient: false})
	if status, body := post(t, base+"/jobs/"+job.ID+"/fail", fb, nil); status != 204 {
		t.Errorf("fail: %d %s", status, body)
	}
	if j, _ := q.Get(job.ID); j.State != StateFailed || j.Error != "disk full" {
		t.Errorf("job after fail: %+v", j)
	}
	// Methods other than POST are refused by the mux.
	resp, err := http.Get(base + "/lease")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET lease: %d", resp.StatusCode)
	}
	// Without Authorize, everything is refused.
	deny := httptest.NewServer(NewHandler(q, HandlerOptions{}))
	defer deny.Close()
	if status, _ := post(t, deny.URL+"/api/v1/scanner/lease", []byte(`{}`), nil); status != 403 {
		t.Errorf("no Authorize: %d, want 403", status)
	}
}

// TestRemoteWorkerEndToEnd runs RunRemoteWorker against the API over HTTP.
func TestRemoteWorkerEndToEnd(t *testing.T) {
	sink := &MemorySink{}
	q := NewQueue(Config{Sink: sink, LeaseDuration: 600 * time.Millisecond,
		RetryBackoff: func(int) time.Duration { return time.Millisecond }})
	srv := newServer(t, q, 0)
	var mu sync.Mutex
	flakyCalls := 0
	block := make(chan struct{})
	scan := func(ctx context.Context, ref string) (*report.Scan, error) {
		switch ref {
		case "flaky":
			mu.Lock()
			flakyCalls++
			n := flakyCalls
			mu.Unlock()
			if n == 1 {
				return nil, context.DeadlineExceeded
			}
		case "broken":
			return nil, errors.New("unsupported image")
		case "slow":
			// Outlives several lease durations: heartbeats keep it.
			time.Sleep(1500 * time.Millisecond)
		case "blocked":
			close(block)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return fakeScan(ref), nil
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 2)
	for _, name := range []string{"w1", "w2"} {
		go func() {
			done <- RunRemoteWorker(ctx, srv.URL, testToken, scan, WorkerOptions{Name: name, Wait: time.Second})
		}()
	}
	ids := map[string]string{}
	for i, ref := range []string{"ok", "flaky", "broken", "slow"} {
		j, _, _ := q.Enqueue(Request{Ref: ref, Digest: digest(i)})
		ids[ref] = j.ID
	}
	waitState(t, q, ids["ok"], StateDone)
	if j := waitState(t, q, ids["flaky"], StateDone); j.Attempts != 2 {
		t.Errorf("flaky: %d attempts", j.Attempts)
	}
	if j := waitState(t, q, ids["broken"], StateFailed); !strings.Contains(j.Error, "unsupported image") {
		t.Errorf("broken: %q", j.Error)
	}
	if j := waitState(t, q, ids["slow"], StateDone); j.Attempts != 1 {
		t.Errorf("slow job was re-leased (%d attempts): heartbeats did not keep the lease", j.Attempts)
	}
	if s, ok := sink.Result(ids["slow"]); !ok || s.Inventory.Image.Ref != "slow" {
		t.Errorf("slow result %+v", s)
	}
	// Canceling a running job stops the remote scan via the heartbeat.
	j, _, _ := q.Enqueue(Request{Ref: "blocked", Digest: digest(9)})
	<-block
	if err := q.Cancel(j.ID); err != nil {
		t.Fatal(err)
	}
	// The workers keep serving after the canceled scan stopped.
	j2, _, _ := q.Enqueue(Request{Ref: "after-cancel", Digest: digest(10)})
	waitState(t, q, j2.ID, StateDone)
	stop()
	for range 2 {
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("worker returned %v", err)
		}
	}
}

func TestRemoteWorkerRejectedToken(t *testing.T) {
	q := NewQueue(Config{Sink: &MemorySink{}})
	srv := newServer(t, q, 0)
	secret := "wrong-secret-token-value"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	noScan := func(context.Context, string) (*report.Scan, error) { return nil, errors.New("unreachable") }
	err := RunRemoteWorker(ctx, srv.URL, secret, noScan, WorkerOptions{Wait: time.Second})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("got %v, want ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestCheckServerURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://console.example.com", true},
		{"http://127.0.0.1:8080", true},
		{"http://localhost:8080/", true},
		{"http://[::1]:8080", true},
		{"http://console.example.com", false},
		{"ftp://console.example.com", false},
		{"https://user:pw@console.example.com", false},
		{"https://console.example.com/?token=x", false},
		{"console.example.com", false},
	}
	for _, tt := range tests {
		_, err := CheckServerURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("CheckServerURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("error shows credentials: %v", err)
		}
	}
}

func FuzzParseResult(f *testing.F) {
	valid, _ := json.Marshal(fakeScan("reg/app@" + digest(1)))
	for _, s := range [][]byte{valid, []byte(`{"schemaVersion":1}`), []byte(`{"schemaVersion":1,"inventory":{"image":{"ref":"a"}}}{}`), []byte(`null`), []byte(`{"vulnerabilities":[{}]}`)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseResult(b)
		if err == nil && (s == nil || s.Inventory == nil || s.SchemaVersion != report.SchemaVersion) {
			t.Fatalf("accepted an invalid result: %+v", s)
		}
	})
}
