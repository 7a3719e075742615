package docker

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeEngine serves handler on a unix socket and returns its path.
func fakeEngine(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestEventsBadStreams(t *testing.T) {
	good := `{"Type":"container","Action":"start","Actor":{"ID":"abc"},"timeNano":1}` + "\n"
	tests := []struct {
		name, body, want string
	}{
		{"oversized event", good + `{"Type":"container","Action":"` + strings.Repeat("x", MaxEvent+10) + `"}` + "\n", "larger than"},
		{"garbage", good + "not json\n", "bad event JSON"},
		{"closed", good, "closed its event stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := fakeEngine(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/events" || !strings.Contains(r.URL.Query().Get("filters"), "exec_start") {
					http.Error(w, `{"message":"bad request"}`, http.StatusBadRequest)
					return
				}
				w.Write([]byte(tt.body))
			})
			c := New(sock)
			defer c.Close()
			n := 0
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.Events(ctx, time.Time{}, func(*Event) { n++ })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Events error = %v, want %q", err, tt.want)
			}
			if n != 1 {
				t.Errorf("%d events before the failure, want 1", n)
			}
		})
	}
}

func TestAPIErrorMessage(t *testing.T) {
	sock := fakeEngine(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"message":"daemon is sad"}`))
	})
	c := New(sock)
	defer c.Close()
	_, err := c.List(context.Background())
	if err == nil || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "daemon is sad") {
		t.Errorf("List error = %v", err)
	}
}
