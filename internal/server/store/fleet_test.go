package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
)

func TestRuntimePolicies(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		rev0, err := s.FleetRevision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.CreateRuntimePolicy(ctx, RuntimePolicy{Name: "default", Mode: "audit", Enabled: true, Document: json.RawMessage(`{"name":"default"}`), UpdatedBy: "admin"})
		if err != nil {
			t.Fatal(err)
		}
		if p.Revision != rev0+1 || p.ID == 0 {
			t.Errorf("created policy: %+v (revision before %d)", p, rev0)
		}
		if _, err := s.CreateRuntimePolicy(ctx, RuntimePolicy{Name: "default", Mode: "audit", Document: json.RawMessage(`{}`)}); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate name: %v", err)
		}
		if _, err := s.CreateRuntimePolicy(ctx, RuntimePolicy{Name: "bad", Mode: "audit", Document: json.RawMessage(`{`)}); !errors.Is(err, ErrInvalid) {
			t.Errorf("invalid JSON: %v", err)
		}
		p.Enabled = false
		up, err := s.UpdateRuntimePolicy(ctx, p)
		if err != nil || up.Revision != rev0+2 || up.Created.IsZero() || up.ID != p.ID {
			t.Fatalf("update: %+v %v", up, err)
		}
		if _, err := s.UpdateRuntimePolicy(ctx, RuntimePolicy{Name: "missing", Mode: "audit", Document: json.RawMessage(`{}`)}); !errors.Is(err, ErrNotFound) {
			t.Errorf("update of a missing policy: %v", err)
		}
		// Import is all or nothing.
		if _, err := s.ImportRuntimePolicies(ctx, []RuntimePolicy{{Name: "a", Mode: "enforce", Enabled: true, Document: json.RawMessage(`{}`)}, {Name: "", Mode: "audit"}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("import with a bad policy: %v", err)
		}
		if _, err := s.GetRuntimePolicy(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a failed import stored a policy: %v", err)
		}
		got, err := s.ImportRuntimePolicies(ctx, []RuntimePolicy{{Name: "a", Mode: "enforce", Enabled: true, Document: json.RawMessage(`{"name":"a"}`)}, {Name: "default", Mode: "audit", Enabled: true, Document: json.RawMessage(`{"name":"default"}`)}})
		if err != nil || len(got) != 2 {
			t.Fatalf("import: %v %v", got, err)
		}
		en, err := s.EnabledRuntimePolicies(ctx)
		if err != nil || len(en) != 2 || en[0].Name != "a" || en[1].Name != "default" {
			t.Fatalf("enabled: %+v %v", en, err)
		}
		page, err := s.ListRuntimePolicies(ctx, ListOptions{Filter: "mode=enforce"})
		if err != nil || len(page.Items) != 1 || page.Items[0].Name != "a" {
			t.Fatalf("list mode=enforce: %+v %v", page, err)
		}
		if err := s.DeleteRuntimePolicy(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRuntimePolicy(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
		// create, update, import of two, delete; the failed import and
		// delete changed nothing.
		rev, _ := s.FleetRevision(ctx)
		if rev != rev0+5 {
			t.Errorf("revision %d after 5 changes from %d", rev, rev0)
		}
	})
}

func TestBypass(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		b, err := s.Bypass(ctx)
		if err != nil || len(b.Namespaces) != 1 || b.Namespaces[0] != "kube-system" || b.Labels == nil || len(b.Labels) != 0 {
			t.Fatalf("default bypass: %+v %v", b, err)
		}
		rev0, _ := s.FleetRevision(ctx)
		rev, err := s.SetBypass(ctx, fleet.Bypass{Labels: []string{"mamori.dev/bypass=true"}})
		if err != nil || rev != rev0+1 {
			t.Fatalf("set: %d %v", rev, err)
		}
		b, _ = s.Bypass(ctx)
		if len(b.Namespaces) != 0 || len(b.Labels) != 1 {
			t.Errorf("after set: %+v", b)
		}
	})
}

