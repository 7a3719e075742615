package match

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/vuln"
	"github.com/mamorisec/mamori/internal/vulndb"
)

// memSource is a Source over records held in memory, for table tests of
// the matching rules.
type memSource struct {
	affected map[string][]vulndb.Affected
	records  map[string]*vulndb.Record
}

func newMem(recs ...*vulndb.OSV) *memSource {
	m := &memSource{affected: map[string][]vulndb.Affected{}, records: map[string]*vulndb.Record{}}
	b := vulndb.NewBuilder()
	src := &vulndb.SourceInfo{Name: "test"}
	for _, r := range recs {
		b.AddOSV(src, r.ID, r)
	}
	b.Each(func(base, name string, es []vulndb.Affected) { m.affected[base+"\x00"+name] = es },
		func(r *vulndb.Record) { m.records[r.ID] = r })
	return m
}

func (m *memSource) Affected(base, name string) ([]vulndb.Affected, error) {
	return m.affected[base+"\x00"+vulndb.NormalizeName(base, name)], nil
}

func (m *memSource) Record(id string) (*vulndb.Record, error) { return m.records[id], nil }

func rec(id, eco, name string, events ...string) *vulndb.OSV {
	r := &vulndb.OSV{ID: id}
	a := vulndb.OSVAffected{Package: vulndb.OSVPackage{Ecosystem: eco, Name: name}}
	rg := vulndb.OSVRange{Type: "ECOSYSTEM"}
	for _, e := range events {
		k, v, _ := strings.Cut(e, "=")
		switch k {
		case "i":
			rg.Events = append(rg.Events, vulndb.OSVEvent{Introduced: v})
		case "f":
			rg.Events = append(rg.Events, vulndb.OSVEvent{Fixed: v})
		case "l":
			rg.Events = append(rg.Events, vulndb.OSVEvent{LastAffected: v})
		case "v":
			a.Versions = append(a.Versions, v)
		}
	}
	if len(rg.Events) > 0 {
		a.Ranges = []vulndb.OSVRange{rg}
	}
	r.Affected = []vulndb.OSVAffected{a}
	return r
}

func withAliases(r *vulndb.OSV, aliases ...string) *vulndb.OSV { r.Aliases = aliases; return r }

var debian12 = &inventory.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"}

