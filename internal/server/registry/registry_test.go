package registry

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Registry{Name: "r", URL: "registry.example.com", Type: TypeGeneric, Auth: Auth{Type: AuthNone}}
	tests := []struct {
		name   string
		change func(r *Registry)
		want   string // "" means valid
	}{
		{"minimal", func(r *Registry) {}, ""},
		{"https scheme", func(r *Registry) { r.URL = "https://registry.example.com:5000/" }, ""},
		{"no name", func(r *Registry) { r.Name = " " }, "empty name"},
		{"bad type", func(r *Registry) { r.Type = "nexus" }, "unknown type"},
		{"no url", func(r *Registry) { r.URL = "" }, "empty URL"},
		{"dockerhub default url", func(r *Registry) { r.Type, r.URL, r.Repositories = TypeDockerHub, "", []string{"library/alpine"} }, ""},
		{"dockerhub needs repositories", func(r *Registry) { r.Type = TypeDockerHub }, "no catalog"},
		{"ecr needs repositories", func(r *Registry) { r.Type = TypeECR }, "no catalog"},
		{"path in url", func(r *Registry) { r.URL = "registry.example.com/v2" }, "want host"},
		{"plain http", func(r *Registry) { r.URL = "http://registry.example.com" }, "plain http"},
		{"insecure remote", func(r *Registry) { r.Insecure = true }, "only allowed for loopback"},
		{"insecure private", func(r *Registry) { r.URL, r.Insecure = "10.0.0.5:5000", true }, "only allowed for loopback"},
		{"insecure loopback", func(r *Registry) { r.URL, r.Insecure = "http://127.0.0.1:5000", true }, ""},
		{"insecure localhost", func(r *Registry) { r.URL, r.Insecure = "localhost:5000", true }, ""},
		{"insecure ipv6 loopback", func(r *Registry) { r.URL, r.Insecure = "[::1]:5000", true }, ""},
		{"basic", func(r *Registry) { r.Auth = Auth{Type: AuthBasic, Username: "u", Password: "p"} }, ""},
		{"basic no password", func(r *Registry) { r.Auth = Auth{Type: AuthBasic, Username: "u"} }, "needs a username and a password"},
		{"none with secret", func(r *Registry) { r.Auth = Auth{Type: AuthNone, Password: "p"} }, "takes no"},
		{"bearer", func(r *Registry) { r.Auth = Auth{Type: AuthBearer, Token: "t"} }, ""},
		{"bearer no token", func(r *Registry) { r.Auth = Auth{Type: AuthBearer} }, "needs a token"},
		{"identity token", func(r *Registry) { r.Auth = Auth{Type: AuthIdentityToken, Token: "t"} }, ""},
		{"token exchange ecr", func(r *Registry) {
			r.Type, r.Repositories, r.Auth = TypeECR, []string{"app"}, Auth{Type: AuthTokenExchange, Token: "t"}
		}, ""},
		{"token exchange generic needs user", func(r *Registry) { r.Auth = Auth{Type: AuthTokenExchange, Token: "t"} }, "needs a username"},
		{"token exchange generic with user", func(r *Registry) { r.Auth = Auth{Type: AuthTokenExchange, Username: "u", Token: "t"} }, ""},
		{"bad auth type", func(r *Registry) { r.Auth.Type = "kerberos" }, "unknown auth type"},
		{"bad glob", func(r *Registry) { r.Include = []string{"team/["} }, "bad glob"},
		{"bad tag glob", func(r *Registry) { r.Tags.Exclude = []string{"["} }, "bad glob"},
		{"bad repository", func(r *Registry) { r.Repositories = []string{"app:latest"} }, "bad repository"},
		{"bad order", func(r *Registry) { r.Tags.Order = "random" }, "unknown tag order"},
		{"negative max", func(r *Registry) { r.Tags.MaxTags = -1 }, "negative"},
		{"short interval", func(r *Registry) { r.Interval = time.Second }, "shorter than"},
		{"interval", func(r *Registry) { r.Interval = time.Hour }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.change(&r)
			err := r.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestAuthStringHidesSecrets(t *testing.T) {
	a := Auth{Type: AuthBasic, Username: "robot", Password: "hunter2-secret", Token: "tok-secret"}
	for _, s := range []string{a.String(), a.GoString()} {
		if strings.Contains(s, "secret") {
			t.Errorf("%q shows a secret", s)
		}
	}
}

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		glob, s string
		want    bool
	}{
		{"team/*", "team/app", true},
		{"team/*", "team/sub/app", false},
		{"team/**", "team/sub/app", true},
		{"team/**", "team/app", true},
		{"**/app", "a/b/app", true},
		{"**/app", "app", false},
		{"**", "anything/at/all", true},
		{"team/**/api", "team/x/y/api", true},
		{"team/**/api", "team/x/y/web", false},
		{"v1.*", "v1.2", true},
		{"v1.*", "v2.0", false},
		{"[", "[", false},
	}
	for _, tt := range tests {
		if got := matchGlob(tt.glob, tt.s); got != tt.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tt.glob, tt.s, got, tt.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int // sign
	}{
		{"v1.10", "v1.9", 1},
		{"1.2.3", "1.2.3", 0},
		{"1.2", "1.2.1", -1},
		{"2024.01", "2023.12", 1},
		{"1.02", "1.2", 0},
		{"latest", "1.0", -1},
		{"dev", "beta", 1},
		{"1.0-alpine", "1.0-alpine3", -1},
	}
	for _, tt := range tests {
		got := compareVersions(tt.a, tt.b)
		if (got > 0) != (tt.want > 0) || (got < 0) != (tt.want < 0) {
			t.Errorf("compareVersions(%q, %q) = %d, want sign %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	if d := retryAfter("2", time.Second, time.Minute); d != 2*time.Second {
		t.Errorf("seconds: %v", d)
	}
	if d := retryAfter("", 3*time.Second, time.Minute); d != 3*time.Second {
		t.Errorf("default: %v", d)
	}
	if d := retryAfter("3600", time.Second, time.Minute); d != time.Minute {
		t.Errorf("cap: %v", d)
	}
	if d := retryAfter(time.Now().Add(-time.Hour).UTC().Format(http1123), time.Second, time.Minute); d != 0 {
		t.Errorf("past date: %v", d)
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"
