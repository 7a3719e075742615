package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/schematest"
	"github.com/mamorisec/mamori/internal/vuln"
)

// fuzzFields splits fuzz input into fields; fields beyond the input are "".
type fuzzFields [][]byte

func (f *fuzzFields) next() string {
	if len(*f) == 0 {
		return ""
	}
	s := string((*f)[0])
	*f = (*f)[1:]
	return s
}

// fuzzStatuses and fuzzKinds are what one-byte fields pick from.
var (
	fuzzStatuses = []vuln.Status{vuln.StatusFixed, vuln.StatusNotFixed, vuln.StatusWontFix, vuln.StatusNotAffected}
	fuzzCVSS     = []string{"2.0", "3.0", "3.1", "4.0", "5"}
)

func (f *fuzzFields) utf8() string { return strings.ToValidUTF8(f.next(), "\uFFFD") }

func (f *fuzzFields) byteOf() int {
	if s := f.next(); s != "" {
		return int(s[0])
	}
	return 0
}

// scanFromFuzz builds a scan from NUL-separated fields: the image name and
// a warning, then findings of 14 fields each (see fuzzSeed), at most 200.
// Every finding's package is also in the inventory, unless its last field
// says otherwise.
func scanFromFuzz(data []byte) *Scan {
	f := fuzzFields(bytes.Split(data, []byte{0}))
	s := &Scan{Inventory: &inventory.Report{}}
	s.Inventory.Image.Name = f.next()
	if w := f.next(); w != "" {
		s.Warnings = []string{w}
	}
	for len(f) > 0 && len(s.Vulnerabilities) < 200 {
		// Package fields are made valid UTF-8: package sbom writes two
		// packages that differ only in invalid bytes as duplicate
		// CycloneDX components, which the schema rejects.
		p := inventory.Package{Type: f.utf8(), Name: f.utf8(), Version: f.utf8(), PURL: f.utf8(), Path: f.utf8()}
		fd := vuln.Finding{
			ID: f.next(), Aliases: []string{f.next()}, Summary: f.next(), URL: f.next(),
			FixedVersions: []string{f.next()},
			Package:       vuln.PackageOf(&p),
		}
		b := f.byteOf()
		fd.Status = fuzzStatuses[b%len(fuzzStatuses)]
		fd.Severity = vuln.Severity(b % 7)
		if b&8 != 0 {
			fd.CVSS = []vuln.CVSS{{Version: fuzzCVSS[b%len(fuzzCVSS)], Score: float64(b%101) / 10, Severity: fd.Severity, Vector: fd.Summary}}
		}
		if b&16 != 0 {
			fd.VendorSeverity = []vuln.VendorSeverity{{Source: fd.URL, Severity: fd.Severity}}
		}
		if b&32 != 0 {
			fd.Reachability = &vuln.Reachability{Status: vuln.ReachableNo, Symbols: []string{fd.Summary}}
		}
		if j := f.next(); j != "" {
			fd.Suppressed = &vuln.Suppression{Kind: "vex", Status: "not_affected", Justification: j, Source: fd.URL}
		}
		if f.next() == "" {
			s.Inventory.Packages = append(s.Inventory.Packages, p)
		}
		s.Vulnerabilities = append(s.Vulnerabilities, fd)
	}
	return s
}

// fuzzSeed turns a scan into scanFromFuzz input.
func fuzzSeed(s *Scan) []byte {
	fields := []string{s.Inventory.Image.Name, strings.Join(s.Warnings, " ")}
	for _, fd := range s.Vulnerabilities {
		p := fd.Package
		alias, fixed, just := "", "", ""
		if len(fd.Aliases) > 0 {
			alias = fd.Aliases[0]
		}
		if len(fd.FixedVersions) > 0 {
			fixed = fd.FixedVersions[0]
		}
		if fd.Suppressed != nil {
			just = fd.Suppressed.Justification
		}
		fields = append(fields, p.Type, p.Name, p.Version, p.PURL, p.Path,
			fd.ID, alias, fd.Summary, fd.URL, fixed, string(rune('A'+int(fd.Severity))), just, "")
	}
	return []byte(strings.Join(fields, "\x00"))
}

// FuzzWrite writes scans built from fuzz input in every format: nothing may
// panic or fail, JSON outputs must parse (and CycloneDX and SPDX validate
// against their schemas), SARIF must pass checkSARIF, the HTML page must
// pass checkHTML and the table must hold no control characters. An
// execution takes tens of milliseconds, so run it with a short
// -fuzzminimizetime (2s): minimizing a large input at the default 60s would
// take up a short -fuzztime.
func FuzzWrite(f *testing.F) {
	for _, tc := range testScans {
		f.Add(fuzzSeed(tc.scan()))
	}
	f.Add([]byte("img\x00warn\x00deb\x00a\x001\x00\x00/x\x00CVE-1</script>\x00\xff\xfe\x00<script>alert(1)</script>\x00javascript:alert(1)\x00\x1b[31m\x00\x2f\x00because\x00"))
	f.Add([]byte("\x00\x00npm\x00@a/b\x00\x00pkg:npm/%40a/b\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00\x00x"))
	// The schemas are loaded before fuzzing starts.
	cdx := schematest.CycloneDX(f)
	spdx := schematest.SPDXIfPresent()
	f.Fuzz(func(t *testing.T, data []byte) {
		s := scanFromFuzz(data)
		for _, format := range Formats() {
			var buf bytes.Buffer
			if err := Write(&buf, format, s, Options{Now: testClock, Width: 80}); err != nil {
				t.Fatalf("Write(%s): %v", format, err)
			}
			b := buf.Bytes()
			switch format {
			case FormatTable:
				if !utf8.Valid(b) {
					t.Fatalf("table is not UTF-8")
				}
				if i := bytes.IndexFunc(b, func(r rune) bool { return r != '\n' && isControl(r) }); i >= 0 {
					t.Fatalf("table has control character %q", b[i])
				}
			case FormatJSON, FormatSARIF, FormatCycloneDX, FormatSPDX:
				if !json.Valid(b) {
					t.Fatalf("%s output is not JSON", format)
				}
			case FormatHTML:
				if err := checkHTML(b); err != nil {
					t.Fatalf("HTML: %v", err)
				}
			}
			switch format {
			case FormatJSON:
				var back Scan
				if err := json.Unmarshal(b, &back); err != nil {
					t.Fatalf("JSON does not decode into a Scan: %v", err)
				}
				if len(back.Vulnerabilities) != len(s.Vulnerabilities) {
					t.Fatalf("JSON has %d findings, want %d", len(back.Vulnerabilities), len(s.Vulnerabilities))
				}
			case FormatSARIF:
				if err := checkSARIF(b); err != nil {
					t.Fatalf("SARIF: %v", err)
				}
			case FormatCycloneDX:
				if err := schematest.Validate(cdx, b); err != nil {
					t.Fatalf("CycloneDX does not validate: %v", err)
				}
			case FormatSPDX:
				if spdx != nil {
					if err := schematest.Validate(spdx, b); err != nil {
						t.Fatalf("SPDX does not validate: %v", err)
					}
				}
			}
		}
	})
}
