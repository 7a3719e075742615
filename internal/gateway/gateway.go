// Package gateway serves the fleet protocol (api/fleet/v1) to agents over
// mutual TLS and relays every call to the server through a fleet.Backend.
//
// A gateway keeps no state an agent depends on: several gateways behind
// one address (DNS round robin or an L4 load balancer) share the load, and
// an agent that loses its gateway reconnects to any other. Every call except
// Enroll (authenticated by the group token) and the standard gRPC health
// service needs a client certificate chained to the fleet CA; the agent id
// is the certificate's CommonName and replaces any agent id in a message,
// so an agent cannot speak for another.
package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	fleetv1 "github.com/mamorisec/mamori/api/fleet/v1"
	"github.com/mamorisec/mamori/internal/fleet"
)

// Defaults of Config.
const (
	DefaultPollInterval    = 10 * time.Second
	DefaultMaxMessageBytes = 4 << 20
	DefaultEventsPerSecond = 1000
	DefaultEventBurst      = 5000
	DefaultGracePeriod     = 10 * time.Second
)

// Config configures a gateway.
type Config struct {
	// Listen is the TCP address to serve on, such as ":8443".
	Listen string
	// Listener, when set, is served instead of listening on Listen (a
	// socket handed over by systemd, or made in another network
	// namespace). Serve closes it.
	Listener net.Listener
	// Certificate is the gateway's serving certificate (signed by the
	// fleet CA, so agents trust it by the CA they received at enrollment).
	Certificate tls.Certificate
	// ClientCA is the fleet CA that signs agent certificates.
	ClientCA *x509.CertPool
	// Backend is the server the gateway relays to.
	Backend fleet.Backend
	// PollInterval is how often a policy watch asks the backend for the
	// bundle; DefaultPollInterval when zero. A heartbeat whose reply names
	// a new revision wakes the agent's watch at once.
	PollInterval time.Duration
	// MaxMessageBytes bounds a received message; DefaultMaxMessageBytes
	// when zero.
	MaxMessageBytes int
	// EventsPerSecond and EventBurst rate-limit each agent's events; a
	// batch over the limit is refused with ResourceExhausted and sent
	// again by the agent later. Defaults when zero.
	EventsPerSecond float64
	EventBurst      int
	// GracePeriod is how long Serve waits for calls in flight when its
	// context ends before closing connections; DefaultGracePeriod when
	// zero, no wait when negative.
	GracePeriod time.Duration
	// Logger receives one line per refused call; slog.Default when nil.
	Logger *slog.Logger
}

// Gateway is a fleet gateway. Create it with New and run it with Serve.
type Gateway struct {
	cfg      Config
	lis      net.Listener
	srv      *grpc.Server
	health   *health.Server
	limiter  *limiter
	stopping chan struct{}
	stopOnce sync.Once

	mu       sync.Mutex
	watchers map[string]map[chan struct{}]struct{}
}

// New checks cfg and listens on cfg.Listen.
func New(cfg Config) (*Gateway, error) {
	if cfg.Backend == nil {
		return nil, errors.New("gateway: no backend")
	}
	if cfg.ClientCA == nil {
		return nil, errors.New("gateway: no client CA (the fleet CA)")
	}
	if len(cfg.Certificate.Certificate) == 0 {
		return nil, errors.New("gateway: no serving certificate")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.EventsPerSecond <= 0 {
		cfg.EventsPerSecond = DefaultEventsPerSecond
	}
	if cfg.EventBurst <= 0 {
		cfg.EventBurst = DefaultEventBurst
	}
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	lis := cfg.Listener
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("gateway: listening on %s: %w", cfg.Listen, err)
		}
	}
	g := &Gateway{
		cfg:      cfg,
		lis:      lis,
		health:   health.NewServer(),
		limiter:  newLimiter(cfg.EventsPerSecond, cfg.EventBurst),
		stopping: make(chan struct{}),
		watchers: map[string]map[chan struct{}]struct{}{},
	}
	tlsCfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cfg.Certificate},
		// A certificate is verified when given; which calls need one is
		// decided per call (Enroll does not).
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  cfg.ClientCA,
	}
	g.srv = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.MaxConcurrentStreams(1000),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(g.unaryAuth),
		grpc.ChainStreamInterceptor(g.streamAuth),
	)
	fleetv1.RegisterFleetServer(g.srv, &service{g: g})
	healthpb.RegisterHealthServer(g.srv, g.health)
	g.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	g.health.SetServingStatus(fleetv1.Fleet_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return g, nil
}

