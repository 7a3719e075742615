package fleetclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	fleetv1 "github.com/mamorisec/mamori/api/fleet/v1"
	"github.com/mamorisec/mamori/internal/enforcer/fleetclient"
	"github.com/mamorisec/mamori/internal/enforcer/spool"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/fleet/fleettest"
	"github.com/mamorisec/mamori/internal/gateway"
)

const token = "group-token-for-tests"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newBackend(t *testing.T) *fleettest.Backend {
	t.Helper()
	be, err := fleettest.New(token)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// runningGateway is a gateway serving in the background.
type runningGateway struct {
	*gateway.Gateway
	stop func()
}

// startGateway serves a gateway relaying to backend on listen, with a
// serving certificate for host signed by be's CA; stop kills it at once.
func startGateway(t *testing.T, be *fleettest.Backend, backend fleet.Backend, listen, host string) *runningGateway {
	t.Helper()
	return startGatewayOn(t, be, backend, listen, nil, host)
}

// startGatewayOn is startGateway serving lis when not nil.
func startGatewayOn(t *testing.T, be *fleettest.Backend, backend fleet.Backend, listen string, lis net.Listener, host string) *runningGateway {
	t.Helper()
	cert, err := be.ServerCertificate(host)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{
		Listen: listen, Listener: lis, Certificate: cert, ClientCA: be.CAPool(), Backend: backend,
		PollInterval: 100 * time.Millisecond, EventsPerSecond: 1e6, EventBurst: 100000,
		GracePeriod: -1, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := g.Serve(ctx); err != nil {
			t.Error(err)
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return &runningGateway{g, stop}
}

func newClient(t *testing.T, be *fleettest.Backend, state string, sp *spool.Spool, gateways ...string) *fleetclient.Client {
	t.Helper()
	c, err := fleetclient.New(fleetclient.Config{
		StateDir: state, Gateways: gateways, BootstrapCA: be.CAPEM(), Token: token,
		Hostname: "host-1", Version: "test", HeartbeatInterval: 100 * time.Millisecond,
		Spool: sp, BatchSize: 200, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// run runs c in the background until the test ends or stop is called.
func run(t *testing.T, c *fleetclient.Client) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func openSpool(t *testing.T, dir string) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(dir, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

func appendEvents(t *testing.T, sp *spool.Spool, n int) {
	t.Helper()
	for i := range n {
		if _, err := sp.Append(fleet.Event{Time: time.Now().UTC(), Status: fleet.StatusDetect, Message: fmt.Sprintf("event %d", i), Count: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkEvents checks the backend stored events 1..n of agent exactly once.
func checkEvents(t *testing.T, be *fleettest.Backend, agent string, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, ev := range be.StoredEvents() {
		if ev.AgentID != agent {
			t.Errorf("event %s stored for agent %q, want %q", ev.ID, ev.AgentID, agent)
		}
		seen[ev.ID]++
	}
	for i := 1; i <= n; i++ {
		if c := seen[strconv.Itoa(i)]; c != 1 {
			t.Fatalf("event %d stored %d times", i, c)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct events stored, want %d", len(seen), n)
	}
}

func TestEnrollHeartbeatPolicyEvents(t *testing.T) {
	be := newBackend(t)
	gw := startGateway(t, be, be, "127.0.0.1:0", "127.0.0.1")
	state := t.TempDir()
	sp := openSpool(t, t.TempDir())
	c := newClient(t, be, state, sp, gw.Addr().String())
	run(t, c)

	waitFor(t, "enrollment", 10*time.Second, func() bool { return c.AgentID() != "" })
	st, err := os.Stat(filepath.Join(state, "identity.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v, %v; want mode 0600", st, err)
	}
	waitFor(t, "a heartbeat", 10*time.Second, func() bool { return len(be.Heartbeats()) > 0 })
	hb := be.Heartbeats()[0]
	if hb.AgentID != c.AgentID() || hb.Hostname != "host-1" {
		t.Errorf("heartbeat %+v", hb)
	}
	waitFor(t, "the first policy bundle", 10*time.Second, func() bool { p, ok := c.Policy(); return ok && p.Revision == 1 })

	be.SetPolicies(fleet.PolicyBundle{Revision: 2, Policies: []json.RawMessage{json.RawMessage(`{"name":"no-shell"}`)}})
	waitFor(t, "the pushed policy bundle", 10*time.Second, func() bool { p, _ := c.Policy(); return p.Revision == 2 })
	if p, _ := c.Policy(); len(p.Policies) != 1 || string(p.Policies[0]) != `{"name":"no-shell"}` {
		t.Errorf("bundle %+v", p)
	}

	appendEvents(t, sp, 1000)
	// Large events go in batches bounded by bytes, under the gateway's
	// message limit.
	for range 20 {
		if _, err := sp.Append(fleet.Event{Status: fleet.StatusBlock, Message: strings.Repeat("x", 200<<10), Count: 1}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "1020 events", 20*time.Second, func() bool { return len(be.StoredEvents()) == 1020 })
	checkEvents(t, be, c.AgentID(), 1020)
	waitFor(t, "the spool to empty", 10*time.Second, func() bool { return sp.Stats().Pending == 0 })

	if err := c.ReportInventory(context.Background(), fleet.Inventory{Host: "host-1", Containers: []fleet.Container{{ID: "c1", Name: "web"}}}); err != nil {
		t.Fatal(err)
	}
	if inv, ok := be.StoredInventory(c.AgentID()); !ok || inv.Containers[0].Name != "web" {
		t.Errorf("inventory %+v, %v", inv, ok)
	}
}

func TestBadTokenRefused(t *testing.T) {
	be := newBackend(t)
	gw := startGateway(t, be, be, "127.0.0.1:0", "127.0.0.1")
	c, err := fleetclient.New(fleetclient.Config{StateDir: t.TempDir(), Gateways: []string{gw.Addr().String()},
		BootstrapCA: be.CAPEM(), Token: "wrong", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Enroll(ctx)
	if !errors.Is(err, fleetclient.ErrRefused) {
		t.Fatalf("Enroll with a bad token = %v, want ErrRefused", err)
	}
	if c.AgentID() != "" {
		t.Error("agent enrolled with a bad token")
	}
}

// agentTLS returns the key pair of the agent enrolled in state.
func agentTLS(t *testing.T, state string) tls.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "identity.json"))
	if err != nil {
		t.Fatal(err)
	}
	var id struct{ Key, Certificate string }
	if err := json.Unmarshal(b, &id); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair([]byte(id.Certificate), []byte(id.Key))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func rawClient(t *testing.T, be *fleettest.Backend, addr string, cert *tls.Certificate) fleetv1.FleetClient {
	t.Helper()
	cfg := &tls.Config{RootCAs: be.CAPool(), MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return fleetv1.NewFleetClient(conn)
}

func TestAgentCannotSpeakForAnother(t *testing.T) {
	be := newBackend(t)
	gw := startGateway(t, be, be, "127.0.0.1:0", "127.0.0.1")
	addr := gw.Addr().String()
	ctx := context.Background()
	var ids []string
	var states []string
	for range 2 {
		state := t.TempDir()
		c := newClient(t, be, state, nil, addr)
		if err := c.Enroll(ctx); err != nil {
			t.Fatal(err)
		}
		ids, states = append(ids, c.AgentID()), append(states, state)
	}
	certA := agentTLS(t, states[0])
	a := rawClient(t, be, addr, &certA)

	if _, err := a.Heartbeat(ctx, fleetv1.FromHeartbeat(fleet.Heartbeat{AgentID: ids[1], Hostname: "forged"})); err != nil {
		t.Fatal(err)
	}
	hbs := be.Heartbeats()
	if len(hbs) != 1 || hbs[0].AgentID != ids[0] {
		t.Errorf("heartbeat claiming %s stored as %+v, want agent %s", ids[1], hbs, ids[0])
	}
	forged := fleet.EventBatch{AgentID: ids[1], Events: []fleet.Event{{ID: "1", AgentID: ids[1]}}}
	if _, err := a.SendEvents(ctx, fleetv1.FromEventBatch(forged)); err != nil {
		t.Fatal(err)
	}
	if evs := be.StoredEvents(); len(evs) != 1 || evs[0].AgentID != ids[0] {
		t.Errorf("event claiming %s stored as %+v", ids[1], evs)
	}
	if _, err := a.ReportInventory(ctx, fleetv1.FromInventory(fleet.Inventory{AgentID: ids[1], Host: "forged"})); err != nil {
		t.Fatal(err)
	}
	if _, ok := be.StoredInventory(ids[1]); ok {
		t.Error("agent A replaced agent B's inventory")
	}

	// Without a certificate only Enroll is allowed.
	anon := rawClient(t, be, addr, nil)
	if _, err := anon.Heartbeat(ctx, fleetv1.FromHeartbeat(fleet.Heartbeat{AgentID: ids[1]})); status.Code(err) != codes.Unauthenticated {
		t.Errorf("heartbeat without certificate: %v, want Unauthenticated", err)
	}
	// A certificate from another CA does not even connect.
	other := newBackend(t)
	foreign, err := other.ServerCertificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rawClient(t, be, addr, &foreign).Heartbeat(ctx, fleetv1.FromHeartbeat(fleet.Heartbeat{})); err == nil {
		t.Error("certificate of a foreign CA accepted")
	}
}

func TestCertificateRotation(t *testing.T) {
	be := newBackend(t)
	be.SetCertTTL(3 * time.Second) // renewed from 2s
	gw := startGateway(t, be, be, "127.0.0.1:0", "127.0.0.1")
	state := t.TempDir()
	c := newClient(t, be, state, nil, gw.Addr().String())
	run(t, c)
	waitFor(t, "enrollment", 10*time.Second, func() bool { return c.Certificate() != nil })
	first := c.Certificate()

	waitFor(t, "two renewals", 15*time.Second, func() bool { return be.Renewals() >= 2 })
	cur := c.Certificate()
	if cur.SerialNumber.Cmp(first.SerialNumber) == 0 || !cur.NotAfter.After(first.NotAfter) {
		t.Fatalf("certificate not rotated: %v until %v", cur.SerialNumber, cur.NotAfter)
	}
	if cur.Subject.CommonName != first.Subject.CommonName {
		t.Errorf("agent id changed on renewal: %q -> %q", first.Subject.CommonName, cur.Subject.CommonName)
	}
	if cur.PublicKey.(*ecdsa.PublicKey).Equal(first.PublicKey) {
		t.Error("renewal kept the old key")
	}
	// Heartbeats go on past the first certificate's expiry.
	waitFor(t, "first certificate expiry", 10*time.Second, func() bool { return time.Now().After(first.NotAfter) })
	n := len(be.Heartbeats())
	waitFor(t, "heartbeats after expiry", 5*time.Second, func() bool { return len(be.Heartbeats()) > n+2 })
	// A restarted client uses the renewed identity from disk.
	c2 := newClient(t, be, state, nil, gw.Addr().String())
	if c2.AgentID() != c.AgentID() {
		t.Errorf("restarted agent id %q, want %q", c2.AgentID(), c.AgentID())
	}
}

// killOnce is a backend that, on its nth event batch, stores it and then
// hangs until its gateway is killed: the ack is lost.
type killOnce struct {
	*fleettest.Backend
	n      int32
	calls  atomic.Int32
	killed chan struct{}
}

func (k *killOnce) Events(ctx context.Context, b fleet.EventBatch) (fleet.EventAck, error) {
	ack, err := k.Backend.Events(ctx, b)
	if k.calls.Add(1) == k.n {
		close(k.killed)
		<-ctx.Done()
		return fleet.EventAck{}, ctx.Err()
	}
	return ack, err
}

func TestFailoverMidStream(t *testing.T) {
	const total = 10000
	be := newBackend(t)
	k := &killOnce{Backend: be, n: 10, killed: make(chan struct{})}
	gwA := startGateway(t, be, k, "127.0.0.1:0", "127.0.0.1")
	gwB := startGateway(t, be, be, "127.0.0.1:0", "127.0.0.1")
	sp := openSpool(t, t.TempDir())
	c := newClient(t, be, t.TempDir(), sp, gwA.Addr().String(), gwB.Addr().String())
	if err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	run(t, c)
	appended := make(chan error, 1)
	go func() {
		for i := range total {
			if _, err := sp.Append(fleet.Event{Time: time.Now().UTC(), Status: fleet.StatusBlock, Message: fmt.Sprintf("event %d", i), Count: 1}); err != nil {
				appended <- err
				return
			}
		}
		appended <- nil
	}()

	select {
	case <-k.killed:
	case <-time.After(30 * time.Second):
		t.Fatal("gateway A never reached its 10th batch")
	}
	gwA.stop()
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all events through gateway B", 60*time.Second, func() bool { return len(be.StoredEvents()) == total })
	checkEvents(t, be, c.AgentID(), total)
	if be.Duplicates() == 0 {
		t.Error("the batch whose ack was lost was not delivered again as duplicates")
	}
	waitFor(t, "the spool to empty", 10*time.Second, func() bool { return sp.Stats().Pending == 0 })
	t.Logf("stored %d, duplicates acknowledged %d", total, be.Duplicates())
}

func TestSpoolWhileGatewaysDown(t *testing.T) {
	be := newBackend(t)
	gw := startGateway(t, be, be, "127.0.0.1:0", "127.0.0.1")
	addr := gw.Addr().String()
	sp := openSpool(t, t.TempDir())
	c := newClient(t, be, t.TempDir(), sp, addr)
	if err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	gw.stop()
	run(t, c)
	appendEvents(t, sp, 500)
	time.Sleep(500 * time.Millisecond)
	if n := len(be.StoredEvents()); n != 0 || sp.Stats().Pending != 500 {
		t.Fatalf("with no gateway: %d stored, %d pending", n, sp.Stats().Pending)
	}
	startGateway(t, be, be, addr, "127.0.0.1") // the gateway comes back
	waitFor(t, "spooled events delivered", 30*time.Second, func() bool { return len(be.StoredEvents()) == 500 })
	checkEvents(t, be, c.AgentID(), 500)
}

func TestLastPolicyAfterRestart(t *testing.T) {
	be := newBackend(t)
	be.SetPolicies(fleet.PolicyBundle{Revision: 5, Settings: fleet.GroupSettings{FailClosed: true}, Policies: []json.RawMessage{json.RawMessage(`{"name":"p5"}`)}})
	gw := startGateway(t, be, be, "127.0.0.1:0", "127.0.0.1")
	addr := gw.Addr().String()
	state := t.TempDir()
	c := newClient(t, be, state, nil, addr)
	stop := run(t, c)
	waitFor(t, "bundle 5", 10*time.Second, func() bool { p, _ := c.Policy(); return p.Revision == 5 })
	stop()
	gw.stop()

	got := make(chan fleet.PolicyBundle, 1)
	c2, err := fleetclient.New(fleetclient.Config{StateDir: state, Gateways: []string{addr}, BootstrapCA: be.CAPEM(),
		Logger: quiet, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		OnPolicy: func(b fleet.PolicyBundle) { got <- b }})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	run(t, c2)
	select {
	case b := <-got:
		if b.Revision != 5 || !b.Settings.FailClosed || string(b.Policies[0]) != `{"name":"p5"}` {
			t.Errorf("bundle from disk %+v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the bundle on disk was not used with no gateway")
	}
}