func TestFleetAgents(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		g, err := s.CreateEnforcerGroup(ctx, EnforcerGroup{Name: "prod", Settings: DefaultGroupSettings()}, "hash1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateEnforcerGroup(ctx, EnforcerGroup{Name: "prod"}, "hash2"); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate group: %v", err)
		}
		got, err := s.GetEnforcerGroup(ctx, "prod")
		if err != nil || got.Settings != (fleet.GroupSettings{AuditOnly: true, ContainerProtection: true}) {
			t.Fatalf("group: %+v %v", got, err)
		}
		rev0, _ := s.FleetRevision(ctx)
		got.Settings.FailClosed = true
		if got, err = s.UpdateEnforcerGroup(ctx, got); err != nil || !got.Settings.FailClosed {
			t.Fatalf("update group: %+v %v", got, err)
		}
		if rev, _ := s.FleetRevision(ctx); rev != rev0+1 {
			t.Errorf("group settings change did not bump the revision")
		}
		if err := s.SetEnforcerGroupToken(ctx, "prod", "hash3"); err != nil {
			t.Fatal(err)
		}
		toks, err := s.EnforcerGroupTokens(ctx)
		if err != nil || len(toks) != 1 || toks[0].Hash != "hash3" || toks[0].ID != g.ID {
			t.Fatalf("tokens: %+v %v", toks, err)
		}

		notAfter := time.Now().Add(7 * 24 * time.Hour).UTC().Truncate(time.Microsecond)
		for _, a := range []Agent{
			{ID: "agent-1", GroupID: g.ID, Kind: fleet.KindEnforcer, Hostname: "web-1.prod", CertSerial: "ab", NotAfter: notAfter},
			{ID: "agent-2", GroupID: g.ID, Kind: fleet.KindEnforcer, Hostname: "db-1.prod"},
		} {
			if _, err := s.CreateAgent(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.CreateAgent(ctx, Agent{ID: "agent-3", GroupID: g.ID, Kind: fleet.KindEnforcer}); !errors.Is(err, ErrInvalid) {
			t.Errorf("agent without hostname: %v", err)
		}
		a, err := s.GetAgent(ctx, "agent-1")
		if err != nil || a.Group != "prod" || !a.NotAfter.Equal(notAfter) || a.Capabilities == nil {
			t.Fatalf("agent: %+v %v", a, err)
		}
		hb := fleet.Heartbeat{AgentID: "agent-1", Version: "1.2", PolicyRevision: 7, Containers: 3, EventsBuffered: 1,
			Capabilities: []fleet.Capability{{Name: "pre-exec-deny.fanotify", Available: true}}}
		if err := s.AgentHeartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
		if err := s.AgentHeartbeat(ctx, fleet.Heartbeat{AgentID: "nobody"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("heartbeat of an unknown agent: %v", err)
		}
		a, _ = s.GetAgent(ctx, "agent-1")
		if a.LastSeen.IsZero() || a.Containers != 3 || a.PolicyRevision != 7 || len(a.Capabilities) != 1 || !a.Capabilities[0].Available {
			t.Errorf("after heartbeat: %+v", a)
		}
		if err := s.DeleteEnforcerGroup(ctx, "prod"); !errors.Is(err, ErrConflict) {
			t.Errorf("deleting a group with agents: %v", err)
		}

		// Host scopes.
		for _, tc := range []struct {
			scope *HostScope
			want  int
		}{
			{nil, 2},
			{&HostScope{}, 0},
			{&HostScope{Match: [][]string{{`^web-.*$`}}}, 1},
			{&HostScope{Match: [][]string{{`^web-.*$`}, {`^db-1\.prod$`}}}, 2},
			{&HostScope{Match: [][]string{{`(`}}}, 0},
		} {
			page, err := s.ListAgents(ctx, ListOptions{}, tc.scope)
			if err != nil || len(page.Items) != tc.want {
				t.Errorf("ListAgents(%+v): %d agents, %v; want %d", tc.scope, len(page.Items), err, tc.want)
			}
		}
		page, err := s.ListAgents(ctx, ListOptions{Filter: "group=prod;hostname~web"}, nil)
		if err != nil || len(page.Items) != 1 || page.Items[0].ID != "agent-1" {
			t.Errorf("filtered agents: %+v %v", page.Items, err)
		}

		// Event de-duplication.
		if seen, err := s.RuntimeEventSeen(ctx, "agent-1", "e1"); err != nil || seen {
			t.Fatalf("unseen event: %v %v", seen, err)
		}
		if err := s.RecordRuntimeEvent(ctx, "agent-1", "e1", 10); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordRuntimeEvent(ctx, "agent-1", "e1", 11); !errors.Is(err, ErrConflict) {
			t.Errorf("second record: %v", err)
		}
		if seen, _ := s.RuntimeEventSeen(ctx, "agent-1", "e1"); !seen {
			t.Error("recorded event not seen")
		}
		if seen, _ := s.RuntimeEventSeen(ctx, "agent-2", "e1"); seen {
			t.Error("event IDs are per agent")
		}

		// Inventories: the newest per agent, only agents seen recently
		// and enabled.
		inv := fleet.Inventory{AgentID: "agent-1", Host: "web-1.prod", Time: time.Now().UTC(), Containers: []fleet.Container{{ID: "c1", Name: "web"}}}
		if err := s.PutInventory(ctx, inv); err != nil {
			t.Fatal(err)
		}
		inv.Containers = append(inv.Containers, fleet.Container{ID: "c2", Name: "sidecar"})
		if err := s.PutInventory(ctx, inv); err != nil {
			t.Fatal(err)
		}
		if err := s.PutInventory(ctx, fleet.Inventory{AgentID: "agent-2", Host: "db-1.prod"}); err != nil {
			t.Fatal(err)
		}
		invs, err := s.Inventories(ctx, time.Now().Add(-5*time.Minute))
		if err != nil || len(invs) != 1 || len(invs[0].Inventory.Containers) != 2 || invs[0].Agent.ID != "agent-1" {
			t.Fatalf("inventories: %+v %v", invs, err)
		}
		if err := s.SetAgentDisabled(ctx, "agent-1", true); err != nil {
			t.Fatal(err)
		}
		if invs, _ := s.Inventories(ctx, time.Now().Add(-5*time.Minute)); len(invs) != 0 {
			t.Errorf("a disabled agent's inventory is listed: %+v", invs)
		}
		if err := s.SetAgentCertificate(ctx, "agent-1", "cd", notAfter); err != nil {
			t.Fatal(err)
		}
		if a, _ := s.GetAgent(ctx, "agent-1"); !a.Disabled || a.CertSerial != "cd" {
			t.Errorf("after disable and renew: %+v", a)
		}
	})
}
