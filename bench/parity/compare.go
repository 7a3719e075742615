package parity

import (
	"fmt"
	"sort"
	"strings"
)

// Groups joins vulnerability identifiers that name the same vulnerability
// (GO-2021-0113, CVE-2021-38561 and GHSA-ppp9-7jff-5vj2), so that tools
// that report different identifiers can be compared. Identifiers are
// joined through the aliases of the OSV records and of the tools' findings.
type Groups struct {
	parent map[string]string
}

// NewGroups returns an empty set of groups.
func NewGroups() *Groups { return &Groups{parent: map[string]string{}} }

func (g *Groups) find(id string) string {
	p, ok := g.parent[id]
	if !ok {
		g.parent[id] = id
		return id
	}
	if p == id {
		return id
	}
	root := g.find(p)
	g.parent[id] = root
	return root
}

// Join puts ids into one group.
func (g *Groups) Join(ids ...string) {
	if len(ids) == 0 {
		return
	}
	a := g.find(ids[0])
	for _, id := range ids[1:] {
		if b := g.find(id); b != a {
			g.parent[b] = a
		}
	}
}

// AddRecords joins each record's ID with its aliases.
func (g *Groups) AddRecords(recs []Record) {
	for _, r := range recs {
		g.Join(append([]string{r.ID}, r.Aliases...)...)
	}
}

// AddFindings joins the identifiers of each finding.
func (g *Groups) AddFindings(fs []Finding) {
	for _, f := range fs {
		g.Join(f.IDs...)
	}
}

// Members returns the identifiers in id's group, sorted.
func (g *Groups) Members(id string) []string {
	root := g.find(id)
	var m []string
	for k := range g.parent {
		if g.find(k) == root {
			m = append(m, k)
		}
	}
	sort.Strings(m)
	return m
}

// Canonical returns the identifier that stands for id's group: its first
// CVE, else its first GHSA, else its first identifier.
func (g *Groups) Canonical(id string) string {
	m := g.Members(id)
	for _, prefix := range []string{"CVE-", "GHSA-"} {
		for _, x := range m {
			if strings.HasPrefix(x, prefix) {
				return x
			}
		}
	}
	return m[0]
}

// Same reports whether a and b are in one group.
func (g *Groups) Same(a, b string) bool { return g.find(a) == g.find(b) }

// Key identifies one vulnerability (by its group's canonical identifier)
// in one package version.
type Key struct {
	Ecosystem, Name, Version, Vuln string
}

// String formats the key as "Ecosystem name@version VULN".
func (k Key) String() string {
	return fmt.Sprintf("%s %s@%s %s", k.Ecosystem, k.Name, k.Version, k.Vuln)
}

// Set is one tool's findings by key. Findings with the same key are
// merged: the strongest reachability wins and symbols are joined.
type Set map[Key]Finding

// Set keys fs by their groups' canonical identifiers. Call it after every
// tool's findings have been added, so that all groups are complete.
func (g *Groups) Set(fs []Finding) Set {
	s := Set{}
	for _, f := range fs {
		if len(f.IDs) == 0 {
			continue
		}
		k := Key{f.Ecosystem, f.Name, f.Version, g.Canonical(f.IDs[0])}
		if old, ok := s[k]; ok {
			f.Reach = max(f.Reach, old.Reach)
			for _, sym := range old.Symbols {
				f.Symbols = appendUnique(f.Symbols, sym)
			}
			sort.Strings(f.Symbols)
		}
		s[k] = f
	}
	return s
}

// Filter returns the findings of s for which keep is true.
func (s Set) Filter(keep func(Key, Finding) bool) Set {
	out := Set{}
	for k, f := range s {
		if keep(k, f) {
			out[k] = f
		}
	}
	return out
}

// Keys returns the keys of s, sorted.
func (s Set) Keys() []Key {
	ks := make([]Key, 0, len(s))
	for k := range s {
		ks = append(ks, k)
	}
	SortKeys(ks)
	return ks
}

// Diff returns the keys only in a and the keys only in b, sorted.
func Diff(a, b Set) (onlyA, onlyB []Key) {
	for k := range a {
		if _, ok := b[k]; !ok {
			onlyA = append(onlyA, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			onlyB = append(onlyB, k)
		}
	}
	SortKeys(onlyA)
	SortKeys(onlyB)
	return onlyA, onlyB
}

// SortKeys sorts keys by ecosystem, name, version and vulnerability.
func SortKeys(ks []Key) {
	sort.Slice(ks, func(i, j int) bool {
		a, b := ks[i], ks[j]
		if a.Ecosystem != b.Ecosystem {
			return a.Ecosystem < b.Ecosystem
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Vuln < b.Vuln
	})
}
