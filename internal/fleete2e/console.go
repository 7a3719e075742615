// Package fleete2e runs the fleet end to end against the real console
// server: enforcers (package fleetclient, with a disk spool) enroll,
// heartbeat, receive policies and deliver events through real gateways
// (package gateway relaying with package restclient) to a real server
// (package server, SQLite, TLS) that the tests drive through its REST API
// only.
//
// The package's non-test code is a harness for tests (this one's and the
// gateway command's): Start runs a console on 127.0.0.1 and gives an
// administrator's API client.
package fleete2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/fleet/restclient"
	"github.com/mamorisec/mamori/internal/gateway"
	"github.com/mamorisec/mamori/internal/server"
	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/audit"
	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/store"
)

// Quiet is a logger that discards everything.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Console is a console server serving HTTPS on 127.0.0.1, with an
// administrator's API token.
type Console struct {
	// URL is the server's base URL, https://127.0.0.1:PORT.
	URL string
	// CAPEM is the PEM certificate clients verify the server by (its
	// self-signed serving certificate).
	CAPEM []byte
	// CA is CAPEM as a pool.
	CA *x509.CertPool

	t      testing.TB
	srv    *server.Server
	tlsCfg *tls.Config
	addr   string
	client *http.Client
	admin  string
	// roleOnce creates tokenOwnerRole.
	roleOnce sync.Once

	mu      sync.Mutex
	serving context.CancelFunc
	done    chan error
}

// Option changes the console's configuration.
type Option func(*server.Config)

// WithClock sets the server's clock.
func WithClock(now func() time.Time) Option { return func(c *server.Config) { c.Now = now } }

// Start runs a console with a fresh data directory (SQLite) until the test
// ends, and logs in as the first administrator to create an API token.
func Start(t testing.TB, opts ...Option) *Console {
	t.Helper()
	dir := t.TempDir()
	var password string
	cfg := server.Config{DataDir: filepath.Join(dir, "data"), VulnDB: filepath.Join(dir, "none.db"), Log: Quiet,
		FirstRun: func(_, pw string) { password = pw }}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tc, err := srv.SelfSignedTLS([]string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tc.Certificates) == 0 || len(tc.Certificates[0].Certificate) == 0 {
		t.Fatal("server TLS configuration has no certificate")
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tc.Certificates[0].Certificate[0]})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := &Console{CAPEM: caPEM, CA: pool, t: t, srv: srv, tlsCfg: tc, addr: "127.0.0.1:0",
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
	c.Resume()
	t.Cleanup(c.Pause)
	if password == "" {
		t.Fatal("the first start reported no admin password")
	}
	c.admin = c.userToken(server.AdminUser, password, everything())
	return c
}

// everything is every permission.
func everything() []string {
	var out []string
	for _, rt := range rbac.ResourceTypes() {
		out = append(out, string(rt)+":edit")
	}
	return out
}

// Pause stops serving: the port refuses connections until Resume.
func (c *Console) Pause() {
	c.mu.Lock()
	cancel, done := c.serving, c.done
	c.serving = nil
	c.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	if err := <-done; err != nil {
		c.t.Errorf("console server: %v", err)
	}
}

// Resume serves again, on the same address as before.
func (c *Console) Resume() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.serving != nil {
		return
	}
	var l net.Listener
	var err error
	for range 50 { // the old socket may linger for a moment
		if l, err = net.Listen("tcp", c.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("console listening on %s: %v", c.addr, err)
	}
	c.addr = l.Addr().String()
	c.URL = "https://" + c.addr
	ctx, cancel := context.WithCancel(context.Background())
	c.serving, c.done = cancel, make(chan error, 1)
	go func(done chan error) { done <- c.srv.Serve(ctx, tls.NewListener(l, c.tlsCfg)) }(c.done)
}

// call sends body as JSON with token to path and decodes a 2xx answer
// into out; it returns the status and the body.
func (c *Console) call(token, method, path string, body, out any, hdr http.Header) (int, []byte, http.Header) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.URL+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", c.URL)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode, b, resp.Header
}

