package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/mamorisec/mamori/internal/testenv"
)

// pusher writes test images to a registry.
type pusher struct {
	t    *testing.T
	host string
	auth authn.Authenticator
}

func (p pusher) ref(repo, tag string) name.Tag {
	p.t.Helper()
	r, err := name.NewTag(p.host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		p.t.Fatal(err)
	}
	return r
}

// image pushes a small random image, created at created when not zero,
// and returns its digest.
func (p pusher) image(repo, tag string, created time.Time) string {
	p.t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		p.t.Fatal(err)
	}
	if !created.IsZero() {
		if img, err = mutate.CreatedAt(img, v1.Time{Time: created}); err != nil {
			p.t.Fatal(err)
		}
	}
	if err := remote.Write(p.ref(repo, tag), img, remote.WithAuth(p.auth)); err != nil {
		p.t.Fatalf("pushing %s:%s: %v", repo, tag, err)
	}
	d, _ := img.Digest()
	return d.String()
}

// index pushes a two-platform index and returns its digest and the
// platform manifest digests.
func (p pusher) index(repo, tag string) (string, map[string]string) {
	p.t.Helper()
	var adds []mutate.IndexAddendum
	plat := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(64, 1)
		if err != nil {
			p.t.Fatal(err)
		}
		d, _ := img.Digest()
		plat["linux/"+arch] = d.String()
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	if err := remote.WriteIndex(p.ref(repo, tag), idx, remote.WithAuth(p.auth)); err != nil {
		p.t.Fatalf("pushing index %s:%s: %v", repo, tag, err)
	}
	d, _ := idx.Digest()
	return d.String(), plat
}

// countingTransport counts requests by path fragment.
type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/_catalog"):
		c.n["catalog"]++
	case strings.HasSuffix(r.URL.Path, "/tags/list"):
		c.n["tags"]++
	case strings.Contains(r.URL.Path, "/manifests/"):
		c.n["manifests"]++
	}
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

func tagsOf(images []Image) map[string][]string {
	out := map[string][]string{}
	for _, img := range images {
		out[img.Repository] = append(out[img.Repository], img.Tag)
	}
	return out
}

