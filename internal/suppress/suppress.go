// Package suppress marks findings that the user or the software's supplier
// has decided do not need action: rules of an ignore file
// (.mamoriignore.yaml) and OpenVEX statements. A suppressed finding stays in
// the report with the reason; it only stops counting for the gate.
//
// docs/assurance.md describes both formats and how they match.
package suppress

import (
	"strings"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/vuln"
)

// Rules are the suppression sources of one scan.
type Rules struct {
	// Ignore are ignore files; the first live rule that matches wins.
	Ignore []*IgnoreFile
	// VEX are OpenVEX documents; of the statements about a finding the
	// most recent decides, and a later document wins a tie.
	VEX []*VEX
	// Now decides which ignore rules have expired; zero means the current
	// time.
	Now time.Time
}

// Apply sets Suppressed on the findings of s that a rule or statement
// covers and returns warnings for the user: expired ignore rules and VEX
// products mamori cannot match. Ignore rules are tried before VEX
// statements. Findings that are already suppressed keep their suppression;
// no finding is removed.
func Apply(s *report.Scan, r Rules) (warnings []string) {
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	for _, f := range r.Ignore {
		warnings = append(warnings, f.warnings(now)...)
	}
	for _, v := range r.VEX {
		warnings = append(warnings, v.warnings...)
	}
	t := newTarget(s.Inventory)
	vex := indexVEX(r.VEX)
	for i := range s.Vulnerabilities {
		f := &s.Vulnerabilities[i]
		if f.Suppressed != nil {
			continue
		}
		f.Suppressed = suppression(f, r.Ignore, vex, now, t)
	}
	return warnings
}

// vexRef is a statement with its document and its position among all
// statements read.
type vexRef struct {
	st     *statement
	source string
	seq    int
}

// indexVEX maps each lowercased vulnerability name and alias to the
// statements about it, in reading order.
func indexVEX(docs []*VEX) map[string][]vexRef {
	idx := map[string][]vexRef{}
	seq := 0
	for _, v := range docs {
		for i := range v.statements {
			ref := vexRef{st: &v.statements[i], source: v.Path, seq: seq}
			seq++
			for _, id := range ref.st.vulns {
				k := strings.ToLower(id)
				if refs := idx[k]; len(refs) == 0 || refs[len(refs)-1].seq != ref.seq {
					idx[k] = append(refs, ref)
				}
			}
		}
	}
	return idx
}

func suppression(f *vuln.Finding, ignore []*IgnoreFile, vex map[string][]vexRef, now time.Time, t *target) *vuln.Suppression {
	for _, fl := range ignore {
		if s := fl.suppression(f, now); s != nil {
			return s
		}
	}
	var latest *vexRef
	for _, id := range append([]string{f.ID}, f.Aliases...) {
		for _, ref := range vex[strings.ToLower(id)] {
			if latest != nil && (ref.st.time.Before(latest.st.time) || ref.st.time.Equal(latest.st.time) && ref.seq < latest.seq) {
				continue
			}
			if ref.st.appliesTo(f, t) {
				latest = &ref
			}
		}
	}
	if latest == nil || (latest.st.status != StatusNotAffected && latest.st.status != StatusFixed) {
		return nil
	}
	return &vuln.Suppression{Kind: "vex", Source: latest.source, Status: latest.st.status, Justification: latest.st.reason}
}

// target is the image the findings were found in, prepared for matching.
type target struct {
	image *image
	// byPath lists the purls of the inventory's packages per file.
	byPath map[string][]string
	// parsed caches parsed purls; nil marks one that does not parse.
	parsed map[string]*packageurl.PackageURL
}

func newTarget(r *inventory.Report) *target {
	t := &target{image: imageOf(r), byPath: map[string][]string{}, parsed: map[string]*packageurl.PackageURL{}}
	if r != nil {
		for _, p := range r.Packages {
			if p.PURL != "" {
				t.byPath[p.Path] = append(t.byPath[p.Path], p.PURL)
			}
		}
	}
	return t
}

// purl parses a package's purl once; it returns nil for "" and bad ones.
func (t *target) purl(s string) *packageurl.PackageURL {
	if s == "" {
		return nil
	}
	if u, ok := t.parsed[s]; ok {
		return u
	}
	var p *packageurl.PackageURL
	if u, err := packageurl.FromString(s); err == nil {
		p = &u
	}
	t.parsed[s] = p
	return p
}
