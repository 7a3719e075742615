package testenv

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// DefaultDockerSocket is the Docker Engine socket used when $DOCKER_HOST
// does not name a unix socket.
const DefaultDockerSocket = "/var/run/docker.sock"

// Docker returns the path of the Docker Engine API socket, or reports the
// daemon Missing when it does not answer. It never starts the daemon
// (scripts/start-dockerd.sh does).
func Docker(t testing.TB) string {
	t.Helper()
	sock := DefaultDockerSocket
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		sock = h
	}
	client := &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://docker/_ping")
	if err != nil {
		Missing(t, "Docker Engine at %s does not answer (run scripts/start-dockerd.sh): %v", sock, err)
		return ""
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		Missing(t, "Docker Engine at %s answered /_ping with %s", sock, resp.Status)
		return ""
	}
	return sock
}
