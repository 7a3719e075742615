package parity

import (
	"reflect"
	"testing"
)

func TestGroupsAndDiff(t *testing.T) {
	g := NewGroups()
	recs := testRecords(t)
	g.AddRecords(recs)
	a := []Finding{
		{Ecosystem: "Go", Name: "example.com/mod", Version: "1.0.0", IDs: []string{"GO-2099-0001"}, Reach: ReachModule},
		{Ecosystem: "Go", Name: "example.com/mod", Version: "1.0.0", IDs: []string{"GO-2099-0001"}, Reach: ReachSymbol, Symbols: []string{"b", "a"}},
		{Ecosystem: "npm", Name: "left-pad", Version: "1.0.0", IDs: []string{"GHSA-xxxx-yyyy-zzzz"}},
	}
	b := []Finding{
		// Another tool's identifier and alias, joined through its own aliases.
		{Ecosystem: "Go", Name: "example.com/mod", Version: "1.0.0", IDs: []string{"GHSA-aaaa-bbbb-cccc"}},
		{Ecosystem: "PyPI", Name: "example-pkg", Version: "1.0", IDs: []string{"PYSEC-2099-7"}},
		{Ecosystem: "PyPI", Name: "example-pkg", Version: "1.0", IDs: []string{"OTHER-1", "CVE-2099-2222"}},
	}
	g.AddFindings(a)
	g.AddFindings(b)
	if got := g.Canonical("GO-2099-0001"); got != "CVE-2099-1111" {
		t.Errorf("Canonical(GO-2099-0001) = %s, want the CVE", got)
	}
	if got := g.Canonical("GHSA-xxxx-yyyy-zzzz"); got != "GHSA-xxxx-yyyy-zzzz" {
		t.Errorf("Canonical(GHSA-xxxx-yyyy-zzzz) = %s", got)
	}
	if !g.Same("OTHER-1", "PYSEC-2099-7") {
		t.Error("OTHER-1 and PYSEC-2099-7 share CVE-2099-2222 but are not in one group")
	}
	sa, sb := g.Set(a), g.Set(b)
	goKey := Key{"Go", "example.com/mod", "1.0.0", "CVE-2099-1111"}
	if f := sa[goKey]; f.Reach != ReachSymbol || !reflect.DeepEqual(f.Symbols, []string{"a", "b"}) {
		t.Errorf("merged finding = %+v, want symbol reach with symbols a b", f)
	}
	if len(sb) != 2 {
		t.Errorf("set b has %d keys, want 2: %v", len(sb), sb.Keys())
	}
	onlyA, onlyB := Diff(sa, sb)
	wantA := []Key{{"npm", "left-pad", "1.0.0", "GHSA-xxxx-yyyy-zzzz"}}
	wantB := []Key{{"PyPI", "example-pkg", "1.0", "CVE-2099-2222"}}
	if !reflect.DeepEqual(onlyA, wantA) || !reflect.DeepEqual(onlyB, wantB) {
		t.Errorf("Diff = %v, %v; want %v, %v", onlyA, onlyB, wantA, wantB)
	}
	goOnly := sa.Filter(func(k Key, _ Finding) bool { return k.Ecosystem == "Go" })
	if !reflect.DeepEqual(goOnly.Keys(), []Key{goKey}) {
		t.Errorf("Filter kept %v", goOnly.Keys())
	}
}
