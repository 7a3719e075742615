package image

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/mamorisec/mamori/internal/testenv"
)

// push writes img (or idx) to ref with auth.
func push(t testing.TB, ref string, img v1.Image, idx v1.ImageIndex, auth authn.Authenticator) {
	t.Helper()
	r, err := name.ParseReference(ref)
	must(t, err)
	if idx != nil {
		must(t, remote.WriteIndex(r, idx, remote.WithAuth(auth)))
		return
	}
	must(t, remote.Write(r, img, remote.WithAuth(auth)))
}

// dockerConfig points $DOCKER_CONFIG at a config.json with credentials for
// host.
func dockerConfig(t *testing.T, host, user, pass string) {
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	conf := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)
	must(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(conf), 0o600))
	t.Setenv("DOCKER_CONFIG", dir)
}

// noDockerConfig makes sure no credentials of the machine are used.
func noDockerConfig(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
}

func TestRegistryAnonymous(t *testing.T) {
	noDockerConfig(t)
	reg := testenv.Distribution(t, false)
	img := makeImage(t, "linux/amd64", standardLayers...)
	push(t, reg.Host+"/mamori/anon:v1", img, nil, authn.Anonymous)

	for _, ref := range []string{"registry:" + reg.Host + "/mamori/anon:v1", reg.Host + "/mamori/anon:v1"} {
		t.Run(ref, func(t *testing.T) {
			got, err := Open(context.Background(), ref, Options{DockerHost: "unix://" + filepath.Join(t.TempDir(), "none.sock")})
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			digest, _ := img.Digest()
			if got.Source != SourceRegistry || got.Digest != digest.String() || got.Name != reg.Host+"/mamori/anon:v1" {
				t.Errorf("Source, Digest, Name = %q, %q, %q", got.Source, got.Digest, got.Name)
			}
			if want := reg.Host + "/mamori/anon@" + digest.String(); len(got.RepoDigests) != 1 || got.RepoDigests[0] != want {
				t.Errorf("RepoDigests = %v, want %s", got.RepoDigests, want)
			}
			checkImage(t, got, img, standardLayers)
		})
	}

	_, err := Open(context.Background(), "registry:"+reg.Host+"/mamori/missing:v1", Options{})
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing image: err = %v", err)
	}
}

// TestRegistryPlatforms selects images of a multi-platform index.
func TestRegistryPlatforms(t *testing.T) {
	noDockerConfig(t)
	reg := testenv.Distribution(t, false)
	idx, amd, arm := multiArchIndex(t)
	ref := "registry:" + reg.Host + "/mamori/multi:v1"
	push(t, reg.Host+"/mamori/multi:v1", nil, idx, authn.Anonymous)
	idxDigest, _ := idx.Digest()

	tests := []struct {
		platform string
		want     v1.Image
		layers   []testLayer
	}{
		{"linux/amd64", amd, standardLayers[:1]},
		{"linux/arm64", arm, standardLayers[1:]},
	}
	for _, tt := range tests {
		got, err := Open(context.Background(), ref, Options{Platform: tt.platform})
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, got, tt.want, tt.layers)
		d, _ := tt.want.Digest()
		if got.Digest != d.String() || got.RepoDigests[0] != reg.Host+"/mamori/multi@"+idxDigest.String() {
			t.Errorf("%s: Digest = %s, RepoDigests = %v", tt.platform, got.Digest, got.RepoDigests)
		}
		must(t, got.Close())
	}
	_, err := Open(context.Background(), ref, Options{Platform: "windows/amd64"})
	if err == nil || !strings.Contains(err.Error(), "no image for platform windows/amd64; available: linux/amd64, linux/arm64/v8") {
		t.Errorf("missing platform: err = %v", err)
	}
}

// TestRegistryAuth covers basic auth (distribution with htpasswd) and
// bearer tokens (a token front), with explicit credentials, a token and
// the Docker config, and the error for bad or missing credentials.
func TestRegistryAuth(t *testing.T) {
	img := makeImage(t, "linux/amd64", standardLayers[0])
	basic := testenv.Distribution(t, true)
	token := testenv.TokenRegistry(t)
	for _, reg := range []*testenv.Registry{basic, token} {
		push(t, reg.Host+"/mamori/private:v1", img, nil, &authn.Basic{Username: reg.Username, Password: reg.Password})
	}

	tests := []struct {
		name   string
		reg    *testenv.Registry
		opts   func(*testenv.Registry) Options
		config bool // write a Docker config with the right credentials
		err    string
	}{
		{name: "basic/explicit", reg: basic, opts: func(r *testenv.Registry) Options { return Options{Username: r.Username, Password: r.Password} }},
		{name: "basic/docker-config", reg: basic, config: true},
		{name: "basic/wrong-password", reg: basic, opts: func(r *testenv.Registry) Options { return Options{Username: r.Username, Password: "wrong"} }, err: "authentication failed"},
		{name: "basic/anonymous", reg: basic, err: "authentication failed"},
		{name: "token/explicit", reg: token, opts: func(r *testenv.Registry) Options { return Options{Username: r.Username, Password: r.Password} }},
		{name: "token/token", reg: token, opts: func(r *testenv.Registry) Options { return Options{RegistryToken: r.Token} }},
		{name: "token/docker-config", reg: token, config: true},
		{name: "token/wrong-password", reg: token, opts: func(r *testenv.Registry) Options { return Options{Username: r.Username, Password: "wrong"} }, err: "authentication failed"},
		{name: "token/wrong-token", reg: token, opts: func(r *testenv.Registry) Options { return Options{RegistryToken: "nope"} }, err: "authentication failed"},
		{name: "token/anonymous", reg: token, err: "authentication failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.config {
				dockerConfig(t, tt.reg.Host, tt.reg.Username, tt.reg.Password)
			} else {
				noDockerConfig(t)
			}
			var opts Options
			if tt.opts != nil {
				opts = tt.opts(tt.reg)
			}
			ref := "registry:" + tt.reg.Host + "/mamori/private:v1"
			got, err := Open(context.Background(), ref, opts)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.reg.Host) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			checkImage(t, got, img, standardLayers[:1])
		})
	}
}

// TestRegistryInsecureTLS reads from a registry with a self-signed
// certificate: refused by default, accepted with Options.Insecure.
func TestRegistryInsecureTLS(t *testing.T) {
	noDockerConfig(t)
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	img := makeImage(t, "linux/amd64", standardLayers[0])
	r, err := name.ParseReference(host + "/mamori/tls:v1")
	must(t, err)
	must(t, remote.Write(r, img, remote.WithTransport(srv.Client().Transport)))

	ref := "registry:" + host + "/mamori/tls:v1"
	if _, err := Open(context.Background(), ref, Options{}); err == nil {
		t.Error("self-signed registry accepted without Insecure")
	}
	got, err := Open(context.Background(), ref, Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	checkImage(t, got, img, standardLayers[:1])
}