func TestMatchRules(t *testing.T) {
	tests := []struct {
		name    string
		recs    []*vulndb.OSV
		os      *inventory.OS
		pkg     inventory.Package
		want    []string // "ID status fixed1,fixed2"
		warning string
	}{
		{
			name: "dpkg source package and tilde",
			recs: []*vulndb.OSV{rec("DEBIAN-CVE-1", "Debian:12", "openssl", "i=0", "f=3.0.11-1~deb12u2")},
			os:   debian12,
			pkg:  inventory.Package{Name: "libssl3", Version: "3.0.11-1~deb12u1", Type: "deb", SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u1"},
			want: []string{"DEBIAN-CVE-1 fixed 3.0.11-1~deb12u2"},
		},
		{
			name: "dpkg fixed version installed",
			recs: []*vulndb.OSV{rec("DEBIAN-CVE-1", "Debian:12", "openssl", "i=0", "f=3.0.11-1~deb12u2")},
			os:   debian12,
			pkg:  inventory.Package{Name: "openssl", Version: "3.0.11-1~deb12u2", Type: "deb"},
		},
		{
			name: "other Debian release does not apply",
			recs: []*vulndb.OSV{rec("DEBIAN-CVE-1", "Debian:11", "openssl", "i=0", "f=9")},
			os:   debian12,
			pkg:  inventory.Package{Name: "openssl", Version: "1.0", Type: "deb"},
		},
		{
			name: "dpkg epoch beats higher upstream",
			recs: []*vulndb.OSV{rec("DEBIAN-CVE-2", "Debian:12", "pyyaml", "i=0", "f=6.0-4")},
			os:   debian12,
			pkg:  inventory.Package{Name: "python3-yaml", Version: "1:6.0-3", Type: "deb", SourceName: "pyyaml", SourceVersion: "1:6.0-3"},
		},
		{
			name: "unfixed",
			recs: []*vulndb.OSV{rec("DEBIAN-CVE-3", "Debian:12", "bash", "i=0")},
			os:   debian12,
			pkg:  inventory.Package{Name: "bash", Version: "5.2.15-2+b2", Type: "deb"},
			want: []string{"DEBIAN-CVE-3 not-fixed "},
		},
		{
			name:    "no OS release",
			recs:    []*vulndb.OSV{rec("DEBIAN-CVE-3", "Debian:12", "bash", "i=0")},
			pkg:     inventory.Package{Name: "bash", Version: "5.2", Type: "deb"},
			warning: "no OS release",
		},
		{
			name: "language package owned by an OS package is not matched twice",
			recs: []*vulndb.OSV{rec("PYSEC-1", "PyPI", "pyyaml", "i=0", "f=6.0.1")},
			pkg:  inventory.Package{Name: "PyYAML", Version: "6.0", Type: "pypi", OwnedBy: "deb:python3-yaml"},
		},
		{
			name: "PEP 503 name and PEP 440 version",
			recs: []*vulndb.OSV{rec("PYSEC-1", "PyPI", "pyyaml", "i=0", "f=5.4")},
			pkg:  inventory.Package{Name: "PyYAML", Version: "5.4rc1", Type: "pypi"},
			want: []string{"PYSEC-1 fixed 5.4"},
		},
		{
			name: "aliases merge into one finding with the CVE as ID",
			recs: []*vulndb.OSV{
				withAliases(rec("PYSEC-2", "PyPI", "django", "i=0", "f=3.2.1"), "CVE-2021-1"),
				withAliases(rec("GHSA-aaaa", "PyPI", "django", "i=3.0", "f=3.2.2"), "CVE-2021-1", "PYSEC-2"),
			},
			pkg:  inventory.Package{Name: "Django", Version: "3.2", Type: "pypi"},
			want: []string{"CVE-2021-1 fixed 3.2.1,3.2.2"},
		},
		{
			name: "explicit versions list",
			recs: []*vulndb.OSV{rec("PYSEC-3", "PyPI", "foo", "v=1.0", "v=1.1")},
			pkg:  inventory.Package{Name: "foo", Version: "1.1", Type: "pypi"},
			want: []string{"PYSEC-3 not-fixed "},
		},
		{
			name: "last_affected includes its version only",
			recs: []*vulndb.OSV{rec("GHSA-l", "npm", "left-pad", "i=1.0.0", "l=1.3.0")},
			pkg:  inventory.Package{Name: "left-pad", Version: "1.3.0", Type: "npm"},
			want: []string{"GHSA-l not-fixed "},
		},
		{
			name: "after last_affected",
			recs: []*vulndb.OSV{rec("GHSA-l", "npm", "left-pad", "i=1.0.0", "l=1.3.0")},
			pkg:  inventory.Package{Name: "left-pad", Version: "1.3.1", Type: "npm"},
		},
		{
			name: "Go pseudo-version and second range",
			recs: []*vulndb.OSV{rec("GO-1", "Go", "golang.org/x/net", "i=0", "f=0.7.0", "i=0.8.0-0", "f=0.9.1")},
			pkg:  inventory.Package{Name: "golang.org/x/net", Version: "v0.0.0-20210226172049-e18ecbb05110", Type: "golang"},
			want: []string{"GO-1 fixed 0.7.0"},
		},
		{
			name: "Go second range",
			recs: []*vulndb.OSV{rec("GO-1", "Go", "golang.org/x/net", "i=0", "f=0.7.0", "i=0.8.0-0", "f=0.9.1")},
			pkg:  inventory.Package{Name: "golang.org/x/net", Version: "v0.8.5", Type: "golang"},
			want: []string{"GO-1 fixed 0.9.1"},
		},
		{
			name: "Go between ranges",
			recs: []*vulndb.OSV{rec("GO-1", "Go", "golang.org/x/net", "i=0", "f=0.7.0", "i=0.8.0-0", "f=0.9.1")},
			pkg:  inventory.Package{Name: "golang.org/x/net", Version: "v0.7.1", Type: "golang"},
		},
		{
			name: "Go devel main module is not matched",
			recs: []*vulndb.OSV{rec("GO-2", "Go", "example.com/app", "i=0")},
			pkg:  inventory.Package{Name: "example.com/app", Version: "(devel)", Type: "golang"},
		},
		{
			name:    "unparsable installed version is a warning",
			recs:    []*vulndb.OSV{rec("GHSA-x", "npm", "x", "i=0")},
			pkg:     inventory.Package{Name: "x", Version: "not a version!", Type: "npm"},
			warning: "not matched",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := &inventory.Report{OS: tt.os, Packages: []inventory.Package{tt.pkg}}
			res, err := New(newMem(tt.recs...)).Match(context.Background(), rep)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range res.Findings {
				got = append(got, f.ID+" "+string(f.Status)+" "+strings.Join(f.FixedVersions, ","))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings = %q, want %q", got, tt.want)
			}
			warn := strings.Join(res.Warnings, "\n")
			if (tt.warning == "") != (warn == "") || !strings.Contains(warn, tt.warning) {
				t.Errorf("warnings = %q, want one containing %q", warn, tt.warning)
			}
		})
	}
}

