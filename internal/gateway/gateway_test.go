package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	fleetv1 "github.com/mamorisec/mamori/api/fleet/v1"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/fleet/fleettest"
)

const token = "tok"

type env struct {
	be     *fleettest.Backend
	gw     *Gateway
	stop   func()
	agent  string
	cert   tls.Certificate
	client fleetv1.FleetClient
}

// setup starts a gateway on 127.0.0.1 and enrolls one agent through it.
func setup(t *testing.T, cfg Config) *env {
	t.Helper()
	be, err := fleettest.New(token)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := be.ServerCertificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.Certificate, cfg.ClientCA, cfg.Backend = "127.0.0.1:0", serving, be.CAPool(), be
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	gw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := gw.Serve(ctx); err != nil {
			t.Error(err)
		}
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	e := &env{be: be, gw: gw, stop: stop}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	anon := e.dial(t, nil)
	resp, err := anon.Enroll(context.Background(), &fleetv1.EnrollRequest{Token: token, Kind: fleet.KindEnforcer,
		Csr: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode([]byte(resp.GetCertificate()))
	e.agent = resp.GetAgentId()
	e.cert = tls.Certificate{Certificate: [][]byte{blk.Bytes}, PrivateKey: key}
	e.client = e.dial(t, &e.cert)
	return e
}

func (e *env) dial(t *testing.T, cert *tls.Certificate) fleetv1.FleetClient {
	return fleetv1.NewFleetClient(e.conn(t, cert))
}

func (e *env) conn(t *testing.T, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: e.be.CAPool(), MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(e.gw.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestAuthentication(t *testing.T) {
	e := setup(t, Config{})
	ctx := context.Background()
	anon := e.dial(t, nil)
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"enroll with a bad token", func() error {
			_, err := anon.Enroll(ctx, &fleetv1.EnrollRequest{Token: "bad", Csr: "x"})
			return err
		}, codes.Unauthenticated},
		{"enroll without csr", func() error {
			_, err := anon.Enroll(ctx, &fleetv1.EnrollRequest{Token: token})
			return err
		}, codes.InvalidArgument},
		{"heartbeat without certificate", func() error {
			_, err := anon.Heartbeat(ctx, &fleetv1.Heartbeat{AgentId: e.agent})
			return err
		}, codes.Unauthenticated},
		{"renew without certificate", func() error {
			_, err := anon.Renew(ctx, &fleetv1.RenewRequest{AgentId: e.agent})
			return err
		}, codes.Unauthenticated},
		{"events without certificate", func() error {
			_, err := anon.SendEvents(ctx, &fleetv1.EventBatch{AgentId: e.agent})
			return err
		}, codes.Unauthenticated},
		{"inventory without certificate", func() error {
			_, err := anon.ReportInventory(ctx, &fleetv1.Inventory{AgentId: e.agent})
			return err
		}, codes.Unauthenticated},
		{"watch without certificate", func() error {
			s, err := anon.WatchPolicies(ctx, &fleetv1.PolicyRequest{})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		}, codes.Unauthenticated},
		{"heartbeat with certificate", func() error {
			_, err := e.client.Heartbeat(ctx, &fleetv1.Heartbeat{})
			return err
		}, codes.OK},
		{"renew with a bad csr", func() error {
			_, err := e.client.Renew(ctx, &fleetv1.RenewRequest{Csr: "junk"})
			return err
		}, codes.InvalidArgument},
		{"event without id", func() error {
			_, err := e.client.SendEvents(ctx, &fleetv1.EventBatch{Events: []*fleetv1.Event{{}}})
			return err
		}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(tt.call()); got != tt.want {
				t.Errorf("code %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHealthWithoutCertificate(t *testing.T) {
	e := setup(t, Config{})
	h := healthpb.NewHealthClient(e.conn(t, nil))
	resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: fleetv1.Fleet_ServiceDesc.ServiceName})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", resp, err)
	}
}

func TestMessageSizeLimit(t *testing.T) {
	e := setup(t, Config{MaxMessageBytes: 64 << 10})
	big := &fleetv1.Inventory{Host: strings.Repeat("x", 128<<10)}
	if _, err := e.client.ReportInventory(context.Background(), big); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("oversized message: %v, want ResourceExhausted", err)
	}
}

func TestEventRateLimit(t *testing.T) {
	e := setup(t, Config{EventsPerSecond: 10, EventBurst: 100})
	batch := func(from, n int) *fleetv1.EventBatch {
		b := &fleetv1.EventBatch{}
		for i := from; i < from+n; i++ {
			b.Events = append(b.Events, &fleetv1.Event{Id: fmt.Sprint(i)})
		}
		return b
	}
	ctx := context.Background()
	if _, err := e.client.SendEvents(ctx, batch(1, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.SendEvents(ctx, batch(101, 50)); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("over the rate: %v, want ResourceExhausted", err)
	}
	if _, err := e.client.SendEvents(ctx, batch(1, 101)); status.Code(err) != codes.InvalidArgument {
		t.Errorf("batch over the burst: %v, want InvalidArgument", err)
	}
	if n := len(e.be.StoredEvents()); n != 100 {
		t.Errorf("%d events stored, want 100", n)
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(10, 20)
	now := time.Unix(0, 0)
	steps := []struct {
		after time.Duration
		agent string
		n     int
		ok    bool
	}{
		{0, "a", 20, true},
		{0, "a", 1, false},
		{0, "b", 20, true}, // agents are limited separately
		{time.Second, "a", 10, true},
		{0, "a", 1, false},
		{time.Hour, "a", 20, true}, // refills to the burst, no more
		{0, "a", 1, false},
	}
	for i, s := range steps {
		now = now.Add(s.after)
		if got := l.take(s.agent, s.n, now) == 0; got != s.ok {
			t.Errorf("step %d: take(%s, %d) allowed=%v, want %v", i, s.agent, s.n, got, s.ok)
		}
	}
}

func TestGracefulStopEndsWatch(t *testing.T) {
	e := setup(t, Config{GracePeriod: 5 * time.Second})
	s, err := e.client.WatchPolicies(context.Background(), &fleetv1.PolicyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.Recv(); err != nil || b.GetRevision() != 1 {
		t.Fatalf("first bundle %v, %v", b, err)
	}
	start := time.Now()
	e.stop()
	if _, err := s.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("watch after stop: %v, want Unavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("graceful stop took %s with a watch open", d)
	}
}

func TestWatchPushesNewRevision(t *testing.T) {
	e := setup(t, Config{PollInterval: time.Hour}) // only a heartbeat can wake the watch
	ctx := context.Background()
	s, err := e.client.WatchPolicies(ctx, &fleetv1.PolicyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	e.be.SetPolicies(fleet.PolicyBundle{Revision: 7})
	if _, err := e.client.Heartbeat(ctx, &fleetv1.Heartbeat{PolicyRevision: 1}); err != nil {
		t.Fatal(err)
	}
	b, err := s.Recv()
	if err != nil || b.GetRevision() != 7 {
		t.Fatalf("pushed bundle %v, %v; want revision 7", b, err)
	}
}

type statusErr int

func (s statusErr) Error() string   { return fmt.Sprintf("status %d", int(s)) }
func (s statusErr) HTTPStatus() int { return int(s) }

func TestBackendError(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{statusErr(http.StatusBadRequest), codes.InvalidArgument},
		{statusErr(http.StatusUnauthorized), codes.Unauthenticated},
		{statusErr(http.StatusForbidden), codes.PermissionDenied},
		{statusErr(http.StatusNotFound), codes.NotFound},
		{statusErr(http.StatusTooManyRequests), codes.ResourceExhausted},
		{statusErr(http.StatusBadGateway), codes.Unavailable},
		{fmt.Errorf("wrapped: %w", statusErr(http.StatusForbidden)), codes.PermissionDenied},
		{errors.New("connection refused"), codes.Unavailable},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
	}
	for _, tt := range tests {
		err := backendError("events", tt.err)
		if got := status.Code(err); got != tt.want {
			t.Errorf("%v: code %v, want %v", tt.err, got, tt.want)
		}
		if !strings.Contains(err.Error(), "events") {
			t.Errorf("%v: %q does not name the call", tt.err, err)
		}
	}
}

func TestNewErrors(t *testing.T) {
	be, err := fleettest.New(token)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := be.ServerCertificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	good := Config{Listen: "127.0.0.1:0", Certificate: cert, ClientCA: be.CAPool(), Backend: be}
	for name, mod := range map[string]func(*Config){
		"no backend":     func(c *Config) { c.Backend = nil },
		"no client CA":   func(c *Config) { c.ClientCA = nil },
		"no certificate": func(c *Config) { c.Certificate = tls.Certificate{} },
		"bad address":    func(c *Config) { c.Listen = "256.0.0.1:x" },
	} {
		cfg := good
		mod(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
