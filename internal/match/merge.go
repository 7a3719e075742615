package match

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/cvss"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/inventory/gobinary"
	"github.com/mamorisec/mamori/internal/version"
	"github.com/mamorisec/mamori/internal/vuln"
	"github.com/mamorisec/mamori/internal/vulndb"
)

// merge groups the hits of one package by alias (records that share an ID
// or alias, transitively, describe one vulnerability) and builds one
// finding per group.
func (m *Matcher) merge(p *inventory.Package, t target, hits []hit) ([]vuln.Finding, error) {
	recs := make([]*vulndb.Record, len(hits))
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if parent[x] == "" || parent[x] == x {
			parent[x] = x
			return x
		}
		r := find(parent[x])
		parent[x] = r
		return r
	}
	union := func(a, b string) {
		ra, rb := find(a), find(b)
		if ra != rb {
			parent[ra] = rb
		}
	}
	for i, h := range hits {
		r, err := m.record(h.entry.ID)
		if err != nil {
			return nil, err
		}
		recs[i] = r
		find(r.ID)
		for _, a := range r.Aliases {
			union(r.ID, a)
		}
	}
	groups := map[string][]int{}
	var order []string
	for i, r := range recs {
		g := find(r.ID)
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], i)
	}
	out := make([]vuln.Finding, 0, len(order))
	for _, g := range order {
		f := m.finding(p, t, hits, recs, groups[g])
		out = append(out, f)
	}
	return out, nil
}

func (m *Matcher) finding(p *inventory.Package, t target, hits []hit, recs []*vulndb.Record, idx []int) vuln.Finding {
	f := vuln.Finding{
		Package:        vuln.PackageOf(p),
		Ecosystem:      t.label,
		MatchedName:    hits[idx[0]].entry.Name,
		MatchedVersion: t.version,
	}
	var ids []string
	affected := false
	statusRank := map[vuln.Status]int{vuln.StatusNotAffected: 0, vuln.StatusWontFix: 1, vuln.StatusNotFixed: 2, vuln.StatusFixed: 3}
	f.Status = vuln.StatusNotAffected
	var imports []vulndb.Import
	hasImports := false
	for _, i := range idx {
		h, r := hits[i], recs[i]
		if !slices.Contains(f.Records, r.ID) {
			f.Records = append(f.Records, r.ID)
		}
		ids = append(ids, r.ID)
		ids = append(ids, r.Aliases...)
		if h.status != vuln.StatusNotAffected {
			affected = true
		}
		if statusRank[h.status] > statusRank[f.Status] {
			f.Status = h.status
		}
		for _, fx := range h.fixed {
			if !slices.Contains(f.FixedVersions, fx) {
				f.FixedVersions = append(f.FixedVersions, fx)
			}
		}
		if len(h.entry.Imports) > 0 {
			hasImports = true
			imports = append(imports, h.entry.Imports...)
		}
		if f.Summary == "" {
			f.Summary = r.Summary
		}
		if f.URL == "" {
			f.URL = r.URL
		}
		for _, ref := range r.References {
			if !slices.Contains(f.References, ref) {
				f.References = append(f.References, ref)
			}
		}
		if pt := parseTime(r.Published); pt != nil && (f.Published == nil || pt.Before(*f.Published)) {
			f.Published = pt
		}
		if mt := parseTime(r.Modified); mt != nil && (f.Modified == nil || mt.After(*f.Modified)) {
			f.Modified = mt
		}
		addSeverities(&f, r.ID, r.Severity)
		addSeverities(&f, r.ID, h.entry.Severity)
		if r.DBSeverity != "" {
			if s, err := vuln.ParseSeverity(r.DBSeverity); err == nil {
				f.VendorSeverity = append(f.VendorSeverity, vuln.VendorSeverity{Source: sourceOf(r.ID), Severity: s})
			}
		}
	}
	if !affected {
		f.Status = vuln.StatusNotAffected
		f.FixedVersions = nil
	}
	sortVersions(t.label, f.FixedVersions)
	slices.Sort(f.Records)
	ids = uniq(ids)
	f.ID = preferredID(ids)
	for _, id := range ids {
		if id != f.ID {
			f.Aliases = append(f.Aliases, id)
		}
	}
	decideSeverity(&f, isOSType(p.Type))
	if p.Type == inventory.TypeGolang {
		f.Reachability = reachability(p, hasImports, imports)
	}
	return f
}

