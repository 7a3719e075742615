// Package match matches an image inventory against a vulnerability
// database and produces findings: one per vulnerability per package, with
// the records that describe the same vulnerability merged by alias.
//
// Distro packages are matched by source package in the image's release
// ("Debian:12"); language packages owned by an OS package are matched
// through the distro only. Go modules found in binaries are checked for
// the vulnerable symbols the records list (reachability).
package match

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/version"
	"github.com/mamorisec/mamori/internal/vuln"
	"github.com/mamorisec/mamori/internal/vulndb"
)

// Source is the database the matcher reads. *vulndb.DB implements it.
type Source interface {
	Affected(base, name string) ([]vulndb.Affected, error)
	Record(id string) (*vulndb.Record, error)
}

// Matcher matches packages against a Source. It caches records, so one
// Matcher should be used per scan or shared by scans of the same DB.
type Matcher struct {
	src      Source
	mu       sync.Mutex
	records  map[string]*vulndb.Record
	entries  map[string][]vulndb.Affected
	versions map[string]parsed
}

// parsed is a cached version.Parse result.
type parsed struct {
	v   version.Version
	err error
}

// New returns a Matcher reading src.
func New(src Source) *Matcher {
	return &Matcher{src: src, records: map[string]*vulndb.Record{},
		entries: map[string][]vulndb.Affected{}, versions: map[string]parsed{}}
}

// parse parses a version through the matcher's cache: records repeat the
// same event versions for many packages.
func (m *Matcher) parse(eco, v string) (version.Version, error) {
	k := eco + "\x00" + v
	m.mu.Lock()
	p, ok := m.versions[k]
	m.mu.Unlock()
	if ok {
		return p.v, p.err
	}
	p.v, p.err = version.Parse(eco, v)
	m.mu.Lock()
	m.versions[k] = p
	m.mu.Unlock()
	return p.v, p.err
}

// affected returns the entries for a name through the matcher's cache.
func (m *Matcher) affected(base, name string) ([]vulndb.Affected, error) {
	k := base + "\x00" + name
	m.mu.Lock()
	es, ok := m.entries[k]
	m.mu.Unlock()
	if ok {
		return es, nil
	}
	es, err := m.src.Affected(base, name)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.entries[k] = es
	m.mu.Unlock()
	return es, nil
}

// Result is the outcome of matching one inventory.
type Result struct {
	// Findings are sorted by package and then by descending severity
	// and ID.
	Findings []vuln.Finding
	// Warnings name packages or OS releases that could not be matched.
	Warnings []string
}

// Match matches every package of rep. Errors are returned only for a
// database that cannot be read; a package whose version cannot be parsed
// is reported in Warnings and not matched.
func (m *Matcher) Match(ctx context.Context, rep *inventory.Report) (*Result, error) {
	res := &Result{}
	var d *distro
	hasOS := false
	for i := range rep.Packages {
		if isOSType(rep.Packages[i].Type) {
			hasOS = true
			break
		}
	}
	if hasOS {
		var err error
		if d, err = distroOf(rep.OS); err != nil {
			res.Warnings = append(res.Warnings, err.Error())
		}
	}
	for i := range rep.Packages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := &rep.Packages[i]
		t, ok := targetOf(p, d)
		if !ok {
			continue
		}
		fs, warn, err := m.matchPackage(p, t)
		if err != nil {
			return nil, err
		}
		if warn != "" {
			res.Warnings = append(res.Warnings, warn)
		}
		res.Findings = append(res.Findings, fs...)
	}
	sortFindings(res.Findings)
	return res, nil
}

// hit is one affected entry that matched a package.
type hit struct {
	entry  vulndb.Affected
	status vuln.Status
	fixed  []string
}

func (m *Matcher) matchPackage(p *inventory.Package, t target) ([]vuln.Finding, string, error) {
	v, err := m.parse(t.label, t.version)
	if err != nil {
		return nil, fmt.Sprintf("package %s %s (%s) at %s not matched: %v", p.Name, p.Version, p.Type, p.Path, err), nil
	}
	var hits []hit
	seen := map[string]bool{}
	for _, name := range t.names {
		entries, err := m.affected(t.base, name)
		if err != nil {
			return nil, "", err
		}
		for _, e := range entries {
			if !t.release(e.Ecosystem) || seen[e.ID+"\x00"+e.Name] {
				continue
			}
			seen[e.ID+"\x00"+e.Name] = true
			h, ok, err := m.evaluate(e, v)
			if err != nil {
				return nil, fmt.Sprintf("record %s for %s %s not evaluated: %v", e.ID, p.Name, p.Version, err), nil
			}
			if ok {
				hits = append(hits, h)
			}
		}
	}
	if len(hits) == 0 {
		return nil, "", nil
	}
	fs, err := m.merge(p, t, hits)
	return fs, "", err
}

