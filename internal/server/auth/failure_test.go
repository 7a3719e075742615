package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// brokenStore is a MemStore whose session and token lookups fail as a
// database outage would.
type brokenStore struct {
	*MemStore
	broken bool
}

var errOutage = errors.New("database is down")

func (b *brokenStore) SessionByHash(ctx context.Context, h string) (*Session, error) {
	if b.broken {
		return nil, errOutage
	}
	return b.MemStore.SessionByHash(ctx, h)
}

func (b *brokenStore) CreateSession(ctx context.Context, s *Session) error {
	if b.broken {
		return errOutage
	}
	return b.MemStore.CreateSession(ctx, s)
}

func (b *brokenStore) TokenByID(ctx context.Context, id string) (*APIToken, error) {
	if b.broken {
		return nil, errOutage
	}
	return b.MemStore.TokenByID(ctx, id)
}

func TestStoreOutage(t *testing.T) {
	var bs *brokenStore
	e := newTestEnv(t, func(c *Config) {
		bs = &brokenStore{MemStore: c.Users.(*MemStore)}
		c.Sessions, c.Tokens = bs, bs
	})
	h := e.handler()
	c, _ := e.login(t, h)
	tok, _, err := e.svc.IssueToken(context.Background(), "u1", "ci", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bs.broken = true
	for name, w := range map[string]interface {
		Result() *http.Response
	}{
		"session": serve(h, "GET", SessionPath, "", withCookie(c)),
		"token":   serve(h, "GET", SessionPath, "", bearer(tok)),
		"login":   serve(h, "POST", LoginPath, `{"username":"alice","password":"`+alicePassword+`"}`),
	} {
		resp := w.Result()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("%s during outage: status %d, want 500", name, resp.StatusCode)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("%s during outage set cookies %v", name, resp.Cookies())
		}
	}
}

func TestHashConcurrencyLimit(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxConcurrentHashes = 1 })
	e.svc.hashSem <- struct{}{} // the only slot is busy
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.svc.Login(ctx, "alice", alicePassword, "192.0.2.1")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Login with busy hash slots and cancelled context = %v", err)
	}
	<-e.svc.hashSem
	if _, err := e.svc.Login(context.Background(), "alice", alicePassword, "192.0.2.1"); err != nil {
		t.Errorf("Login after the slot freed: %v", err)
	}
}

func TestRateKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"::ffff:192.0.2.1":     "::ffff:192.0.2.1",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"fe80::1%eth0":         "fe80::/64",
		"not an address":       "not an address",
	} {
		if got := rateKey(in); got != want {
			t.Errorf("rateKey(%q) = %q, want %q", in, got, want)
		}
	}
	if strings.Contains(rateKey("2001:db8::1"), "::1") {
		t.Error("host bits kept")
	}
}
