package fleetclient_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/fleetclient"
	"github.com/mamorisec/mamori/internal/enforcer/spool"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/testenv"
)

// Environment of the helper process run inside the network namespace.
const (
	helperEnv   = "MAMORI_FLEET_NETNS_HELPER"
	helperGW    = "MAMORI_FLEET_NETNS_GATEWAY"
	helperCA    = "MAMORI_FLEET_NETNS_CA"
	helperState = "MAMORI_FLEET_NETNS_STATE"
	helperCount = 25
)

// TestNetnsEnrollThroughSecondGateway runs a second gateway on one side of
// a veth pair (192.0.2.1, TEST-NET-1) and an enforcer client at the other
// side (192.0.2.2), in a re-executed test binary, that reaches only that
// address: the client enrolls, heartbeats and delivers events through it.
//
// Both ends live in network namespaces the test creates, not in the root
// namespace: a host whose own network uses 192.0.2.0/24 (as CI sandboxes
// do) would otherwise have its default gateway or address shadowed. The
// gateway runs in this process; only its listening socket is made in the
// gateway's namespace.
func TestNetnsEnrollThroughSecondGateway(t *testing.T) {
	ip := testenv.NeedCommand(t, "ip")
	hosts := testenv.NetnsPair(t, "mamori-fc", "192.0.2.1", "192.0.2.2")
	gwNS, clientNS := hosts.A, hosts.B

	be := newBackend(t)
	startGateway(t, be, be, "127.0.0.1:0", "127.0.0.1") // the first gateway, unreachable from the namespace
	lis, err := testenv.ListenInNetns(gwNS, "192.0.2.1:0")
	if err != nil {
		t.Fatal(err)
	}
	second := startGatewayOn(t, be, be, "", lis, "192.0.2.1")

	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, be.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ip, "netns", "exec", clientNS, os.Args[0], "-test.run=^TestHelperProcessNetns$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperGW+"="+second.Addr().String(), helperCA+"="+caFile, helperState+"="+filepath.Join(dir, "state"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client in the namespace: %v\n%s", err, out)
	}
	hbs := be.Heartbeats()
	if len(hbs) == 0 || hbs[0].Hostname != "netns-host" {
		t.Fatalf("no heartbeat from the namespace: %+v\n%s", hbs, out)
	}
	checkEvents(t, be, hbs[0].AgentID, helperCount)
}

// TestHelperProcessNetns is the enforcer client run inside the namespace
// by TestNetnsEnrollThroughSecondGateway; it does nothing otherwise.
func TestHelperProcessNetns(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process")
	}
	ca, err := os.ReadFile(os.Getenv(helperCA))
	if err != nil {
		t.Fatal(err)
	}
	state := os.Getenv(helperState)
	sp, err := spool.Open(filepath.Join(state, "spool"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	c, err := fleetclient.New(fleetclient.Config{StateDir: state, Gateways: []string{os.Getenv(helperGW)}, BootstrapCA: ca,
		Token: token, Hostname: "netns-host", HeartbeatInterval: 100 * time.Millisecond, Spool: sp, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for i := range helperCount {
		if _, err := sp.Append(fleet.Event{Status: fleet.StatusDetect, Message: fmt.Sprintf("netns event %d", i), Count: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for sp.Stats().Pending > 0 || c.AgentID() == "" {
		if ctx.Err() != nil {
			t.Fatalf("events not delivered: %+v", sp.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let a heartbeat through
	cancel()
	<-done
	t.Logf("agent %s delivered %d events", c.AgentID(), helperCount)
}
