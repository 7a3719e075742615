// Package fleetclient connects an agent to the fleet through the gateways:
// it enrolls with the group token (the key never leaves the host), renews
// the certificate before it expires, sends heartbeats, watches the policy
// bundle and delivers the spooled events.
//
// The identity and the last policy bundle live in a state directory, so an
// agent that restarts while no gateway is reachable keeps its identity and
// goes on enforcing the last bundle it received. The client connects to one
// gateway of a list at a time and moves to the next, with exponential
// backoff, when a call finds it unreachable.
package fleetclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/mamorisec/mamori/api/fleet/v1"
	"github.com/mamorisec/mamori/internal/enforcer/spool"
	"github.com/mamorisec/mamori/internal/fleet"
)

// Defaults of Config.
const (
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultBatchSize         = 500
	DefaultMaxBatchBytes     = 1 << 20
	// maxRecvBytes bounds a message from a gateway (a policy bundle).
	maxRecvBytes      = 64 << 20
	DefaultMinBackoff = 200 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	callTimeout       = 30 * time.Second
)

// Config configures a client.
type Config struct {
	// StateDir holds the identity and the last policy bundle (created
	// 0700).
	StateDir string
	// Gateways are the gateway addresses (host:port) to use, in order.
	Gateways []string
	// BootstrapCA is the PEM CA that verifies gateways before enrollment
	// (after it, the fleet CA received at enrollment is trusted too).
	BootstrapCA []byte
	// ServerName is the name to verify gateway certificates against; the
	// host of each address when empty.
	ServerName string
	// Token is the group's enrollment token; only needed to enroll.
	Token string
	// Kind (fleet.KindEnforcer when empty), Hostname and Version describe
	// the agent.
	Kind, Hostname, Version string
	// HeartbeatInterval is the heartbeat period; default when zero.
	HeartbeatInterval time.Duration
	// Spool holds the events to deliver; none are sent when nil.
	Spool *spool.Spool
	// BatchSize bounds the events per call and MaxBatchBytes their
	// encoded size (keep it under the gateway's message limit); defaults
	// when zero. A batch always holds at least one event.
	BatchSize     int
	MaxBatchBytes int
	// Status fills a heartbeat's capabilities and container count; may be
	// nil.
	Status func() fleet.Heartbeat
	// OnPolicy receives each new policy bundle, and the one on disk when
	// Run starts; may be nil.
	OnPolicy func(fleet.PolicyBundle)
	// MinBackoff and MaxBackoff bound the wait between failed attempts.
	MinBackoff, MaxBackoff time.Duration
	// Logger; slog.Default when nil.
	Logger *slog.Logger
}

// Client is an agent's connection to the fleet.
type Client struct {
	cfg Config

	mu     sync.Mutex
	id     *identity
	policy *fleet.PolicyBundle
	conn   *grpc.ClientConn
	gw     int // index in cfg.Gateways of conn's gateway
}

// ErrRefused wraps a refusal that retrying will not change (a bad
// enrollment token, an agent the server does not know).
var ErrRefused = errors.New("refused by the fleet")

// New loads the identity and last policy bundle from cfg.StateDir, if any.
func New(cfg Config) (*Client, error) {
	if len(cfg.Gateways) == 0 {
		return nil, errors.New("fleetclient: no gateway address")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("fleetclient: no state directory")
	}
	if cfg.Kind == "" {
		cfg.Kind = fleet.KindEnforcer
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("fleetclient: %w", err)
	}
	id, err := readIdentity(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("fleetclient: %w", err)
	}
	p, err := readPolicy(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("fleetclient: %w", err)
	}
	return &Client{cfg: cfg, id: id, policy: p}, nil
}

// AgentID returns the agent id, empty before enrollment.
func (c *Client) AgentID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id == nil {
		return ""
	}
	return c.id.AgentID
}

// Certificate returns the current client certificate, nil before
// enrollment.
func (c *Client) Certificate() *x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id == nil {
		return nil
	}
	return c.id.certificate.Leaf
}

// Policy returns the last policy bundle received (kept on disk across
// restarts).
func (c *Client) Policy() (fleet.PolicyBundle, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.policy == nil {
		return fleet.PolicyBundle{}, false
	}
	return *c.policy, true
}