// Do calls the API as the administrator and fails the test unless the
// answer is 2xx; a 2xx body is decoded into out when it is not nil.
func (c *Console) Do(method, path string, body, out any) {
	c.t.Helper()
	if code, b, _ := c.call(c.admin, method, path, body, out, nil); code/100 != 2 {
		c.t.Fatalf("%s %s: %d %s", method, path, code, b)
	}
}

// userToken logs in as user and creates an API token with scopes for it.
func (c *Console) userToken(user, password string, scopes []string) string {
	c.t.Helper()
	code, b, hdr := c.call("", "POST", "/api/v1/auth/login", map[string]string{"username": user, "password": password}, nil, nil)
	if code != http.StatusOK {
		c.t.Fatalf("login as %s: %d %s", user, code, b)
	}
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.Unmarshal(b, &login); err != nil {
		c.t.Fatal(err)
	}
	h := http.Header{"X-Csrf-Token": {login.CSRF}}
	for _, ck := range (&http.Response{Header: hdr}).Cookies() {
		h.Add("Cookie", ck.Name+"="+ck.Value)
	}
	var tok struct {
		Token string `json:"token"`
	}
	code, b, _ = c.call("", "POST", "/api/v1/tokens", map[string]any{"name": user + " e2e", "scopes": scopes, "ttl": "24h"}, &tok, h)
	if code != http.StatusCreated || tok.Token == "" {
		c.t.Fatalf("creating a token for %s: %d %s", user, code, b)
	}
	return tok.Token
}

// tokenOwnerRole lets a service account create its own API tokens.
const tokenOwnerRole = "e2e token owner"

// GatewayToken creates the service account name, binds it to the Gateway
// role on the Global scope (and to a role that lets it create its own
// tokens), and returns an API token of it limited to enforcers:edit, all
// through the REST API as an operator would.
func (c *Console) GatewayToken(name string) string {
	c.t.Helper()
	c.roleOnce.Do(func() {
		c.Do("POST", "/api/v1/roles", rbac.Role{Name: tokenOwnerRole, Permissions: rbac.Permissions{rbac.Tokens: rbac.Edit}}, nil)
	})
	pw := randomHex(16)
	c.Do("POST", "/api/v1/users", map[string]string{"username": name, "password": pw}, nil)
	for _, role := range []string{rbac.RoleGateway, tokenOwnerRole} {
		c.Do("POST", "/api/v1/role-bindings", store.RoleBinding{SubjectKind: store.SubjectUser, Subject: name, Role: role, Scopes: []string{rbac.GlobalScopeName}}, nil)
	}
	return c.userToken(name, pw, []string{"enforcers:edit"})
}

// CreateGroup creates an enforcer group and returns its enrollment token.
func (c *Console) CreateGroup(name string, settings *fleet.GroupSettings) string {
	c.t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	body := map[string]any{"name": name}
	if settings != nil {
		body["settings"] = settings
	}
	c.Do("POST", "/api/v1/enforcer-groups", body, &out)
	if out.Token == "" {
		c.t.Fatalf("group %s: no enrollment token", name)
	}
	return out.Token
}

// Agents returns the enrolled agents.
func (c *Console) Agents() []store.Agent {
	c.t.Helper()
	var page api.Page[store.Agent]
	c.Do("GET", "/api/v1/agents?limit=500", nil, &page)
	return page.Items
}

// Agent returns the agent with id, failing the test when there is none.
func (c *Console) Agent(id string) store.Agent {
	c.t.Helper()
	var a store.Agent
	c.Do("GET", "/api/v1/agents/"+url.PathEscape(id), nil, &a)
	return a
}

// RuntimeEvent is a runtime event as the server's audit trail holds it.
type RuntimeEvent struct {
	// Action is runtime.detect or runtime.block.
	Action string
	Event  fleet.Event
}

