package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/fleet/fleettest"
	"github.com/mamorisec/mamori/internal/gateway"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
	"github.com/mamorisec/mamori/internal/testenv"
)

// TestEnforcerEnrolled runs `mamori enforcer --gateway` against a real
// gateway relaying to the in-memory test backend: the agent enrolls,
// receives the bundle, blocks an exec session in a matching container and
// delivers the block event; its heartbeat carries the host's capabilities.
func TestEnforcerEnrolled(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the enforcer needs root")
	}
	testenv.Docker(t)
	const token = "mamori-enroll-test-token"
	be, err := fleettest.New(token)
	if err != nil {
		t.Fatal(err)
	}
	label := fmt.Sprintf("fleet%d", time.Now().UnixNano())
	pol, err := runtimepolicy.Parse([]byte(fmt.Sprintf(`{"name": "fleet-test", "enabled": true, "mode": "enforce",
		"criteria": "label[\"mamori.test\"] == \"%s\"", "controls": {"blockExec": {}}}`, label)))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(pol)
	be.SetPolicies(fleet.PolicyBundle{Revision: 1, Settings: fleet.GroupSettings{ContainerProtection: true},
		Policies: []json.RawMessage{raw}, Bypass: runtimepolicy.DefaultBypass()})

	cert, err := be.ServerCertificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Listener: lis, Certificate: cert, ClientCA: be.CAPool(), Backend: be,
		PollInterval: 100 * time.Millisecond, GracePeriod: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithCancel(context.Background())
	gdone := make(chan struct{})
	go func() { defer close(gdone); _ = g.Serve(gctx) }()
	defer func() { gcancel(); <-gdone }()

	dir := t.TempDir()
	tokenFile, caFile := filepath.Join(dir, "token"), filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, be.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	id := testenv.RunContainer(t, testenv.BusyboxImage(t), []string{"--label", "mamori.test=" + label}, "sleep", "600")

	cmd := newRoot()
	var out lockedBuffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"enforcer", "--gateway", lis.Addr().String(), "--enrollment-token-file", tokenFile,
		"--bootstrap-ca", caFile, "--state-dir", filepath.Join(dir, "state"), "--host-proc", "/proc",
		"--docker-host", "unix://" + testenv.Docker(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := testenv.DockerCLIErr(t, nil, "exec", id, "sh", "-c", "true")
		if err != nil && strings.Contains(err.Error(), "operation not permitted") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec never refused; enforcer output:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var ev fleet.Event
	for ev.ID == "" {
		for _, e := range be.StoredEvents() {
			if e.ContainerID == id && e.Status == fleet.StatusBlock && e.Policy == "fleet-test" {
				ev = e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("block event not delivered; stored %+v\n%s", be.StoredEvents(), out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ev.AgentID == "" || ev.Control != runtimepolicy.ControlBlockExec {
		t.Errorf("delivered event = %+v", ev)
	}
	var fan bool
	for _, hb := range be.Heartbeats() {
		for _, c := range hb.Capabilities {
			if c.Name == "pre-exec-deny.fanotify" && c.Available {
				fan = true
			}
		}
	}
	if !fan {
		t.Errorf("no heartbeat with the fanotify capability: %+v", be.Heartbeats())
	}
}