// Close closes the connection to the gateway.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		err := c.conn.Close()
		c.conn = nil
		return err
	}
	return nil
}

// client returns a Fleet client on the current connection, dialing the
// current gateway when there is none.
func (c *Client) client() (fleetv1.FleetClient, *grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		conn, err := c.dial(c.cfg.Gateways[c.gw])
		if err != nil {
			return nil, nil, err
		}
		c.conn = conn
	}
	return fleetv1.NewFleetClient(c.conn), c.conn, nil
}

func (c *Client) dial(addr string) (*grpc.ClientConn, error) {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(c.cfg.BootstrapCA)
	if c.id != nil {
		roots.AppendCertsFromPEM([]byte(c.id.CAPEM))
	}
	tlsCfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    roots,
		ServerName: c.cfg.ServerName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.id == nil {
				return &tls.Certificate{}, nil // enrolling: no certificate yet
			}
			cert := c.id.certificate
			return &cert, nil
		},
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes)))
	if err != nil {
		return nil, fmt.Errorf("fleetclient: gateway %s: %w", addr, err)
	}
	return conn, nil
}

// failover drops conn after a failed call and moves to the next gateway.
func (c *Client) failover(conn *grpc.ClientConn, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != conn || conn == nil {
		return // another loop already moved on
	}
	c.cfg.Logger.Warn("gateway unusable, moving to the next", "gateway", c.cfg.Gateways[c.gw], "err", err)
	c.conn.Close()
	c.conn = nil
	c.gw = (c.gw + 1) % len(c.cfg.Gateways)
}

// reconnect closes the connection so the next call handshakes again (with
// a renewed certificate).
func (c *Client) reconnect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// transient reports whether err calls for another gateway and a retry.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unauthenticated, codes.Unknown, codes.Internal, codes.Aborted:
		return true
	}
	return false
}

// backoff is an exponential backoff with jitter.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) reset() { b.cur = 0 }

// wait sleeps for the next backoff interval or until ctx ends.
func (b *backoff) wait(ctx context.Context) error {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	d := b.cur/2 + rand.N(b.cur/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *Client) newBackoff() *backoff {
	return &backoff{min: c.cfg.MinBackoff, max: c.cfg.MaxBackoff}
}

// call runs f against the current gateway until it succeeds, fails for
// good, or ctx ends, moving to the next gateway after a transient failure.
func (c *Client) call(ctx context.Context, what string, f func(context.Context, fleetv1.FleetClient) error) error {
	b := c.newBackoff()
	for {
		fc, conn, err := c.client()
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		err = f(cctx, fc)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case status.Code(err) == codes.ResourceExhausted:
			// Rate limited: same gateway, later.
		case transient(err):
			c.failover(conn, err)
		default:
			return fmt.Errorf("fleetclient: %s: %w: %w", what, ErrRefused, err)
		}
		if err := b.wait(ctx); err != nil {
			return err
		}
	}
}

// Enroll enrolls the agent with the group token unless it has an identity,
// trying the gateways until one answers. A refused token returns an error
// wrapping ErrRefused at once.
func (c *Client) Enroll(ctx context.Context) error {
	if c.AgentID() != "" {
		return nil
	}
	if c.cfg.Token == "" {
		return errors.New("fleetclient: not enrolled and no enrollment token")
	}
	key, csr, err := newKey(c.cfg.Hostname)
	if err != nil {
		return fmt.Errorf("fleetclient: %w", err)
	}
	var resp fleet.EnrollResponse
	err = c.call(ctx, "enroll", func(ctx context.Context, fc fleetv1.FleetClient) error {
		m, err := fc.Enroll(ctx, fleetv1.FromEnrollRequest(fleet.EnrollRequest{
			Token: c.cfg.Token, Kind: c.cfg.Kind, Hostname: c.cfg.Hostname, Version: c.cfg.Version, CSR: csr,
		}))
		if err == nil {
			resp = fleetv1.ToEnrollResponse(m)
		}
		if status.Code(err) == codes.Unauthenticated {
			return status.Error(codes.PermissionDenied, err.Error()) // a bad token is final
		}
		return err
	})
	if err != nil {
		return err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return fmt.Errorf("fleetclient: %w", err)
	}
	id := &identity{AgentID: resp.AgentID, Group: resp.Group, KeyPEM: kp, CertPEM: resp.Certificate, CAPEM: resp.CA,
		NotAfter: resp.NotAfter, RenewFrom: resp.RenewFrom}
	if err := c.setIdentity(id); err != nil {
		return err
	}
	c.cfg.Logger.Info("enrolled", "agent", id.AgentID, "group", id.Group, "notAfter", id.NotAfter)
	// Reconnect with the certificate and the fleet CA.
	c.reconnect()
	return nil
}

