package runtimepolicy

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/mamorisec/mamori/internal/fleet"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(fullJSON))
	f.Add([]byte(fullYAML))
	f.Add([]byte(`{"name": "x", "controls": {"cryptoMiner": {"enabled": true}}}`))
	f.Add([]byte("- name: a\n  controls: {}\n"))
	f.Add([]byte("name: &a x\ncontrols: *a\n"))
	f.Add([]byte(`{"name": "x", "created": "2026-01-01T00:00:00+02:00", "schedule": {"enforceFrom": "2026-02-01T00:00:00-05:00"}, "controls": {}}`))
	for _, p := range Builtins() {
		b, _ := p.Export()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			_, _ = ParseBundle(data)
			return
		}
		// A parsed policy exports and parses back to itself, and compiles.
		out, err := p.Export()
		if err != nil {
			t.Fatalf("Export: %v", err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Export) failed: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(p, back) {
			t.Fatalf("round trip differs:\n%+v\n%+v", p, back)
		}
		p.Scopes = nil
		raw, _ := p.Export()
		s, err := Compile(fleet.PolicyBundle{Policies: []json.RawMessage{raw}}, now)
		if err != nil {
			t.Fatalf("Compile of a valid policy: %v", err)
		}
		e := s.For(webProd)
		e.Exec(ExecContext{Path: "/bin/sh", Args: []string{"sh", "-i"}})
		e.FileWrite("/etc/passwd")
		e.Syscalls()
	})
}

func FuzzParseCriteria(f *testing.F) {
	for _, s := range []string{
		`namespace == "prod*" && label["app"] == "web" || image == "registry.example/team-a/*" && !(container == "debug*") && host == "node-*"`,
		`!(!(host == ""))`, `label["a"] != "b\"c"`, `(((`, `host == "a`, `pod == "**"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCriteria(s)
		if err != nil {
			if ce, ok := err.(*CriteriaError); ok && (ce.Column < 1 || ce.Column > len(s)+1) {
				t.Fatalf("column %d out of range for %d bytes", ce.Column, len(s))
			}
			return
		}
		c.Matches(webProd)
		c.Matches(Workload{})
	})
}