func TestDiscoverDistribution(t *testing.T) {
	reg := testenv.Distribution(t, true)
	p := pusher{t, reg.Host, &authn.Basic{Username: reg.Username, Password: reg.Password}}
	digests := map[string]string{}
	for _, tag := range []string{"v1.2", "v1.9", "v1.10", "latest", "dev-1"} {
		digests["team/app:"+tag] = p.image("team/app", tag, time.Time{})
	}
	p.image("team/lib", "1.0", time.Time{})
	p.image("team/sub/deep", "1.0", time.Time{})
	p.image("other/x", "1", time.Time{})
	p.image("zz/last", "1", time.Time{})
	idxDigest, plat := p.index("team/multi", "v2")

	base := Registry{Name: "local", URL: "http://" + reg.Host, Type: TypeGeneric, Insecure: true,
		Auth: Auth{Type: AuthBasic, Username: reg.Username, Password: reg.Password}, RequestsPerSecond: 1000}
	ctx := context.Background()

	t.Run("all with pagination", func(t *testing.T) {
		ct := &countingTransport{base: http.DefaultTransport}
		images, err := Discover(ctx, base, Options{PageSize: 2, Transport: ct})
		if err != nil {
			t.Fatal(err)
		}
		got := tagsOf(images)
		if len(got) != 6 {
			t.Errorf("repositories %v, want 6", got)
		}
		if ct.n["catalog"] < 4 {
			t.Errorf("%d catalog requests for 6 repositories in pages of 2", ct.n["catalog"])
		}
		for _, img := range images {
			if want, ok := digests[img.Repository+":"+img.Tag]; ok && img.Digest != want {
				t.Errorf("%s:%s digest %s, want %s", img.Repository, img.Tag, img.Digest, want)
			}
			if img.Registry != "local" || img.Host != reg.Host || !strings.HasPrefix(img.Ref(), reg.Host+"/"+img.Repository+"@sha256:") {
				t.Errorf("image %+v ref %s", img, img.Ref())
			}
		}
	})

	t.Run("filters", func(t *testing.T) {
		r := base
		r.Include = []string{"team/**"}
		r.Exclude = []string{"team/lib"}
		r.Tags = TagFilter{Include: []string{"v*"}, Exclude: []string{"*-rc*"}, MaxTags: 2}
		images, err := Discover(ctx, r, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := tagsOf(images)
		want := map[string][]string{"team/app": {"v1.10", "v1.9"}, "team/multi": {"v2"}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got %v, want %v", got, want)
		}
		for _, img := range images {
			if img.Repository != "team/multi" {
				continue
			}
			if img.Digest != idxDigest || len(img.Platforms) != 2 {
				t.Fatalf("index image %+v, want digest %s and 2 platforms", img, idxDigest)
			}
			for _, pm := range img.Platforms {
				if plat[pm.Platform] != pm.Digest {
					t.Errorf("platform %s digest %s, want %s", pm.Platform, pm.Digest, plat[pm.Platform])
				}
			}
		}
	})

	t.Run("only kept tags are resolved", func(t *testing.T) {
		r := base
		r.Repositories = []string{"team/app"}
		r.Tags.MaxTags = 1
		ct := &countingTransport{base: http.DefaultTransport}
		images, err := Discover(ctx, r, Options{Transport: ct})
		if err != nil {
			t.Fatal(err)
		}
		if len(images) != 1 || images[0].Tag != "v1.10" || ct.n["manifests"] != 1 {
			t.Errorf("images %+v after %d manifest requests, want v1.10 after 1", images, ct.n["manifests"])
		}
	})

	t.Run("tag cap", func(t *testing.T) {
		r := base
		r.Repositories = []string{"team/app"}
		images, err := Discover(ctx, r, Options{MaxTagsPerRepository: 2})
		if err == nil || !strings.Contains(err.Error(), "5 tags selected, only the newest 2") {
			t.Errorf("error %v", err)
		}
		if got := tagsOf(images)["team/app"]; fmt.Sprint(got) != "[v1.10 v1.9]" {
			t.Errorf("kept %v", got)
		}
	})

	t.Run("explicit repositories", func(t *testing.T) {
		r := base
		r.Repositories = []string{"other/x", "team/lib"}
		ct := &countingTransport{base: http.DefaultTransport}
		images, err := Discover(ctx, r, Options{Transport: ct})
		if err != nil {
			t.Fatal(err)
		}
		if got := tagsOf(images); len(got) != 2 || ct.n["catalog"] != 0 {
			t.Errorf("got %v with %d catalog requests", got, ct.n["catalog"])
		}
	})

	t.Run("missing repository named", func(t *testing.T) {
		r := base
		r.Repositories = []string{"other/x", "does/not-exist"}
		images, err := Discover(ctx, r, Options{})
		var de *Error
		if !errors.As(err, &de) || de.Repository != "does/not-exist" || de.Registry != "local" {
			t.Fatalf("got %v, want an *Error naming the repository", err)
		}
		if !strings.Contains(err.Error(), `registry "local" repository "does/not-exist"`) {
			t.Errorf("message %q", err)
		}
		if len(images) != 1 {
			t.Errorf("the good repository was not returned: %v", images)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		r := base
		r.Auth.Password = "wrong-password-0xdeadbeef"
		_, err := Discover(ctx, r, Options{})
		if err == nil {
			t.Fatal("wrong password accepted")
		}
		var te *transport.Error
		if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
			t.Errorf("got %v, want HTTP 401 inside", err)
		}
		for _, secret := range []string{r.Auth.Password, reg.Password} {
			if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v %#v", err, r.Auth), secret) {
				t.Errorf("error leaks a password: %v", err)
			}
		}
		t.Logf("wrong password error: %v", err)
		if !strings.Contains(err.Error(), `registry "local"`) {
			t.Errorf("error does not name the registry: %v", err)
		}
	})

	t.Run("plain http needs insecure", func(t *testing.T) {
		r := base
		r.URL, r.Insecure = reg.Host, false
		_, err := Discover(ctx, r, Options{})
		t.Logf("plain http error: %v", err)
		if err == nil || !strings.Contains(err.Error(), "refusing plain HTTP") {
			t.Errorf("got %v, want plain HTTP refused", err)
		}
	})
}