func TestAliasesAndRecords(t *testing.T) {
	recs := []*vulndb.OSV{
		withAliases(rec("GO-2021-0113", "Go", "golang.org/x/text", "i=0", "f=0.3.7"), "CVE-2021-38561", "GHSA-ppp9-7jff-5vj2"),
		withAliases(rec("GHSA-ppp9-7jff-5vj2", "Go", "golang.org/x/text", "i=0", "f=0.3.7"), "CVE-2021-38561"),
	}
	res, err := New(newMem(recs...)).Match(context.Background(), &inventory.Report{Packages: []inventory.Package{{Name: "golang.org/x/text", Version: "v0.3.5", Type: "golang"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 {
		t.Fatalf("got %d findings, want 1", len(res.Findings))
	}
	f := res.Findings[0]
	if f.ID != "CVE-2021-38561" || !slices.Equal(f.Aliases, []string{"GHSA-ppp9-7jff-5vj2", "GO-2021-0113"}) ||
		!slices.Equal(f.Records, []string{"GHSA-ppp9-7jff-5vj2", "GO-2021-0113"}) {
		t.Errorf("finding = %s aliases %v records %v", f.ID, f.Aliases, f.Records)
	}
	if f.Reachability == nil || f.Reachability.Status != vuln.ReachableUnknown {
		t.Errorf("reachability = %+v, want unknown (no symbols)", f.Reachability)
	}
}

func TestReachability(t *testing.T) {
	r := rec("GO-1", "Go", "golang.org/x/text", "i=0", "f=0.3.7")
	r.Affected[0].EcosystemSpecific = []byte(`{"imports":[{"path":"golang.org/x/text/language","symbols":["Parse","MatchStrings"]}]}`)
	whole := rec("GO-2", "Go", "golang.org/x/text", "i=0", "f=0.3.8")
	whole.Affected[0].EcosystemSpecific = []byte(`{"imports":[{"path":"golang.org/x/text/encoding/unicode"}]}`)
	tests := []struct {
		syms []string
		want map[string]string
	}{
		{[]string{"golang.org/x/text/language.Parse", "golang.org/x/text/language.Tag.String"},
			map[string]string{"GO-1": vuln.ReachableYes, "GO-2": vuln.ReachableNo}},
		{[]string{"golang.org/x/text/language.Tag.String", "golang.org/x/text/encoding/unicode.UTF16"},
			map[string]string{"GO-1": vuln.ReachableNo, "GO-2": vuln.ReachableYes}},
		{[]string{"golang.org/x/text/encoding/unicode/utf32.UTF32"}, // a subpackage is not the package
			map[string]string{"GO-1": vuln.ReachableNo, "GO-2": vuln.ReachableNo}},
		{nil, map[string]string{"GO-1": vuln.ReachableUnknown, "GO-2": vuln.ReachableUnknown}},
	}
	for _, tt := range tests {
		slices.Sort(tt.syms) // the inventory keeps them sorted
		p := inventory.Package{Name: "golang.org/x/text", Version: "v0.3.5", Type: "golang", Symbols: tt.syms}
		if tt.syms != nil {
			p.Metadata = map[string]string{"symbolTable": "true"}
		}
		res, err := New(newMem(r, whole)).Match(context.Background(), &inventory.Report{Packages: []inventory.Package{p}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, f := range res.Findings {
			got[f.ID] = f.Reachability.Status
		}
		for id, w := range tt.want {
			if got[id] != w {
				t.Errorf("symbols %v: %s reachability = %q, want %q", tt.syms, id, got[id], w)
			}
		}
	}
}

func TestSeverityDecision(t *testing.T) {
	r := rec("GHSA-s", "npm", "x", "i=0")
	r.Severity = []vulndb.OSVSeverity{
		{Type: "CVSS_V2", Score: "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
		{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N"},
	}
	r.DatabaseSpecific = []byte(`{"severity":"CRITICAL"}`)
	res, err := New(newMem(r)).Match(context.Background(), &inventory.Report{Packages: []inventory.Package{{Name: "x", Version: "1.0.0", Type: "npm"}}})
	if err != nil {
		t.Fatal(err)
	}
	f := res.Findings[0]
	if f.Severity != vuln.SeverityLow || f.SeveritySource != "cvss:3.1" || len(f.CVSS) != 2 || len(f.VendorSeverity) != 1 {
		t.Errorf("severity %s from %s, cvss %+v, vendor %+v", f.Severity, f.SeveritySource, f.CVSS, f.VendorSeverity)
	}
	u := rec("UBUNTU-CVE-1", "Ubuntu:22.04:LTS", "openssl", "i=0")
	u.Severity = []vulndb.OSVSeverity{{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}, {Type: "Ubuntu", Score: "medium"}}
	res, err = New(newMem(u)).Match(context.Background(), &inventory.Report{
		OS:       &inventory.OS{ID: "ubuntu", VersionID: "22.04"},
		Packages: []inventory.Package{{Name: "openssl", Version: "3.0.2-0ubuntu1", Type: "deb"}}})
	if err != nil {
		t.Fatal(err)
	}
	f = res.Findings[0]
	if f.Severity != vuln.SeverityMedium || f.SeveritySource != "vendor:ubuntu" || f.MaxScore() != 9.8 {
		t.Errorf("OS package: severity %s from %s, max score %v", f.Severity, f.SeveritySource, f.MaxScore())
	}
}
