package inventory

import (
	"slices"
	"strings"
	"testing"
)

func TestCollector(t *testing.T) {
	var c Collector
	c.Add(Package{Name: "b", Version: "1", Dev: true})
	c.Add(Package{Name: "a", Version: "2", Dev: true})
	c.Add(Package{Name: "b", Version: "1", Dev: false, Licenses: []string{"MIT"}})
	c.Add(Package{Name: "a", Version: "2", Dev: true})
	got := c.Sorted()
	if len(got) != 2 || got[0].Name != "a" || !got[0].Dev || got[1].Dev || !slices.Equal(got[1].Licenses, []string{"MIT"}) {
		t.Errorf("got %+v", got)
	}

	folded := Collector{Key: func(p *Package) string { return strings.ToLower(p.Name) + "@" + p.Version }}
	folded.Add(Package{Name: "PyYAML", Version: "6.0"})
	folded.Add(Package{Name: "pyyaml", Version: "6.0"})
	if n := len(folded.Sorted()); n != 1 {
		t.Errorf("custom key: %d packages, want 1", n)
	}
}