// reachability checks the vulnerable packages and symbols of the records
// against the functions in the binary.
func reachability(p *inventory.Package, hasImports bool, imports []vulndb.Import) *vuln.Reachability {
	if p.Metadata[gobinary.SymbolTableKey] != "true" || !hasImports {
		return &vuln.Reachability{Status: vuln.ReachableUnknown}
	}
	r := &vuln.Reachability{Status: vuln.ReachableNo}
	for _, imp := range imports {
		if len(imp.Symbols) == 0 {
			// The whole package is vulnerable: any of its functions counts.
			prefix := imp.Path + "."
			i, _ := slices.BinarySearch(p.Symbols, prefix)
			if i < len(p.Symbols) && strings.HasPrefix(p.Symbols[i], prefix) && !strings.Contains(p.Symbols[i][len(prefix):], "/") {
				r.Status = vuln.ReachableYes
				r.Symbols = append(r.Symbols, imp.Path)
			}
			continue
		}
		for _, s := range imp.Symbols {
			full := imp.Path + "." + s
			if _, ok := slices.BinarySearch(p.Symbols, full); ok {
				r.Status = vuln.ReachableYes
				r.Symbols = append(r.Symbols, full)
			}
		}
	}
	r.Symbols = uniq(r.Symbols)
	return r
}

// addSeverities adds CVSS vectors (scored by mamori) and vendor ratings.
func addSeverities(f *vuln.Finding, source string, sev []vulndb.OSVSeverity) {
	for _, s := range sev {
		switch {
		case strings.HasPrefix(s.Type, "CVSS_"):
			sc, err := cvss.Parse(s.Score)
			if err != nil {
				continue // an unscorable vector is left out, the finding stays
			}
			dup := slices.ContainsFunc(f.CVSS, func(c vuln.CVSS) bool { return c.Vector == sc.Vector })
			if !dup {
				f.CVSS = append(f.CVSS, vuln.CVSS{Version: sc.Version, Vector: sc.Vector, Score: sc.Base, Severity: sc.Severity, Source: source})
			}
		default:
			if r, err := vuln.ParseSeverity(s.Score); err == nil {
				f.VendorSeverity = append(f.VendorSeverity, vuln.VendorSeverity{Source: strings.ToLower(s.Type), Severity: r})
			}
		}
	}
}

// distroSources are the vendor rating sources that decide for OS packages.
var distroSources = []string{"debian", "ubuntu", "alpine", "redhat", "red hat", "suse", "rocky", "almalinux", "wolfi", "chainguard"}

// decideSeverity sets Severity and SeveritySource. For OS packages the
// distro's own rating decides when there is one, since it accounts for how
// the distro built the package. Otherwise the newest CVSS version decides
// (4.0, then 3.x, then 2.0; the highest score within a version), then an
// advisory database's rating (GitHub). See docs/vulnerabilities.md.
func decideSeverity(f *vuln.Finding, osPackage bool) {
	if osPackage {
		for _, vs := range f.VendorSeverity {
			if slices.Contains(distroSources, vs.Source) && vs.Severity != vuln.SeverityUnknown {
				f.Severity, f.SeveritySource = vs.Severity, "vendor:"+vs.Source
				return
			}
		}
	}
	var best *vuln.CVSS
	for i := range f.CVSS {
		c := &f.CVSS[i]
		if best == nil || major(c.Version) > major(best.Version) || (major(c.Version) == major(best.Version) && c.Score > best.Score) {
			best = c
		}
	}
	if best != nil {
		f.Severity, f.SeveritySource = best.Severity, "cvss:"+best.Version
		return
	}
	for _, vs := range f.VendorSeverity {
		if vs.Severity != vuln.SeverityUnknown {
			f.Severity, f.SeveritySource = vs.Severity, "vendor:"+vs.Source
			return
		}
	}
	f.Severity = vuln.SeverityUnknown
}

func major(v string) string { m, _, _ := strings.Cut(v, "."); return m }

func sourceOf(id string) string {
	prefix, _, _ := strings.Cut(id, "-")
	return strings.ToLower(prefix)
}

func parseTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 1970 {
		return nil
	}
	t = t.UTC()
	return &t
}

func uniq(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// sortVersions orders fixed versions by the ecosystem's ordering; on an
// unparsable version it falls back to string order.
func sortVersions(eco string, vs []string) {
	slices.SortFunc(vs, func(a, b string) int {
		c, err := version.Compare(eco, a, b)
		if err != nil {
			return cmp.Compare(a, b)
		}
		return c
	})
}
