package enforcer

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/fleet/fleettest"
	"github.com/mamorisec/mamori/internal/kube/admission"
)

// TestCheck rejects incomplete configurations with a clear error.
func TestCheck(t *testing.T) {
	good := func() Config {
		return Config{Kube: fake.NewClientset(), Admission: admission.DefaultConfig(), Cluster: "c", Server: "https://s", Token: "t",
			StateDir: t.TempDir(), WebhookAddr: ":8443", Service: "svc", Namespace: "ns"}
	}
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"good", func(*Config) {}, ""},
		{"ips only", func(c *Config) { c.Service, c.IPs = "", []net.IP{net.IPv4(127, 0, 0, 1)} }, ""},
		{"no client", func(c *Config) { c.Kube = nil }, "Kubernetes client"},
		{"no cluster", func(c *Config) { c.Cluster = "" }, "cluster name"},
		{"no token", func(c *Config) { c.Token = "" }, "API token"},
		{"no state", func(c *Config) { c.StateDir = "" }, "state directory"},
		{"no address", func(c *Config) { c.WebhookAddr = "" }, "webhook address"},
		{"cert without key", func(c *Config) { c.CertFile = "x" }, "both"},
		{"no names", func(c *Config) { c.Service = "" }, "Service"},
		{"bad admission", func(c *Config) { c.Admission.Mode = "loud" }, "admission configuration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.change(&cfg)
			err := check(&cfg)
			if tc.wantErr == "" {
				if err != nil || cfg.HeartbeatInterval != DefaultHeartbeatInterval || cfg.Log == nil {
					t.Fatalf("check: %v %+v", err, cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one about %s", err, tc.wantErr)
			}
		})
	}
	// Run refuses to start without an identity or an enrollment token.
	cfg := good()
	if err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "enrollment token") {
		t.Errorf("Run without enrollment: %v", err)
	}
}

// newTestEnforcer returns an enforcer on the in-memory fleet backend,
// whose handler builds record the bypass they were given.
func newTestEnforcer(t *testing.T, b fleet.Backend, dir string, built *[][]string) *enforcer {
	e := &enforcer{cfg: Config{Cluster: "prod", Version: "t", EnrollmentToken: "tok", StateDir: dir, HeartbeatInterval: time.Second},
		log: slog.New(slog.DiscardHandler), backend: b}
	e.build = func(bypass []string) (*admission.Handler, error) {
		*built = append(*built, slices.Clone(bypass))
		ac := admission.DefaultConfig()
		ac.Images.Mode = admission.Off
		return admission.NewHandler(ac, nil, nil, nil, nil)
	}
	return e
}

// TestFleetRound enrolls, fetches and caches the bundle, puts its bypass in
// force, sends only detections and blocks, and keeps the identity across a
// restart.
func TestFleetRound(t *testing.T) {
	b, err := fleettest.New("tok")
	if err != nil {
		t.Fatal(err)
	}
	b.SetPolicies(fleet.PolicyBundle{Revision: 3, Settings: fleet.GroupSettings{ContainerProtection: true},
		Bypass:   fleet.Bypass{Namespaces: []string{"kube-system", "infra"}},
		Policies: []json.RawMessage{json.RawMessage(`{"name":"p","enabled":true,"mode":"enforce","controls":{"blockExec":{}}}`)}})
	dir := t.TempDir()
	var built [][]string
	e := newTestEnforcer(t, b, dir, &built)
	ctx := context.Background()
	have, settings := int64(-1), fleet.GroupSettings{}
	if err := e.fleetOnce(ctx, &have, &settings); err != nil {
		t.Fatal(err)
	}
	if e.agentID() == "" || have != 3 || e.policies.Load() == nil || !settings.ContainerProtection {
		t.Fatalf("after one round: agent %q revision %d", e.agentID(), have)
	}
	if len(built) != 1 || !slices.Equal(built[0], []string{"kube-system", "infra"}) {
		t.Errorf("handler builds %q, want one with the bundle's bypass", built)
	}
	// An unchanged revision fetches nothing and rebuilds nothing.
	if err := e.fleetOnce(ctx, &have, &settings); err != nil || len(built) != 1 {
		t.Errorf("second round: %v, %d builds", err, len(built))
	}
	for _, f := range []string{identityFile, keyFile, certFile, bundleFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("state file %s: %v %v", f, err, fi)
		}
	}
	// Events: every decision is sent (an unknown status is not); the agent
	// id is the enrolled one.
	evs := []fleet.Event{
		{ID: "1", Time: time.Now(), Status: admission.StatusAllow},
		{ID: "2", Time: time.Now(), Status: fleet.StatusBlock, AgentID: "whatever", Control: admission.ControlImage},
		{ID: "3", Time: time.Now(), Status: "maybe"},
	}
	if err := (sink{e}).Send(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if got := b.StoredEvents(); len(got) != 2 || got[0].ID != "1" || got[1].ID != "2" || got[1].AgentID != e.agentID() {
		t.Errorf("stored events %+v", got)
	}

	// A restart with the server down keeps the identity and the bundle.
	var built2 [][]string
	e2 := newTestEnforcer(t, b, dir, &built2)
	var id identity
	if ok, err := readJSON(dir, identityFile, &id); !ok || err != nil || id.AgentID != e.agentID() {
		t.Fatalf("identity: %v %v %+v", ok, err, id)
	}
	var bundle fleet.PolicyBundle
	if ok, err := readJSON(dir, bundleFile, &bundle); !ok || err != nil {
		t.Fatalf("cached bundle: %v %v", ok, err)
	}
	if err := e2.apply(bundle); err != nil || e2.policies.Load().Revision() != 3 {
		t.Fatalf("cached bundle: %v", err)
	}
	// A corrupt state file is an error naming it.
	os.WriteFile(filepath.Join(dir, identityFile), []byte("{"), 0o600)
	if _, err := readJSON(dir, identityFile, &id); err == nil || !strings.Contains(err.Error(), identityFile) {
		t.Errorf("corrupt identity: %v", err)
	}
	// Before enrollment nothing can be sent.
	e3 := newTestEnforcer(t, b, t.TempDir(), &built2)
	if err := (sink{e3}).Send(ctx, evs); err != errNotEnrolled {
		t.Errorf("send before enrollment: %v", err)
	}
	// A wrong enrollment token is refused.
	e3.cfg.EnrollmentToken = "wrong"
	if err := e3.fleetOnce(ctx, &have, &settings); err == nil || !strings.Contains(err.Error(), "enrolling") {
		t.Errorf("wrong token: %v", err)
	}
}
