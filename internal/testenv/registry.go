package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is a container registry running on 127.0.0.1 for a test.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of image references.
	Host string
	// Username and Password are the credentials it accepts; empty for an
	// anonymous registry.
	Username, Password string
	// Token is a bearer token it accepts (token registries only).
	Token string
}

// randomHex returns n random bytes in hex.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Distribution starts Debian's docker-registry (distribution v2) on
// 127.0.0.1 with storage in a test temp dir. With auth it requires HTTP
// basic authentication (an htpasswd file made with the htpasswd tool from
// apache2-utils). The registry stops when the test ends.
func Distribution(t testing.TB, auth bool) *Registry {
	t.Helper()
	bin := NeedCommand(t, "docker-registry")
	dir := t.TempDir()
	reg := &Registry{}
	authConf := ""
	if auth {
		htpasswd := NeedCommand(t, "htpasswd")
		reg.Username, reg.Password = "mamori", "pw-"+randomHex(t, 8)
		out, err := exec.Command(htpasswd, "-nbB", reg.Username, reg.Password).Output()
		if err != nil {
			t.Fatalf("htpasswd: %v", err)
		}
		pwFile := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pwFile, []byte(strings.TrimSpace(string(out))+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		authConf = fmt.Sprintf("auth:\n  htpasswd:\n    realm: mamori-test\n    path: %s\n", pwFile)
	}
	reg.Host = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
%s`, filepath.Join(dir, "storage"), reg.Host, randomHex(t, 16), authConf)
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
		t.Fatalf("starting docker-registry: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + reg.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return reg
			}
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(logFile.Name())
			t.Fatalf("docker-registry on %s did not become ready: %v\n%s", reg.Host, err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TokenRegistry starts go-containerregistry's registry on 127.0.0.1 behind
// a bearer-token front: requests without a valid token get 401 with a
// "WWW-Authenticate: Bearer" challenge naming the /token endpoint, which
// issues Token for the right basic credentials. It stops when the test ends.
func TokenRegistry(t testing.TB) *Registry {
	t.Helper()
	reg := &Registry{Username: "mamori", Password: "pw-" + randomHex(t, 8), Token: "tok-" + randomHex(t, 16)}
	backend := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var realm string
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != reg.Username || p != reg.Password {
			w.Header().Set("WWW-Authenticate", `Basic realm="mamori-test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"token": reg.Token, "access_token": reg.Token, "expires_in": 300})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+reg.Token {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="mamori-test-registry"`, realm))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		backend.ServeHTTP(w, r)
	})
	srv := httptest.NewUnstartedServer(mux)
	reg.Host = srv.Listener.Addr().String()
	realm = "http://" + reg.Host + "/token"
	srv.Start()
	t.Cleanup(srv.Close)
	return reg
}
