package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"golang.org/x/net/html"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/sbom"
	"github.com/mamorisec/mamori/internal/vuln"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenExt is the file extension of each format's golden files.
var goldenExt = map[string]string{
	FormatTable:     "txt",
	FormatJSON:      "json",
	FormatSARIF:     "sarif.json",
	FormatCycloneDX: "cdx.json",
	FormatSPDX:      "spdx.json",
	FormatHTML:      "html",
}

func write(t testing.TB, s *Scan, format string, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, format, s, opts); err != nil {
		t.Fatalf("Write(%s): %v", format, err)
	}
	return buf.Bytes()
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test -update after checking the change):\n%s", file, firstDiff(got, want))
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return "(same lines)"
}

// TestGolden writes every test scan in every format, compares the output
// with testdata/<scan>.<ext>.golden and validates it.
func TestGolden(t *testing.T) {
	for _, tc := range testScans {
		for _, format := range Formats() {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				s := tc.scan()
				got := write(t, s, format, testOptions)
				if !reflect.DeepEqual(s, tc.scan()) {
					t.Errorf("Write modified the scan")
				}
				if again := write(t, tc.scan(), format, testOptions); !bytes.Equal(got, again) {
					t.Errorf("output is not deterministic")
				}
				golden(t, tc.name+"."+goldenExt[format]+".golden", got)
				checkOutput(t, format, got)
			})
		}
	}
}

// TestGoldenNarrowColor writes the table for a 72-column color terminal.
func TestGoldenNarrowColor(t *testing.T) {
	got := write(t, fullScan(), FormatTable, Options{Width: 72, Color: true})
	golden(t, "full.color72.txt.golden", got)
}

// checkOutput validates one output: JSON formats parse and validate against
// their schemas, HTML parses and runs no script.
func checkOutput(t *testing.T, format string, b []byte) {
	t.Helper()
	switch format {
	case FormatTable:
		if !utf8.Valid(b) {
			t.Errorf("table is not UTF-8")
		}
	case FormatJSON:
		var s Scan
		if err := json.Unmarshal(b, &s); err != nil {
			t.Errorf("JSON does not decode into a Scan: %v", err)
		}
	case FormatSARIF:
		if err := checkSARIF(b); err != nil {
			t.Errorf("invalid SARIF: %v", err)
		}
	case FormatCycloneDX:
		checkCycloneDX(t, b)
	case FormatSPDX:
		checkSPDX(t, b)
	case FormatHTML:
		if err := checkHTML(b); err != nil {
			t.Errorf("invalid HTML: %v", err)
		}
	}
}