func (c *Client) setIdentity(id *identity) error {
	if err := id.load(); err != nil {
		return fmt.Errorf("fleetclient: enrollment answer: %w", err)
	}
	if err := writeIdentity(c.cfg.StateDir, id); err != nil {
		return fmt.Errorf("fleetclient: %w", err)
	}
	c.mu.Lock()
	c.id = id
	c.mu.Unlock()
	return nil
}

// Renew replaces the certificate (and key) by a fresh one.
func (c *Client) Renew(ctx context.Context) error {
	c.mu.Lock()
	old := c.id
	c.mu.Unlock()
	if old == nil {
		return errors.New("fleetclient: not enrolled")
	}
	key, csr, err := newKey(old.AgentID)
	if err != nil {
		return fmt.Errorf("fleetclient: %w", err)
	}
	var resp fleet.RenewResponse
	err = c.call(ctx, "renew", func(ctx context.Context, fc fleetv1.FleetClient) error {
		m, err := fc.Renew(ctx, fleetv1.FromRenewRequest(fleet.RenewRequest{AgentID: old.AgentID, CSR: csr}))
		if err == nil {
			resp = fleetv1.ToRenewResponse(m)
		}
		return err
	})
	if err != nil {
		return err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return fmt.Errorf("fleetclient: %w", err)
	}
	id := *old
	id.KeyPEM, id.CertPEM, id.NotAfter, id.RenewFrom = kp, resp.Certificate, resp.NotAfter, resp.RenewFrom
	if err := c.setIdentity(&id); err != nil {
		return err
	}
	c.cfg.Logger.Info("certificate renewed", "agent", id.AgentID, "notAfter", id.NotAfter)
	c.reconnect()
	return nil
}

