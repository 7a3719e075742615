package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServerFirstStart runs `mamori server` on embedded defaults: it
// prints the URL and a one-time admin password, answers health checks and
// lets the admin log in; a second start prints no password.
func TestServerFirstStart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	t.Setenv("MAMORI_ADMIN_PASSWORD", "")
	start := func() (string, *syncBuffer, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		var out syncBuffer
		cmd := newRoot()
		cmd.SetArgs([]string{"server", "--http", "--addr", "127.0.0.1:0", "--data-dir", data, "--log-format", "text"})
		cmd.SetOut(&out)
		cmd.SetErr(io.Discard)
		done := make(chan error, 1)
		go func() { done <- cmd.ExecuteContext(ctx) }()
		re := regexp.MustCompile(`mamori console: (http://127\.0\.0\.1:\d+)`)
		deadline := time.Now().Add(20 * time.Second)
		for {
			if m := re.FindStringSubmatch(out.String()); m != nil {
				return m[1], &out, func() {
					cancel()
					if err := <-done; err != nil {
						t.Errorf("server exit: %v", err)
					}
				}
			}
			select {
			case err := <-done:
				t.Fatalf("server stopped: %v\n%s", err, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no URL printed:\n%s", out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	url, out, stop := start()
	m := regexp.MustCompile(`one-time password (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no admin password printed:\n%s", out.String())
	}
	password := m[1]
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"} {
		resp, err := http.Get(url + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", p, resp, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	login := func(pw string) int {
		req, _ := http.NewRequest("POST", url+"/api/v1/auth/login", strings.NewReader(`{"username":"admin","password":"`+pw+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", url)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := login(password); code != 200 {
		t.Fatalf("login with the printed password: %d", code)
	}
	if resp, err := c.Get(url + "/api/v1/images"); err != nil || resp.StatusCode != 200 {
		t.Errorf("images as admin: %v %v", resp, err)
	}
	stop()

	_, out2, stop2 := start()
	defer stop2()
	if strings.Contains(out2.String(), "password") {
		t.Errorf("a second start printed a password:\n%s", out2.String())
	}
}

func TestServerRefusesPlainHTTPOffLoopback(t *testing.T) {
	_, err := runCLI(t, "", "server", "--http", "--addr", "0.0.0.0:0", "--data-dir", filepath.Join(t.TempDir(), "d"))
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("plain HTTP on 0.0.0.0: %v", err)
	}
}