// Addr returns the address the gateway listens on.
func (g *Gateway) Addr() net.Addr { return g.lis.Addr() }

// Serve serves until ctx ends, then reports NOT_SERVING, ends the policy
// watches (agents reconnect to another gateway), waits up to the grace
// period for calls in flight and closes every connection.
func (g *Gateway) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- g.srv.Serve(g.lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: serving on %s: %w", g.lis.Addr(), err)
	case <-ctx.Done():
	}
	g.shutdown()
	<-errc
	return nil
}

func (g *Gateway) shutdown() {
	g.stopOnce.Do(func() {
		g.health.Shutdown()
		close(g.stopping)
		if g.cfg.GracePeriod < 0 {
			g.srv.Stop()
			return
		}
		done := make(chan struct{})
		go func() { g.srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(g.cfg.GracePeriod):
			g.srv.Stop()
		}
	})
}

type agentKey struct{}

// agentFrom returns the authenticated agent id of a call.
func agentFrom(ctx context.Context) string {
	id, _ := ctx.Value(agentKey{}).(string)
	return id
}

// authenticate returns ctx carrying the agent id of the verified client
// certificate; Enroll and the health service need none.
func (g *Gateway) authenticate(ctx context.Context, method string) (context.Context, error) {
	if method == fleetv1.Fleet_Enroll_FullMethodName || strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		return ctx, nil
	}
	id, err := agentID(ctx)
	if err != nil {
		g.cfg.Logger.Warn("fleet call refused", "method", method, "err", err)
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return context.WithValue(ctx, agentKey{}, id), nil
}

// agentID returns the CommonName of the call's verified, unexpired client
// certificate.
func agentID(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", errors.New("no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return "", fmt.Errorf("%s: a client certificate signed by the fleet CA is required", p.Addr)
	}
	leaf := info.State.VerifiedChains[0][0]
	// The handshake checked validity when the connection was made; a
	// long-lived connection must not outlive the certificate.
	if now := time.Now(); now.After(leaf.NotAfter) {
		return "", fmt.Errorf("%s: client certificate of %q expired at %s", p.Addr, leaf.Subject.CommonName, leaf.NotAfter.Format(time.RFC3339))
	}
	if leaf.Subject.CommonName == "" {
		return "", fmt.Errorf("%s: client certificate has no CommonName (agent id)", p.Addr)
	}
	return leaf.Subject.CommonName, nil
}

func (g *Gateway) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := g.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

type authStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s authStream) Context() context.Context { return s.ctx }

func (g *Gateway) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := g.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, authStream{ss, ctx})
}

// subscribe registers a policy watch of agent, woken by notify.
func (g *Gateway) subscribe(agent string) (chan struct{}, func()) {
	c := make(chan struct{}, 1)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.watchers[agent] == nil {
		g.watchers[agent] = map[chan struct{}]struct{}{}
	}
	g.watchers[agent][c] = struct{}{}
	return c, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		delete(g.watchers[agent], c)
		if len(g.watchers[agent]) == 0 {
			delete(g.watchers, agent)
		}
	}
}

func (g *Gateway) notify(agent string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.watchers[agent] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// backendError maps a backend error to a gRPC status. Errors with a method
// HTTPStatus() int (the REST client's, the server's) keep their meaning;
// others are Unavailable, so the agent retries later.
func backendError(call string, err error) error {
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, call+": canceled")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, call+": "+err.Error())
	}
	code := codes.Unavailable
	var hs interface{ HTTPStatus() int }
	if errors.As(err, &hs) {
		switch s := hs.HTTPStatus(); {
		case s == http.StatusBadRequest || s == http.StatusUnprocessableEntity || s == http.StatusRequestEntityTooLarge:
			code = codes.InvalidArgument
		case s == http.StatusUnauthorized:
			code = codes.Unauthenticated
		case s == http.StatusForbidden:
			code = codes.PermissionDenied
		case s == http.StatusNotFound:
			code = codes.NotFound
		case s == http.StatusConflict:
			code = codes.AlreadyExists
		case s == http.StatusTooManyRequests:
			code = codes.ResourceExhausted
		case s >= 500:
			code = codes.Unavailable
		default:
			code = codes.Unknown
		}
	}
	return status.Error(code, call+": "+err.Error())
}
