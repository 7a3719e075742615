package runtimepolicy

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/mamorisec/mamori/internal/fleet"
)

func TestLearner(t *testing.T) {
	l := NewLearner(2, 3)
	web := Workload{Image: "registry.example/team-a/web:1"}
	for _, p := range []string{"/usr/sbin/nginx", "/bin/sh", "/usr/sbin/nginx", "/usr/bin/id"} {
		if !l.Record(web, p) {
			t.Errorf("Record(%s) = false", p)
		}
	}
	if l.Record(web, "/usr/bin/extra") {
		t.Error("Record past maxExecutables = true")
	}
	for _, bad := range []string{"relative", "/bin/[x]", "/a b"} {
		if l.Record(web, bad) {
			t.Errorf("Record(%q) = true", bad)
		}
	}
	if !l.Record(Workload{Image: "busybox"}, "/bin/busybox") || l.Record(Workload{Image: "alpine"}, "/bin/sh") {
		t.Error("image bound not applied")
	}
	if l.Record(Workload{}, "/bin/sh") {
		t.Error("Record without an image = true")
	}
	if l.Dropped() != 2 {
		t.Errorf("Dropped = %d, want 2", l.Dropped())
	}
	if got := l.Images(); !reflect.DeepEqual(got, []string{"docker.io/library/busybox", "registry.example/team-a/web"}) {
		t.Errorf("Images = %v", got)
	}
	p, err := l.Policy("registry.example/team-a/web:2", now)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "learned-registry.example/team-a/web" || p.Enabled || p.Mode != Audit ||
		!reflect.DeepEqual(p.Controls.AllowedExecutables.Items, []string{"/bin/sh", "/usr/bin/id", "/usr/sbin/nginx"}) {
		t.Errorf("Policy = %+v", p)
	}
	if _, err := l.Policy("nothing", now); err == nil {
		t.Error("Policy for an unknown image succeeded")
	}
	// The learned policy, enabled and enforced, allows what was learned
	// and blocks the rest, for that image only.
	p.Enabled, p.Mode = true, Enforce
	raw, err := p.Export()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(fleet.PolicyBundle{Policies: []json.RawMessage{raw}}, now)
	if err != nil {
		t.Fatal(err)
	}
	e := s.For(web)
	if d := e.Exec(ExecContext{Path: "/usr/bin/id", FromImage: true}); d.Action != Allow {
		t.Errorf("learned executable: %+v", d)
	}
	if d := e.Exec(ExecContext{Path: "/usr/bin/wget", FromImage: true}); d.Action != Block || d.Control != ControlAllowedExecutables {
		t.Errorf("unlearned executable: %+v", d)
	}
	if s.For(Workload{Image: "busybox"}) != nil {
		t.Error("learned policy applies to another image")
	}
	if !(&Effective{controls: []applied{{control: control{name: ControlLearning}}}}).Learning() {
		t.Error("Learning() = false")
	}
}
