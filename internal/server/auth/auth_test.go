package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	alicePassword = "alice-correct-horse"
	bobPassword   = "bob-battery-staple"
)

// testEnv is a Service over a MemStore with a fake clock, recording audit
// events.
type testEnv struct {
	svc   *Service
	store *MemStore
	clock *fakeClock

	mu     sync.Mutex
	events []AuditEvent
}

func (e *testEnv) actions() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.events {
		out = append(out, ev.Action+":"+ev.Reason)
	}
	return out
}

// newTestEnv creates users alice (admins) and bob (disabled) and a Service
// with cheap hash parameters; modify adjusts the Config.
func newTestEnv(t *testing.T, modify func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{store: NewMemStore(), clock: newFakeClock()}
	for _, u := range []struct {
		id, name, pw string
		groups       []string
		disabled     bool
	}{
		{"u1", "alice", alicePassword, []string{"admins"}, false},
		{"u2", "bob", bobPassword, nil, true},
		{"u3", "ldapuser", "", []string{"devs"}, false},
	} {
		var h string
		if u.pw != "" {
			var err error
			if h, err = HashPassword(u.pw, cheapParams); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.store.AddUser(User{ID: u.id, Username: u.name, PasswordHash: h, Groups: u.groups, Disabled: u.disabled}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{
		Users: e.store, Sessions: e.store, Tokens: e.store,
		Params:           cheapParams,
		IdleTimeout:      30 * time.Minute,
		AbsoluteLifetime: 8 * time.Hour,
		MaxFailures:      3,
		LockoutDuration:  10 * time.Minute,
		LoginRate:        1,
		LoginBurst:       100,
		Now:              e.clock.Now,
		Audit: func(_ context.Context, ev AuditEvent) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.events = append(e.events, ev)
		},
	}
	if modify != nil {
		modify(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

func TestNewConfigErrors(t *testing.T) {
	s := NewMemStore()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no stores", Config{}, "stores are required"},
		{"bad params", Config{Users: s, Sessions: s, Tokens: s, Params: Params{Memory: 1}}, "argon2id"},
		{"bad origin", Config{Users: s, Sessions: s, Tokens: s, AllowedOrigins: []string{"console.example.com"}}, "allowed origin"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestLogin(t *testing.T) {
	for _, tc := range []struct {
		name, user, password string
		wantCode             string // "" for success
		wantAction           string
	}{
		{"ok", "alice", alicePassword, "", "auth.login:"},
		{"wrong password", "alice", "not-the-password", "invalid_credentials", "auth.login_failed:invalid_credentials"},
		{"unknown user", "mallory", alicePassword, "invalid_credentials", "auth.login_failed:invalid_credentials"},
		{"disabled user", "bob", bobPassword, "invalid_credentials", "auth.login_failed:invalid_credentials"},
		{"user without local password", "ldapuser", "anything-goes-here", "invalid_credentials", "auth.login_failed:invalid_credentials"},
		{"username case", "ALICE", alicePassword, "invalid_credentials", "auth.login_failed:invalid_credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			id, err := e.svc.Login(context.Background(), tc.user, tc.password, "192.0.2.1")
			if tc.wantCode == "" {
				if err != nil || id.UserID != "u1" || id.Source != "local" {
					t.Fatalf("Login = %+v, %v", id, err)
				}
			} else {
				var le *LoginError
				if !errors.As(err, &le) || le.Code != tc.wantCode {
					t.Fatalf("Login err = %v, want code %s", err, tc.wantCode)
				}
			}
			if got := e.actions(); len(got) != 1 || got[0] != tc.wantAction {
				t.Errorf("audit = %v, want [%s]", got, tc.wantAction)
			}
			ev := e.events[0]
			if ev.ClientIP != "192.0.2.1" || ev.Time != e.clock.Now() || ev.Actor == "" {
				t.Errorf("audit event %+v lacks IP, time or actor", ev)
			}
		})
	}
}

func TestLoginLockoutAndRateLimit(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.LoginBurst = 6; c.LoginRate = 0.1 })
	ctx := context.Background()
	codes := func(user, pw, ip string) string {
		_, err := e.svc.Login(ctx, user, pw, ip)
		var le *LoginError
		if errors.As(err, &le) {
			return le.Code
		}
		if err != nil {
			return err.Error()
		}
		return "ok"
	}
	// Three failures lock alice, and also an unknown user, identically.
	for _, user := range []string{"alice", "nobody"} {
		for range 3 {
			if got := codes(user, "wrong-password-x", "192.0.2.1"); got != "invalid_credentials" {
				t.Fatalf("%s: got %s", user, got)
			}
		}
	}
	if got := codes("alice", alicePassword, "192.0.2.2"); got != "too_many_attempts" {
		t.Fatalf("locked alice with right password: %s", got)
	}
	if got := codes("nobody", "x-password-123", "192.0.2.2"); got != "too_many_attempts" {
		t.Fatalf("locked unknown user: %s", got)
	}
	// 192.0.2.1 used its burst of 6.
	if got := codes("carol", "wrong-password-x", "192.0.2.1"); got != "rate_limited" {
		t.Fatalf("7th attempt from one IP: %s", got)
	}
	e.clock.Advance(10 * time.Minute)
	if got := codes("alice", alicePassword, "192.0.2.3"); got != "ok" {
		t.Fatalf("after lockout expiry: %s", got)
	}
	var locked int
	for _, a := range e.actions() {
		if a == "auth.locked:too_many_failures" {
			locked++
		}
	}
	if locked != 2 {
		t.Errorf("auth.locked events = %d, want 2 (%v)", locked, e.actions())
	}
}

// fakeAuthenticator stands in for a directory authenticator.
type fakeAuthenticator struct {
	users map[string]string
	err   error
}

func (f *fakeAuthenticator) Authenticate(_ context.Context, username, password string) (*Identity, error) {
	if f.err != nil {
		return nil, f.err
	}
	pw, ok := f.users[username]
	switch {
	case !ok:
		return nil, ErrUnknownUser
	case pw != password:
		return nil, ErrInvalidCredentials
	}
	return &Identity{UserID: "ldap:" + username, Username: username, Groups: []string{"devs"}, Source: "ldap"}, nil
}

func TestAuthenticatorChain(t *testing.T) {
	dir := &fakeAuthenticator{users: map[string]string{"dave": "dave-directory-pw", "alice": "alice-directory-pw"}}
	e := newTestEnv(t, func(c *Config) { c.Authenticators = []Authenticator{dir} })
	ctx := context.Background()
	for _, tc := range []struct {
		user, pw, wantSource string
	}{
		{"alice", alicePassword, "local"},
		{"alice", "alice-directory-pw", ""}, // local user found: chain stops
		{"dave", "dave-directory-pw", "ldap"},
		{"dave", "wrong", ""},
		{"erin", "whatever-password", ""},
	} {
		id, err := e.svc.Login(ctx, tc.user, tc.pw, "192.0.2.9")
		got := ""
		if err == nil {
			got = id.Source
		}
		if got != tc.wantSource {
			t.Errorf("Login(%s, %s) source = %q (err %v), want %q", tc.user, tc.pw, got, err, tc.wantSource)
		}
	}
	dir.err = errors.New("ldap: connection refused")
	_, err := e.svc.Login(ctx, "dave", "dave-directory-pw", "192.0.2.9")
	var le *LoginError
	if err == nil || errors.As(err, &le) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("backend failure: err = %v, want the backend error", err)
	}
}

func TestRehashOnLogin(t *testing.T) {
	stronger := cheapParams
	stronger.Iterations = 2
	e := newTestEnv(t, func(c *Config) { c.Params = stronger })
	if _, err := e.svc.Login(context.Background(), "alice", alicePassword, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	u, _ := e.store.UserByID(context.Background(), "u1")
	if NeedsRehash(u.PasswordHash, stronger) {
		t.Errorf("hash %q not upgraded to %+v", u.PasswordHash, stronger)
	}
	if ok, _ := VerifyPassword(alicePassword, u.PasswordHash); !ok {
		t.Error("upgraded hash does not verify")
	}
}

func TestSetPassword(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	if err := e.svc.SetPassword(ctx, "u1", "short"); err == nil {
		t.Error("SetPassword accepted a short password")
	}
	if err := e.svc.SetPassword(ctx, "nope", "a-long-enough-password"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetPassword(unknown user) = %v", err)
	}
	if err := e.svc.SetPassword(ctx, "u1", "brand-new-passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Login(ctx, "alice", "brand-new-passphrase", "192.0.2.1"); err != nil {
		t.Errorf("login with new password: %v", err)
	}
}

// TestTimingEqualization checks that unknown users cost a password hash:
// with a slow hash, a login for an unknown user takes about as long as one
// for a known user.
func TestTimingEqualization(t *testing.T) {
	slow := Params{Memory: 16 * 1024, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	e := newTestEnv(t, func(c *Config) { c.Params = slow })
	h, _ := HashPassword(alicePassword, slow)
	e.store.SetPasswordHash(context.Background(), "u1", h)
	e.svc.dummyHash() // computed once, outside the measurement
	// Interleaved, best of 9: the machine's load hits both alike. Without
	// a dummy hash an unknown user costs microseconds, a thousandth of a
	// hash, so a factor of 4 separates the cases whatever the load.
	known, unknown := time.Hour, time.Hour
	for range 9 {
		for _, m := range []struct {
			user string
			best *time.Duration
		}{{"alice", &known}, {"nobody", &unknown}} {
			start := time.Now()
			e.svc.local.Authenticate(context.Background(), m.user, "wrong-password-1")
			*m.best = min(*m.best, time.Since(start))
		}
	}
	if unknown < known/4 {
		t.Errorf("unknown user took %v, known user %v: no dummy hash?", unknown, known)
	}
}