// Run enrolls if needed, hands the policy bundle on disk to OnPolicy, then
// renews, heartbeats, watches policies and delivers events until ctx ends.
// It returns early only when the fleet refuses the agent for good.
func (c *Client) Run(ctx context.Context) error {
	if p, ok := c.Policy(); ok && c.cfg.OnPolicy != nil {
		c.cfg.OnPolicy(p)
	}
	if err := c.Enroll(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loops := []func(context.Context) error{c.renewLoop, c.heartbeatLoop, c.watchLoop}
	if c.cfg.Spool != nil {
		loops = append(loops, c.eventLoop)
	}
	errc := make(chan error, len(loops))
	for _, loop := range loops {
		go func() { errc <- loop(ctx) }()
	}
	var first error
	for range loops {
		if err := <-errc; err != nil && first == nil && ctx.Err() == nil {
			first = err
			cancel()
		}
	}
	c.Close()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *Client) renewLoop(ctx context.Context) error {
	for {
		c.mu.Lock()
		from := c.id.RenewFrom
		c.mu.Unlock()
		if err := sleep(ctx, time.Until(from)); err != nil {
			return nil
		}
		if err := c.Renew(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func (c *Client) heartbeatLoop(ctx context.Context) error {
	for {
		var hb fleet.Heartbeat
		if c.cfg.Status != nil {
			hb = c.cfg.Status()
		}
		hb.AgentID, hb.Hostname, hb.Version = c.AgentID(), c.cfg.Hostname, c.cfg.Version
		if p, ok := c.Policy(); ok {
			hb.PolicyRevision = p.Revision
		}
		if c.cfg.Spool != nil {
			hb.EventsBuffered = c.cfg.Spool.Stats().Pending
		}
		err := c.call(ctx, "heartbeat", func(ctx context.Context, fc fleetv1.FleetClient) error {
			_, err := fc.Heartbeat(ctx, fleetv1.FromHeartbeat(hb))
			return err
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if err := sleep(ctx, c.cfg.HeartbeatInterval); err != nil {
			return nil
		}
	}
}

func (c *Client) watchLoop(ctx context.Context) error {
	b := c.newBackoff()
	for ctx.Err() == nil {
		fc, conn, err := c.client()
		if err != nil {
			return err
		}
		err = c.watch(ctx, fc, b)
		if ctx.Err() != nil {
			return nil
		}
		if transient(err) || status.Code(err) == codes.ResourceExhausted {
			c.failover(conn, err)
		} else {
			return fmt.Errorf("fleetclient: policy watch: %w: %w", ErrRefused, err)
		}
		if b.wait(ctx) != nil {
			return nil
		}
	}
	return nil
}

// watch receives bundles until the stream breaks.
func (c *Client) watch(ctx context.Context, fc fleetv1.FleetClient, b *backoff) error {
	var since int64
	if p, ok := c.Policy(); ok {
		since = p.Revision
	}
	stream, err := fc.WatchPolicies(ctx, fleetv1.FromPolicyRequest(fleet.PolicyRequest{AgentID: c.AgentID(), Since: since}))
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		b.reset()
		bundle := fleetv1.ToPolicyBundle(m)
		if p, ok := c.Policy(); ok && p.Revision == bundle.Revision {
			continue
		}
		if err := writeJSON(filepath.Join(c.cfg.StateDir, policyFile), 0o600, bundle); err != nil {
			c.cfg.Logger.Error("keeping the policy bundle on disk", "err", err)
		}
		c.mu.Lock()
		c.policy = &bundle
		c.mu.Unlock()
		c.cfg.Logger.Info("policy bundle received", "revision", bundle.Revision, "policies", len(bundle.Policies))
		if c.cfg.OnPolicy != nil {
			c.cfg.OnPolicy(bundle)
		}
	}
}

// eventLoop delivers the spool in order. A batch the gateway refuses as
// invalid is sent again one event at a time, and an event refused on its
// own is logged and acknowledged (dropped) so it cannot block the spool.
func (c *Client) eventLoop(ctx context.Context) error {
	sp := c.cfg.Spool
	single := 0 // events still to send one at a time
	for {
		size := c.cfg.BatchSize
		if single > 0 {
			size = 1
		}
		evs, err := sp.Peek(size)
		if err != nil {
			return fmt.Errorf("fleetclient: %w", err)
		}
		if len(evs) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-sp.Notify():
			case <-time.After(time.Second):
			}
			continue
		}
		agent := c.AgentID()
		msgs := make([]*fleetv1.Event, 0, len(evs))
		bytes := 0
		for i := range evs {
			evs[i].AgentID = agent
			m := fleetv1.FromEvent(evs[i])
			if bytes += proto.Size(m); bytes > c.cfg.MaxBatchBytes && i > 0 {
				evs = evs[:i]
				break
			}
			msgs = append(msgs, m)
		}
		var ack fleet.EventAck
		err = c.call(ctx, "events", func(ctx context.Context, fc fleetv1.FleetClient) error {
			m, err := fc.SendEvents(ctx, &fleetv1.EventBatch{AgentId: agent, Events: msgs})
			if err == nil {
				ack = fleetv1.ToEventAck(m)
			}
			return err
		})
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case status.Code(err) == codes.InvalidArgument && len(evs) > 1:
			single = len(evs)
			continue
		case status.Code(err) == codes.InvalidArgument:
			c.cfg.Logger.Error("event refused by the fleet, dropped", "id", evs[0].ID, "err", err)
		case err != nil:
			return err
		case ack.Duplicates > 0:
			c.cfg.Logger.Info("events delivered again were duplicates", "duplicates", ack.Duplicates, "stored", ack.Stored)
		}
		if err := sp.Ack(evs[len(evs)-1].ID); err != nil {
			return fmt.Errorf("fleetclient: %w", err)
		}
		single = max(0, single-len(evs))
	}
}

// ReportInventory sends the host's inventory.
func (c *Client) ReportInventory(ctx context.Context, inv fleet.Inventory) error {
	inv.AgentID = c.AgentID()
	return c.call(ctx, "inventory", func(ctx context.Context, fc fleetv1.FleetClient) error {
		_, err := fc.ReportInventory(ctx, fleetv1.FromInventory(inv))
		return err
	})
}