// evaluate decides whether entry e affects version v, following the OSV
// evaluation rules: v is affected when it is listed, or when the greatest
// range event at or below v is an introduced event (a last_affected event
// closes the range only above its version).
// Listed versions are compared in the ecosystem's scheme, so "1.0" lists
// "1.0.0" for PyPI.
func (m *Matcher) evaluate(e vulndb.Affected, v version.Version) (hit, bool, error) {
	if e.Status == vulndb.NotAffected {
		return hit{entry: e, status: vuln.StatusNotAffected}, true, nil
	}
	affected := slices.Contains(e.Versions, v.String())
	var fixed []string
	if !affected {
		for _, lv := range e.Versions {
			w, err := m.parse(v.Ecosystem(), lv)
			if err != nil {
				return hit{}, false, err
			}
			if c, err := v.CompareVersion(w); err != nil {
				return hit{}, false, err
			} else if c == 0 {
				affected = true
				break
			}
		}
	}
	for _, r := range e.Ranges {
		in, fix, err := m.inRange(r, v)
		if err != nil {
			return hit{}, false, err
		}
		if in {
			affected = true
			if fix != "" && !slices.Contains(fixed, fix) {
				fixed = append(fixed, fix)
			}
		}
	}
	if !affected {
		return hit{}, false, nil
	}
	h := hit{entry: e, fixed: fixed, status: vuln.StatusNotFixed}
	switch {
	case len(fixed) > 0:
		h.status = vuln.StatusFixed
	case e.Status == vulndb.WontFix:
		h.status = vuln.StatusWontFix
	}
	return h, true, nil
}

// inRange evaluates one range. It returns whether v is in it and, if so,
// the lowest fixed version above v.
func (m *Matcher) inRange(r vulndb.Range, v version.Version) (bool, string, error) {
	// best is the greatest event at or below v; events with equal
	// versions rank fixed/last_affected above introduced.
	var best *vulndb.Event
	var bestV version.Version
	var fix string
	var fixV version.Version
	for i := range r.Events {
		ev := &r.Events[i]
		if ev.Kind == vulndb.Limit {
			continue
		}
		if ev.Kind == vulndb.Introduced && ev.Version == "0" {
			if best == nil {
				best = ev
			}
			continue
		}
		ev2, err := m.parse(v.Ecosystem(), ev.Version)
		if err != nil {
			return false, "", err
		}
		c, err := v.CompareVersion(ev2)
		if err != nil {
			return false, "", err
		}
		below := c >= 0
		if ev.Kind == vulndb.LastAffected {
			below = c > 0
		}
		if !below {
			if ev.Kind == vulndb.Fixed {
				if fix == "" {
					fix, fixV = ev.Version, ev2
				} else if d, err := ev2.CompareVersion(fixV); err == nil && d < 0 {
					fix, fixV = ev.Version, ev2
				}
			}
			continue
		}
		if best == nil || (best.Kind == vulndb.Introduced && best.Version == "0") {
			best, bestV = ev, ev2
			continue
		}
		d, err := ev2.CompareVersion(bestV)
		if err != nil {
			return false, "", err
		}
		if d > 0 || (d == 0 && ev.Kind != vulndb.Introduced) {
			best, bestV = ev, ev2
		}
	}
	if best == nil || best.Kind != vulndb.Introduced {
		return false, "", nil
	}
	// The fix that closes this range is the lowest fixed event above v.
	return true, fix, nil
}

func sortFindings(fs []vuln.Finding) {
	slices.SortStableFunc(fs, func(a, b vuln.Finding) int {
		return cmp.Or(
			cmp.Compare(a.Package.Type, b.Package.Type),
			cmp.Compare(a.Package.Name, b.Package.Name),
			cmp.Compare(a.Package.Version, b.Package.Version),
			cmp.Compare(a.Package.Path, b.Package.Path),
			cmp.Compare(b.Severity, a.Severity),
			cmp.Compare(a.ID, b.ID),
		)
	})
}

// record returns a record through the per-matcher cache.
func (m *Matcher) record(id string) (*vulndb.Record, error) {
	m.mu.Lock()
	r, ok := m.records[id]
	m.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := m.src.Record(id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &vulndb.Record{ID: id}
	}
	m.mu.Lock()
	m.records[id] = r
	m.mu.Unlock()
	return r, nil
}

// preferredID picks the ID a merged finding is shown under: the lowest CVE,
// then the lowest GHSA, then the lowest other ID.
func preferredID(ids []string) string {
	rank := func(id string) int {
		switch {
		case strings.HasPrefix(id, "CVE-"):
			return 0
		case strings.HasPrefix(id, "GHSA-"):
			return 1
		}
		return 2
	}
	return slices.MinFunc(ids, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b))
	})
}