// checkHTML parses an HTML page and fails when it has a script, an event
// handler attribute, or a link or resource outside the page other than an
// http(s) link.
func checkHTML(b []byte) error {
	if !utf8.Valid(b) {
		return fmt.Errorf("page is not UTF-8")
	}
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		return err
	}
	var walk func(n *html.Node) error
	walk = func(n *html.Node) error {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "iframe", "object", "embed", "img", "link":
				return fmt.Errorf("page has a <%s> element", n.Data)
			}
			for _, a := range n.Attr {
				if strings.HasPrefix(strings.ToLower(a.Key), "on") {
					return fmt.Errorf("<%s> has event handler %s", n.Data, a.Key)
				}
				if a.Key == "href" && !webURL(a.Val) {
					return fmt.Errorf("link to %q", a.Val)
				}
				if a.Key == "src" {
					return fmt.Errorf("<%s> loads %q", n.Data, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(doc)
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name, format string
		scan         *Scan
		want         string
	}{
		{"unknown format", "xml", fullScan(), `unknown report format "xml" (valid: table, json, sarif, cyclonedx, spdx, html)`},
		{"nil scan", FormatJSON, nil, "writing json report: the scan has no inventory"},
		{"no inventory", FormatHTML, &Scan{}, "writing html report: the scan has no inventory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Write(&bytes.Buffer{}, tc.format, tc.scan, testOptions)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Write = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestTableHidesUncounted checks that suppressed and not affected findings
// are counted but not listed.
func TestTableHidesUncounted(t *testing.T) {
	out := string(write(t, fullScan(), FormatTable, Options{}))
	for _, id := range []string{"CVE-2024-4068", "CVE-2023-45853"} {
		if strings.Contains(out, id) {
			t.Errorf("table lists %s, which does not count", id)
		}
	}
	for _, want := range []string{
		"5 vulnerabilities (CRITICAL: 1, HIGH: 0, MEDIUM: 1, LOW: 1, NEGLIGIBLE: 1, UNKNOWN: 1); 1 suppressed; 1 not affected",
		"GO-2024-2887", "reachable", "not reachable", "1.21.11, 1.22.4",
		`Assurance policy "production": FAIL`,
		"warning: the vulnerability database is 3 days old",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("table has ANSI escapes without Color")
	}
}

// TestTableWidth checks that rows fit the terminal width when the summary
// can be cut enough.
func TestTableWidth(t *testing.T) {
	for _, width := range []int{100, 120, 160} {
		out := string(write(t, fullScan(), FormatTable, Options{Width: width}))
		inTable := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "  ID") {
				inTable = true
			}
			if line == "" {
				inTable = false
			}
			if inTable && strings.HasPrefix(line, "  ") {
				if n := utf8.RuneCountInString(line); n > width {
					t.Errorf("width %d: row is %d columns: %q", width, n, line)
				}
			}
		}
	}
}

func TestCut(t *testing.T) {
	tests := []struct {
		s     string
		limit int
		want  string
	}{
		{"hello world", 0, "hello world"},
		{"hello world", 11, "hello world"},
		{"hello world", 10, "hello wor…"},
		{"hello world", 7, "hello…"},
		{"héllo wörld", 5, "héll…"},
	}
	for _, tc := range tests {
		if got := cut(tc.s, tc.limit); got != tc.want {
			t.Errorf("cut(%q, %d) = %q, want %q", tc.s, tc.limit, got, tc.want)
		}
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"two\nlines\tand tab", "two lines and tab"},
		{"\x1b[31mred", "?[31mred"},
		{"bad \xff byte", "bad \ufffd byte"},
		{"c1 \u0085 char", "c1 ? char"},
	}
	for _, tc := range tests {
		if got := clean(tc.in); got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSARIFSeverity(t *testing.T) {
	tests := []struct {
		sev   vuln.Severity
		cvss  []vuln.CVSS
		level string
		score string
	}{
		{vuln.SeverityCritical, nil, "error", "9.5"},
		{vuln.SeverityHigh, []vuln.CVSS{{Score: 7.5}, {Score: 8.1}}, "error", "8.1"},
		{vuln.SeverityMedium, nil, "warning", "5.5"},
		{vuln.SeverityLow, []vuln.CVSS{{Score: 5.5}}, "note", "5.5"},
		{vuln.SeverityNegligible, nil, "note", "0.1"},
		{vuln.SeverityUnknown, nil, "note", ""},
	}
	for _, tc := range tests {
		f := &vuln.Finding{ID: "CVE-2024-1", Severity: tc.sev, CVSS: tc.cvss}
		r := sarifRuleFor(f)
		raiseSecuritySeverity(&r, f)
		if got := sarifLevel(tc.sev); got != tc.level {
			t.Errorf("%v: level %q, want %q", tc.sev, got, tc.level)
		}
		if got := r.Properties.SecuritySeverity; got != tc.score {
			t.Errorf("%v %v: security-severity %q, want %q", tc.sev, tc.cvss, got, tc.score)
		}
	}
}

func TestArtifactURI(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/var/lib/dpkg/status", "var/lib/dpkg/status"},
		{"/app.war!/WEB-INF/lib/a b.jar", "app.war%21/WEB-INF/lib/a%20b.jar"},
		{"/c:/x", "./c:/x"},
		{"", "."},
		{"/", "."},
	}
	for _, tc := range tests {
		if got := artifactURI(tc.path); got != tc.want {
			t.Errorf("artifactURI(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

// TestSBOMRoundTrip checks that reading package sbom's documents back and
// writing them again loses nothing: with no findings, the CycloneDX and SPDX
// reports equal the SBOMs.
func TestSBOMRoundTrip(t *testing.T) {
	s := cleanScan()
	for _, tc := range []struct{ report, sbom string }{
		{FormatCycloneDX, sbom.FormatCycloneDX},
		{FormatSPDX, sbom.FormatSPDX},
	} {
		var want bytes.Buffer
		if err := sbom.Encode(&want, s.Inventory, tc.sbom, sbomOptions(s, testOptions)); err != nil {
			t.Fatal(err)
		}
		if got := write(t, s, tc.report, testOptions); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s report without findings differs from the SBOM:\n%s", tc.report, firstDiff(got, want.Bytes()))
		}
	}
}

// TestCycloneDXVulnerabilities checks the vulnerabilities of the full scan:
// each affects its package's component, suppressions and not affected
// statuses become analyses, fixes become recommendations.
func TestCycloneDXVulnerabilities(t *testing.T) {
	var bom cdx.BOM
	b := write(t, fullScan(), FormatCycloneDX, testOptions)
	if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	purls := map[string]string{}
	for _, c := range *bom.Components {
		purls[c.BOMRef] = c.PackageURL
	}
	if len(*bom.Vulnerabilities) != len(fullScan().Vulnerabilities) {
		t.Fatalf("%d vulnerabilities, want %d", len(*bom.Vulnerabilities), len(fullScan().Vulnerabilities))
	}
	byID := map[string]cdx.Vulnerability{}
	for _, v := range *bom.Vulnerabilities {
		byID[v.ID] = v
		for _, a := range *v.Affects {
			if purls[a.Ref] == "" {
				t.Errorf("%s affects %q, not a package component", v.ID, a.Ref)
			}
		}
	}
	if a := byID["CVE-2024-4068"].Analysis; a == nil || a.State != cdx.IASNotAffected || a.Justification != cdx.IAJCodeNotReachable {
		t.Errorf("suppressed finding: analysis %+v", a)
	}
	if a := byID["CVE-2023-45853"].Analysis; a == nil || a.State != cdx.IASNotAffected {
		t.Errorf("not affected finding: analysis %+v", a)
	}
	if a := byID["GO-2024-2887"].Analysis; a != nil {
		t.Errorf("counted finding has analysis %+v", a)
	}
	if r := byID["CVE-2024-0727"].Recommendation; r != "Upgrade libssl3 to 3.0.13-1~deb12u1 or later." {
		t.Errorf("recommendation %q", r)
	}
	ratings := *byID["CVE-2024-0727"].Ratings
	if len(ratings) != 2 || ratings[0].Method != cdx.ScoringMethodCVSSv31 || ratings[1].Method != cdx.ScoringMethodOther || ratings[1].Severity != cdx.SeverityLow {
		t.Errorf("ratings %+v", ratings)
	}
}

// TestSPDXAdvisories checks that counted findings become SECURITY advisory
// references on their packages, and the others do not.
func TestSPDXAdvisories(t *testing.T) {
	doc, err := spdxjson.Read(bytes.NewReader(write(t, fullScan(), FormatSPDX, testOptions)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, p := range doc.Packages {
		for _, r := range p.PackageExternalReferences {
			if r.Category == common.CategorySecurity {
				if r.RefType != common.TypeSecurityAdvisory {
					t.Errorf("reference type %q", r.RefType)
				}
				got[p.PackageName] = append(got[p.PackageName], r.Locator)
			}
		}
	}
	want := map[string][]string{
		"libssl3":          {"https://security-tracker.debian.org/tracker/CVE-2024-0727", "https://nvd.nist.gov/vuln/detail/CVE-2024-2511"},
		"stdlib":           {"https://pkg.go.dev/vuln/GO-2024-2887"},
		"golang.org/x/net": {"https://pkg.go.dev/vuln/GO-2024-2687"},
		"tar":              {"https://nvd.nist.gov/vuln/detail/CVE-2005-2541"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("advisories %v, want %v", got, want)
	}
}

// TestHostile writes a finding whose every field is hostile: HTML and
// scripts, terminal escapes, invalid UTF-8 and a javascript: URL.
func TestHostile(t *testing.T) {
	s := fullScan()
	const evil = "</script><script>alert(1)</script>\x1b]0;pwned\x07\xff<img src=x onerror=alert(1)>"
	s.Vulnerabilities = append(s.Vulnerabilities, vuln.Finding{
		ID: "CVE-2024-9999" + evil, Aliases: []string{evil}, Records: []string{evil},
		Package:       vuln.Package{Name: evil, Version: evil, Type: evil, Path: "/" + evil, PURL: evil},
		Status:        vuln.Status(evil),
		FixedVersions: []string{evil},
		Summary:       evil,
		URL:           "javascript:alert(1)",
		References:    []string{"javascript:alert(2)", "https://example.com/\"><script>"},
		Suppressed:    nil,
	})
	s.Warnings = append(s.Warnings, evil)
	s.Assurance.Policy = evil
	for _, format := range Formats() {
		t.Run(format, func(t *testing.T) {
			b := write(t, s, format, Options{Width: 80})
			checkOutput(t, format, b)
			switch format {
			case FormatTable:
				if bytes.ContainsAny(b, "\x1b\x07\r") {
					t.Errorf("table has terminal control characters")
				}
			case FormatHTML:
				if bytes.Contains(b, []byte("<script")) || bytes.Contains(b, []byte("javascript:")) {
					t.Errorf("HTML has an unescaped script or javascript: link")
				}
			}
		})
	}
}

// TestCycloneDXComponentMatch checks how findings find their component:
// packages with the same purl and path but other names are told apart by
// name, and a package missing from the inventory makes the image affected.
func TestCycloneDXComponentMatch(t *testing.T) {
	s := cleanScan()
	const path = "/usr/lib/python3/site-packages/foo_bar-1.0.dist-info/METADATA"
	a := inventory.Package{Name: "Foo_Bar", Version: "1.0", Type: inventory.TypePyPI, PURL: "pkg:pypi/foo-bar@1.0", Path: path}
	b := a
	b.Name = "foo-bar"
	missing := inventory.Package{Name: "gone", Version: "2", Type: inventory.TypeNPM, PURL: "pkg:npm/gone@2", Path: "/gone/package.json"}
	s.Inventory.Packages = append(s.Inventory.Packages, a, b)
	for _, p := range []inventory.Package{a, b, missing} {
		s.Vulnerabilities = append(s.Vulnerabilities, vuln.Finding{ID: "PYSEC-1-" + p.Name, Package: vuln.PackageOf(&p), Status: vuln.StatusNotFixed})
	}
	out := write(t, s, FormatCycloneDX, testOptions)
	checkCycloneDX(t, out)
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(out), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range *bom.Vulnerabilities {
		got[v.ID] = (*v.Affects)[0].Ref
	}
	want := map[string]string{
		"PYSEC-1-Foo_Bar": "pkg:pypi/foo-bar@1.0#" + path,
		"PYSEC-1-foo-bar": "pkg:pypi/foo-bar@1.0#" + path + "#2",
		"PYSEC-1-gone":    bom.Metadata.Component.BOMRef,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("affects %v, want %v", got, want)
	}
}

// TestFuzzSeed checks that the fuzz seeds rebuild the test scans' findings.
func TestFuzzSeed(t *testing.T) {
	for _, tc := range testScans {
		want := tc.scan()
		got := scanFromFuzz(fuzzSeed(want))
		if len(got.Vulnerabilities) != len(want.Vulnerabilities) {
			t.Errorf("%s: %d findings from the seed, want %d", tc.name, len(got.Vulnerabilities), len(want.Vulnerabilities))
			continue
		}
		for i, f := range got.Vulnerabilities {
			w := want.Vulnerabilities[i]
			if f.ID != w.ID || f.Package.Name != w.Package.Name || f.Package.PURL != w.Package.PURL || f.Summary != w.Summary || (f.Suppressed == nil) != (w.Suppressed == nil) {
				t.Errorf("%s: finding %d from the seed = %+v, want %+v", tc.name, i, f, w)
			}
		}
	}
}
