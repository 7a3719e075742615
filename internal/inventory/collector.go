package inventory

import "sort"

// Collector gathers the packages of one manifest, keeping one entry per key
// in first-seen order. A repeated package is Dev only if every occurrence is,
// and takes its licenses from the first occurrence that declares some. Lock
// files list the same package many times (once per dependent).
type Collector struct {
	// Key identifies a package; nil means "name@version". Ecosystems with
	// name normalization (PEP 503) supply their own.
	Key   func(p *Package) string
	index map[string]int
	pkgs  []Package
}

// Add records a package.
func (c *Collector) Add(p Package) {
	if c.index == nil {
		c.index = map[string]int{}
	}
	key := p.Name + "@" + p.Version
	if c.Key != nil {
		key = c.Key(&p)
	}
	if i, ok := c.index[key]; ok {
		c.pkgs[i].Dev = c.pkgs[i].Dev && p.Dev
		if len(c.pkgs[i].Licenses) == 0 {
			c.pkgs[i].Licenses = p.Licenses
		}
		return
	}
	c.index[key] = len(c.pkgs)
	c.pkgs = append(c.pkgs, p)
}

// Sorted returns the packages sorted by name and version.
func (c *Collector) Sorted() []Package {
	sort.SliceStable(c.pkgs, func(i, j int) bool {
		if c.pkgs[i].Name != c.pkgs[j].Name {
			return c.pkgs[i].Name < c.pkgs[j].Name
		}
		return c.pkgs[i].Version < c.pkgs[j].Version
	})
	return c.pkgs
}