func TestDiscoverCreatedOrder(t *testing.T) {
	reg := testenv.Distribution(t, false)
	p := pusher{t, reg.Host, authn.Anonymous}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// Tag names disagree with creation order.
	p.image("app", "a-newest", t0.Add(3*time.Hour))
	p.image("app", "z-oldest", t0)
	p.image("app", "m-middle", t0.Add(time.Hour))
	r := Registry{Name: "local", URL: reg.Host, Type: TypeGeneric, Insecure: true,
		Tags: TagFilter{MaxTags: 2, Order: OrderCreated}}
	images, err := Discover(context.Background(), r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, img := range images {
		got = append(got, img.Tag)
	}
	if strings.Join(got, ",") != "a-newest,m-middle" {
		t.Errorf("got %v, want the two newest by creation", got)
	}
	if !images[0].Created.Equal(t0.Add(3 * time.Hour)) {
		t.Errorf("created %v", images[0].Created)
	}
}

func TestDiscoverTokenRegistry(t *testing.T) {
	reg := testenv.TokenRegistry(t)
	p := pusher{t, reg.Host, &authn.Basic{Username: reg.Username, Password: reg.Password}}
	want := p.image("app", "1.0", time.Time{})
	tests := []struct {
		name    string
		auth    Auth
		wantErr bool
	}{
		{"basic exchanged for a token", Auth{Type: AuthBasic, Username: reg.Username, Password: reg.Password}, false},
		{"bearer token", Auth{Type: AuthBearer, Token: reg.Token}, false},
		{"token exchange", Auth{Type: AuthTokenExchange, Username: reg.Username, Token: reg.Password}, false},
		{"anonymous", Auth{Type: AuthNone}, true},
		{"wrong password", Auth{Type: AuthBasic, Username: reg.Username, Password: "not-the-password-4242"}, true},
		{"wrong bearer", Auth{Type: AuthBearer, Token: "tok-forged-4242"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Registry{Name: "tok", URL: reg.Host, Type: TypeGeneric, Insecure: true, Auth: tt.auth}
			images, err := Discover(context.Background(), r, Options{})
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				for _, s := range append(tt.auth.secrets(), reg.Password, reg.Token) {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error leaks a secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(images) != 1 || images[0].Digest != want {
				t.Errorf("images %+v, want app:1.0 %s", images, want)
			}
		})
	}
}

// TestDiscoverRateLimited puts a proxy answering 429 in front of a real
// registry.
func TestDiscoverRateLimited(t *testing.T) {
	reg := testenv.Distribution(t, false)
	p := pusher{t, reg.Host, authn.Anonymous}
	p.image("app", "1", time.Time{})
	target, _ := url.Parse("http://" + reg.Host)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var requests, limited atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1)%2 == 1 {
			limited.Add(1)
			w.Header().Set("Retry-After", "0")
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`, http.StatusTooManyRequests)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	r := Registry{Name: "limited", URL: front.Listener.Addr().String(), Type: TypeGeneric, Insecure: true}
	images, err := Discover(context.Background(), r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 1 || limited.Load() < 3 {
		t.Errorf("%d images after %d rate-limited answers", len(images), limited.Load())
	}
}

// TestRateLimitSpacing checks RequestsPerSecond spaces requests.
func TestRateLimitSpacing(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	tr := &limitTransport{base: http.DefaultTransport, interval: 50 * time.Millisecond, allowHTTP: true}
	c := &http.Client{Transport: tr}
	for range 4 {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	if d := times[3].Sub(times[0]); d < 140*time.Millisecond {
		t.Errorf("4 requests at 20/s took %v", d)
	}
}
