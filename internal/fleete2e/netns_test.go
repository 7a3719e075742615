package fleete2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/testenv"
)

// Environment of the enforcer process run in the second namespace.
const (
	helperEnv     = "MAMORI_E2E_NETNS_ENFORCER"
	helperGateway = "MAMORI_E2E_NETNS_GATEWAY"
	helperCA      = "MAMORI_E2E_NETNS_CA"
	helperToken   = "MAMORI_E2E_NETNS_TOKEN"
	helperState   = "MAMORI_E2E_NETNS_STATE"
	helperHost    = "netns-enforcer"
	helperEvents  = 25
)

// Addresses on the veth pair between the two namespaces, from the
// benchmarking range 198.18.0.0/15 (RFC 2544); never in the root namespace.
const (
	gatewayIP  = "198.18.0.1"
	enforcerIP = "198.18.0.2"
)

// TestSecondHostThroughGatewayB plays a second host: two network
// namespaces joined by a veth pair, gateway B listening inside the first
// (its process stays in the root namespace and relays to the console on
// 127.0.0.1), and an enforcer, a re-executed test binary, inside the
// second, which can reach only gateway B's address. The enforcer enrolls
// with the group token, and its heartbeat and events reach the real
// server.
func TestSecondHostThroughGatewayB(t *testing.T) {
	ip := testenv.NeedCommand(t, "ip")
	hosts := testenv.NetnsPair(t, "mamori-e2e", gatewayIP, enforcerIP)
	gwNS, enfNS := hosts.A, hosts.B

	c := Start(t)
	gwToken := c.GatewayToken("gateway-b")
	group := c.CreateGroup("edge", nil)
	c.StartGateway(gwToken, GatewayOptions{}) // gateway A, on loopback: out of the enforcer's reach
	lis, err := testenv.ListenInNetns(gwNS, net.JoinHostPort(gatewayIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	gwB := c.StartGateway(gwToken, GatewayOptions{Listener: lis, Hosts: []string{gatewayIP}})

	dir := t.TempDir()
	caFile := filepath.Join(dir, "fleet-ca.pem")
	if err := os.WriteFile(caFile, gwB.FleetCA, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ip, "netns", "exec", enfNS, os.Args[0], "-test.run=^TestHelperEnforcerInNetns$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperGateway+"="+gwB.Addr().String(), helperCA+"="+caFile,
		helperToken+"="+group, helperState+"="+filepath.Join(dir, "state"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("enforcer in namespace %s: %v\n%s", enfNS, err, out)
	}
	var id string
	for _, a := range c.Agents() {
		if a.Hostname == helperHost {
			id = a.ID
			if a.LastSeen.IsZero() || len(a.Capabilities) != len(capabilities) || a.Group != "edge" {
				t.Errorf("agent of the second host: %+v", a)
			}
		}
	}
	if id == "" {
		t.Fatalf("no agent %s enrolled\n%s", helperHost, out)
	}
	if got := eventsOf(c, id); len(got) != helperEvents {
		t.Errorf("%d events of the second host stored, want %d\n%s", len(got), helperEvents, out)
	}
}

// TestHelperEnforcerInNetns is the enforcer run inside the second
// namespace by TestSecondHostThroughGatewayB; it does nothing otherwise.
func TestHelperEnforcerInNetns(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process of TestSecondHostThroughGatewayB")
	}
	ca, err := os.ReadFile(os.Getenv(helperCA))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnforcer(t, enforcerConfig{state: os.Getenv(helperState), gateways: []string{os.Getenv(helperGateway)},
		fleetCA: ca, token: os.Getenv(helperToken), host: helperHost})
	e.appendEvents(t, helperEvents)
	stop := e.run(t)
	deadline := time.Now().Add(60 * time.Second)
	for e.AgentID() == "" || e.spool.Stats().Pending > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("agent %q, events pending %d", e.AgentID(), e.spool.Stats().Pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(600 * time.Millisecond) // a few heartbeats
	stop()
	t.Logf("agent %s delivered %d events through %s", e.AgentID(), helperEvents, os.Getenv(helperGateway))
}