// RuntimeEvents returns every runtime event in the audit trail, following
// the pages.
func (c *Console) RuntimeEvents() []RuntimeEvent {
	c.t.Helper()
	var out []RuntimeEvent
	cursor := ""
	for {
		var page api.Page[audit.Event]
		c.Do("GET", "/api/v1/runtime-events?limit=500&cursor="+url.QueryEscape(cursor), nil, &page)
		for _, e := range page.Items {
			var ev fleet.Event
			if err := json.Unmarshal(e.After, &ev); err != nil {
				c.t.Fatalf("runtime event %d: %v: %s", e.Seq, err, e.After)
			}
			out = append(out, RuntimeEvent{Action: e.Action, Event: ev})
		}
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
}

// GatewayCertificate has the server sign a serving certificate for a
// fresh key, for hosts, with a Gateway token, and returns it with the
// fleet CA.
func (c *Console) GatewayCertificate(token string, hosts ...string) (tls.Certificate, []byte) {
	c.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: hosts[0]}}, key)
	if err != nil {
		c.t.Fatal(err)
	}
	var out server.GatewayCertificate
	req := server.GatewayCertificateRequest{CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), Hosts: hosts}
	if code, b, _ := c.call(token, "POST", server.PathGatewayCertificate, req, &out, nil); code != http.StatusOK {
		c.t.Fatalf("gateway certificate: %d %s", code, b)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		c.t.Fatal(err)
	}
	cert, err := tls.X509KeyPair([]byte(out.Certificate), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	if err != nil {
		c.t.Fatal(err)
	}
	return cert, []byte(out.CA)
}

// Gateway is a gateway relaying to a console, serving in the background.
type Gateway struct {
	*gateway.Gateway
	// FleetCA is the PEM fleet CA (agents' bootstrap CA).
	FleetCA []byte
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
}

// GatewayOptions configure StartGateway.
type GatewayOptions struct {
	// Listen is the address, 127.0.0.1:0 when empty and Listener is nil.
	Listen   string
	Listener net.Listener
	// Hosts are the certificate's names; 127.0.0.1 when empty.
	Hosts []string
	// Wrap, when set, wraps the REST backend (to observe or disturb it).
	Wrap func(fleet.Backend) fleet.Backend
}

// StartGateway obtains a serving certificate from the console with the
// Gateway token and runs a gateway relaying to the console through its
// REST API, until Stop or the end of the test. Stopping is immediate (no
// grace period), like a killed process.
func (c *Console) StartGateway(token string, o GatewayOptions) *Gateway {
	c.t.Helper()
	if o.Listen == "" && o.Listener == nil {
		o.Listen = "127.0.0.1:0"
	}
	if len(o.Hosts) == 0 {
		o.Hosts = []string{"127.0.0.1"}
	}
	cert, caPEM := c.GatewayCertificate(token, o.Hosts...)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		c.t.Fatal("gateway certificate answer: no fleet CA")
	}
	var be fleet.Backend
	be, err := restclient.New(restclient.Config{URL: c.URL, Token: token, CA: c.CA, Timeout: 10 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	if o.Wrap != nil {
		be = o.Wrap(be)
	}
	g, err := gateway.New(gateway.Config{Listen: o.Listen, Listener: o.Listener, Certificate: cert, ClientCA: pool, Backend: be,
		PollInterval: 200 * time.Millisecond, EventsPerSecond: 1e6, EventBurst: 100000, GracePeriod: -1, Logger: Quiet})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gw := &Gateway{Gateway: g, FleetCA: caPEM, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(gw.done)
		if err := g.Serve(ctx); err != nil {
			c.t.Errorf("gateway %s: %v", g.Addr(), err)
		}
	}()
	c.t.Cleanup(gw.Stop)
	return gw
}

// Stop stops the gateway at once and waits until it has.
func (g *Gateway) Stop() {
	g.once.Do(func() {
		g.cancel()
		<-g.done
	})
}

// Eventually polls cond every 50 ms until it holds or timeout passes, and
// fails the test with what then.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand crashes the program instead)
	return hex.EncodeToString(b)
}
