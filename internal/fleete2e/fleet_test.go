package fleete2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/fleetclient"
	"github.com/mamorisec/mamori/internal/enforcer/spool"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
	"github.com/mamorisec/mamori/internal/server/store"
)

// capabilities is what the test enforcers report in their heartbeats.
var capabilities = []fleet.Capability{
	{Name: "exec-events.tp_btf", Available: true, Detail: "e2e: probed"},
	{Name: "lsm.bpf", Available: false, Detail: "e2e: not loaded on this kernel"},
}

// enforcer is a fleet client with a spool, as the enforcer runs it.
type enforcer struct {
	*fleetclient.Client
	spool *spool.Spool
	// bundles receives every policy bundle the client hands on.
	bundles chan fleet.PolicyBundle
	mu      sync.Mutex
	last    fleet.PolicyBundle
}

// enforcerConfig is what differs between the tests' enforcers.
type enforcerConfig struct {
	state    string
	gateways []string
	fleetCA  []byte
	token    string
	host     string
	// batch is the events per call; 200 when zero.
	batch int
}

func newEnforcer(t testing.TB, cfg enforcerConfig) *enforcer {
	t.Helper()
	sp, err := spool.Open(filepath.Join(cfg.state, "spool"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	e := &enforcer{spool: sp, bundles: make(chan fleet.PolicyBundle, 100)}
	if cfg.batch == 0 {
		cfg.batch = 200
	}
	c, err := fleetclient.New(fleetclient.Config{
		StateDir: cfg.state, Gateways: cfg.gateways, BootstrapCA: cfg.fleetCA, Token: cfg.token,
		Kind: fleet.KindEnforcer, Hostname: cfg.host, Version: "e2e", HeartbeatInterval: 200 * time.Millisecond,
		Spool: sp, BatchSize: cfg.batch, MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		Status: func() fleet.Heartbeat { return fleet.Heartbeat{Capabilities: capabilities, Containers: 3} },
		OnPolicy: func(b fleet.PolicyBundle) {
			e.mu.Lock()
			e.last = b
			e.mu.Unlock()
			select {
			case e.bundles <- b:
			default:
			}
		},
		Logger: Quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e.Client = c
	return e
}

// run runs the client until the returned stop is called or the test ends.
func (e *enforcer) run(t testing.TB) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("enforcer Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// appendEvents spools n events, every fifth a block.
func (e *enforcer) appendEvents(t testing.TB, n int) {
	t.Helper()
	for i := range n {
		ev := fleet.Event{Time: time.Now().UTC(), Status: fleet.StatusDetect, Policy: "default", Control: "reverseShell",
			Message: fmt.Sprintf("e2e event %d", i), Container: "web", Process: fleet.Process{PID: 100 + i, Path: "/bin/sh"}, Count: 1}
		if i%5 == 4 {
			ev.Status, ev.Control = fleet.StatusBlock, "blockedExecutables"
		}
		if _, err := e.spool.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
}

// hasPolicy reports whether bundle b holds the policy named name.
func hasPolicy(b fleet.PolicyBundle, name string) bool {
	for _, raw := range b.Policies {
		var p struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(raw, &p) == nil && p.Name == name {
			return true
		}
	}
	return false
}

// policy is a valid runtime policy named name.
func policy(name string) runtimepolicy.Policy {
	p := runtimepolicy.Builtins()[0]
	p.Name, p.Enabled = name, true
	return p
}

// eventsOf returns the runtime events of agent, by event id.
func eventsOf(c *Console, agent string) map[string][]RuntimeEvent {
	out := map[string][]RuntimeEvent{}
	for _, e := range c.RuntimeEvents() {
		if e.Event.AgentID == agent {
			out[e.Event.ID] = append(out[e.Event.ID], e)
		}
	}
	return out
}

// TestEnforcerThroughGateway enrolls an enforcer through a gateway with
// its group's token, and checks that its heartbeat's capabilities show in
// the agent list, that a runtime policy created through the REST API
// reaches it within seconds, and that its events land in the audit trail
// as runtime.detect and runtime.block.
func TestEnforcerThroughGateway(t *testing.T) {
	c := Start(t)
	gwToken := c.GatewayToken("gateway-a")
	group := c.CreateGroup("prod", nil)
	gw := c.StartGateway(gwToken, GatewayOptions{})
	e := newEnforcer(t, enforcerConfig{state: t.TempDir(), gateways: []string{gw.Addr().String()}, fleetCA: gw.FleetCA, token: group, host: "e2e-host-1"})
	e.run(t)

	Eventually(t, 20*time.Second, "enforcer enrolled and seen", func() bool {
		return e.AgentID() != "" && !c.Agent(e.AgentID()).LastSeen.IsZero()
	})
	a := c.Agent(e.AgentID())
	if a.Hostname != "e2e-host-1" || a.Group != "prod" || a.Kind != fleet.KindEnforcer || a.Version != "e2e" || a.Containers != 3 {
		t.Errorf("agent as the server shows it: %+v", a)
	}
	if !slices.Equal(a.Capabilities, capabilities) {
		t.Errorf("capabilities: %+v, want %+v", a.Capabilities, capabilities)
	}
	if !slices.ContainsFunc(c.Agents(), func(x store.Agent) bool { return x.ID == e.AgentID() }) {
		t.Errorf("agent %s not in GET /api/v1/agents", e.AgentID())
	}

	// A policy created through the API reaches the enforcer within
	// seconds (heartbeat → new revision → the gateway wakes the watch).
	select {
	case <-e.bundles: // the bundle in force at start
	case <-time.After(20 * time.Second):
		t.Fatal("no initial policy bundle")
	}
	created := time.Now()
	c.Do("POST", "/api/v1/runtime-policies", policy("e2e-no-shells"), nil)
	deadline := time.After(5 * time.Second)
	for got := false; !got; {
		select {
		case b := <-e.bundles:
			got = hasPolicy(b, "e2e-no-shells")
		case <-deadline:
			t.Fatal("the new policy did not reach the enforcer within 5 s")
		}
	}
	t.Logf("policy pushed in %s", time.Since(created).Round(time.Millisecond))
	b, ok := e.Policy()
	if !ok || !hasPolicy(b, "e2e-no-shells") || !b.Settings.AuditOnly {
		t.Errorf("bundle in force: %+v", b)
	}
	Eventually(t, 10*time.Second, "the server sees the agent's new policy revision", func() bool {
		return c.Agent(e.AgentID()).PolicyRevision == b.Revision
	})

	e.appendEvents(t, 10)
	Eventually(t, 20*time.Second, "events delivered", func() bool { return e.spool.Stats().Pending == 0 })
	got := eventsOf(c, e.AgentID())
	if len(got) != 10 {
		t.Fatalf("%d events in the audit trail, want 10", len(got))
	}
	for id, evs := range got {
		ev := evs[0]
		want := "runtime." + ev.Event.Status
		if len(evs) != 1 || ev.Action != want || ev.Event.Host != "e2e-host-1" || ev.Event.Policy != "default" {
			t.Errorf("event %s: %+v", id, evs)
		}
	}
	blocks := 0
	for _, evs := range got {
		if evs[0].Action == "runtime.block" {
			blocks++
		}
	}
	if blocks != 2 {
		t.Errorf("%d runtime.block events, want 2", blocks)
	}
}

// ackCounter counts what the server acknowledges through a gateway.
type ackCounter struct {
	fleet.Backend
	stored, duplicates atomic.Int64
}

func (a *ackCounter) Events(ctx context.Context, batch fleet.EventBatch) (fleet.EventAck, error) {
	ack, err := a.Backend.Events(ctx, batch)
	a.stored.Add(int64(ack.Stored))
	a.duplicates.Add(int64(ack.Duplicates))
	return ack, err
}

// killer kills its gateway right after the server has stored a batch
// once more than after events went through, before the ack reaches the
// enforcer: the worst moment for a gateway to die.
type killer struct {
	fleet.Backend
	after  int64
	stored atomic.Int64
	kill   func()
	once   sync.Once
}

func (k *killer) Events(ctx context.Context, batch fleet.EventBatch) (fleet.EventAck, error) {
	ack, err := k.Backend.Events(ctx, batch)
	if err == nil && k.stored.Add(int64(ack.Stored)) > k.after {
		killed := false
		k.once.Do(func() { killed = true; go k.kill() })
		if killed {
			<-ctx.Done() // the ack is lost with the gateway
			return fleet.EventAck{}, ctx.Err()
		}
	}
	return ack, err
}

// TestFailoverExactlyOnce streams 5,000 events through gateway A, kills A
// after the server stored a batch but before the enforcer got its ack, and
// checks that the enforcer moves to gateway B, that the unacknowledged
// batch comes again and is acknowledged as duplicates, and that every
// event is in the server's audit trail exactly once.
func TestFailoverExactlyOnce(t *testing.T) {
	const total = 5000
	c := Start(t)
	gwToken := c.GatewayToken("gateway")
	group := c.CreateGroup("prod", nil)
	var gwA *Gateway
	k := &killer{after: 1500, kill: func() { gwA.Stop() }}
	gwA = c.StartGateway(gwToken, GatewayOptions{Wrap: func(be fleet.Backend) fleet.Backend { k.Backend = be; return k }})
	countB := &ackCounter{}
	gwB := c.StartGateway(gwToken, GatewayOptions{Wrap: func(be fleet.Backend) fleet.Backend { countB.Backend = be; return countB }})

	e := newEnforcer(t, enforcerConfig{state: t.TempDir(), gateways: []string{gwA.Addr().String(), gwB.Addr().String()},
		fleetCA: gwA.FleetCA, token: group, host: "stream-host", batch: 250})
	e.appendEvents(t, total)
	start := time.Now()
	e.run(t)
	Eventually(t, 3*time.Minute, "all events delivered", func() bool { return e.spool.Stats().Pending == 0 })
	t.Logf("%d events delivered in %s; through B: %d stored, %d duplicates", total, time.Since(start).Round(time.Millisecond),
		countB.stored.Load(), countB.duplicates.Load())
	if k.stored.Load() <= k.after {
		t.Fatalf("gateway A stored only %d events before it was killed", k.stored.Load())
	}
	if countB.duplicates.Load() == 0 {
		t.Error("the batch whose ack died with gateway A was not acknowledged as duplicates through B")
	}
	if countB.stored.Load() == 0 {
		t.Error("nothing went through gateway B")
	}

	got := eventsOf(c, e.AgentID())
	var missing, twice []string
	for i := 1; i <= total; i++ {
		switch n := len(got[strconv.Itoa(i)]); {
		case n == 0:
			missing = append(missing, strconv.Itoa(i))
		case n > 1:
			twice = append(twice, strconv.Itoa(i))
		}
	}
	if len(got) != total || len(missing) > 0 || len(twice) > 0 {
		t.Errorf("%d distinct event ids stored, want %d; missing %d (%.10v), stored more than once %d (%.10v)",
			len(got), total, len(missing), missing, len(twice), twice)
	}
	if s := e.spool.Stats(); s.Dropped != 0 || s.Refused != 0 {
		t.Errorf("spool lost events: %+v", s)
	}
}

// TestServerOutage stops the console server: the enforcer keeps its
// policy bundle in force (also across a restart of the enforcer) and its
// events wait in the spool, and are delivered once the server is back.
func TestServerOutage(t *testing.T) {
	c := Start(t)
	gwToken := c.GatewayToken("gateway")
	group := c.CreateGroup("prod", nil)
	c.Do("POST", "/api/v1/runtime-policies", policy("e2e-kept"), nil)
	gw := c.StartGateway(gwToken, GatewayOptions{})
	state := t.TempDir()
	cfg := enforcerConfig{state: state, gateways: []string{gw.Addr().String()}, fleetCA: gw.FleetCA, token: group, host: "outage-host"}
	e := newEnforcer(t, cfg)
	stop := e.run(t)
	Eventually(t, 20*time.Second, "bundle received", func() bool {
		b, ok := e.Policy()
		return ok && hasPolicy(b, "e2e-kept")
	})
	agent := e.AgentID()

	c.Pause()
	const n = 300
	e.appendEvents(t, n)
	time.Sleep(2 * time.Second) // heartbeats and deliveries fail meanwhile
	if p := e.spool.Stats().Pending; p != n {
		t.Fatalf("%d events pending while the server is down, want %d", p, n)
	}
	if b, ok := e.Policy(); !ok || !hasPolicy(b, "e2e-kept") {
		t.Fatalf("policy bundle lost during the outage: %+v", b)
	}
	// An enforcer restarted during the outage enforces the bundle on disk
	// at once.
	stop()
	e.Close()
	e.spool.Close()
	e = newEnforcer(t, cfg)
	if e.AgentID() != agent {
		t.Errorf("identity after restart: %q, want %q", e.AgentID(), agent)
	}
	e.run(t)
	select {
	case b := <-e.bundles:
		if !hasPolicy(b, "e2e-kept") {
			t.Errorf("bundle from disk: %+v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the restarted enforcer handed on no bundle while the server is down")
	}
	if p := e.spool.Stats().Pending; p != n {
		t.Fatalf("%d events pending after the restart, want %d", p, n)
	}

	c.Resume()
	Eventually(t, 60*time.Second, "spooled events delivered after the outage", func() bool { return e.spool.Stats().Pending == 0 })
	if got := eventsOf(c, agent); len(got) != n {
		t.Errorf("%d events stored after the outage, want %d", len(got), n)
	}
}
