package sbom

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/schematest"
)

// fuzzLicenses are the license values a one-byte fuzz license field picks
// from. Longer fields become free-form names ("custom ..."), never a single
// identifier: the CycloneDX schema in cyclonedx-go enumerates an older SPDX
// license list than the one mamori checks identifiers against.
// Index 0 is "" so that no seed needs a NUL, the field separator.
var fuzzLicenses = []string{
	"", "MIT", "GPL-2.0-or-later", "MIT AND BSD-3-Clause", "(MIT AND BSD-3-Clause)", "public-domain",
	"Apache-2.0", "Apache-2.0 OR MIT", "GPL-2.0-only WITH Classpath-exception-2.0",
	"GPL-2.0-only WITH Linux-syscall-note", "LicenseRef-acme", "GPL-2.0+", "(MIT", "mit",
	"DocumentRef-x:LicenseRef-y", "BSD-3-clause", "BSD-3-Clause", "Apache-2.0+", "GPL-1+ or Artistic",
}

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

func (f *fuzzFields) license() string {
	s := f.next()
	if len(s) == 1 {
		return fuzzLicenses[int(s[0])%len(fuzzLicenses)]
	}
	if s == "" {
		return ""
	}
	return "custom " + s
}

// reportFromFuzz builds a report from NUL-separated fields: image name,
// digest and source; OS ID, version and pretty name (no OS when the ID is
// empty); then packages of 13 fields each (see fuzzSeed), at most 300.
func reportFromFuzz(data []byte) *inventory.Report {
	f := fuzzFields(bytes.Split(data, []byte{0}))
	r := &inventory.Report{SchemaVersion: 1}
	r.Image.Name, r.Image.Digest, r.Image.Source = f.next(), f.next(), f.next()
	if id, version, pretty := f.next(), f.next(), f.next(); id != "" {
		r.OS = &inventory.OS{ID: id, VersionID: version, PrettyName: pretty}
	}
	for len(f) > 0 && len(r.Packages) < 300 {
		p := inventory.Package{
			Type: f.next(), Name: f.next(), Version: f.next(), PURL: f.next(), Path: f.next(),
			Licenses:   []string{f.license(), f.license()},
			SourceName: f.next(), OwnedBy: f.next(),
		}
		if k, v := f.next(), f.next(); k != "" {
			p.Metadata = map[string]string{k: v}
		}
		if layer := f.next(); layer != "" {
			p.Layer = inventory.Layer{Index: int(layer[0]), DiffID: layer}
		}
		if epoch := f.next(); epoch != "" {
			e := len(epoch)
			p.Epoch = &e
		}
		r.Packages = append(r.Packages, p)
	}
	return r
}

// fuzzSeed turns a test report into reportFromFuzz input.
func fuzzSeed(r *inventory.Report) []byte {
	fields := []string{r.Image.Name, r.Image.Digest, r.Image.Source}
	if r.OS != nil {
		fields = append(fields, r.OS.ID, r.OS.VersionID, r.OS.PrettyName)
	} else {
		fields = append(fields, "", "", "")
	}
	seedLicense := func(ls []string, i int) string {
		if i >= len(ls) || ls[i] == "" {
			return ""
		}
		for j, l := range fuzzLicenses {
			if l == ls[i] {
				return string(rune(j))
			}
		}
		return ls[i]
	}
	for _, p := range r.Packages {
		var k, v string
		for k, v = range p.Metadata {
			break
		}
		epoch := ""
		if p.Epoch != nil {
			epoch = strings.Repeat("e", *p.Epoch)
		}
		fields = append(fields, p.Type, p.Name, p.Version, p.PURL, p.Path,
			seedLicense(p.Licenses, 0), seedLicense(p.Licenses, 1), p.SourceName, p.OwnedBy, k, v, p.Layer.DiffID, epoch)
	}
	return []byte(strings.Join(fields, "\x00"))
}

// FuzzEncode encodes reports built from fuzz input in every format: nothing
// may panic or fail, JSON outputs must parse, CycloneDX must validate against
// its schema, SPDX must pass checkSPDX (and its schema when fetched), and the
// table must not pass control characters through.
func FuzzEncode(f *testing.F) {
	for _, tc := range testReports {
		f.Add(fuzzSeed(tc.report()))
	}
	f.Add([]byte("\x00\x00\x00\x00\x00\x00npm\x00\x00\x00\x00\x00\x02\x03"))
	cdxSchema := schematest.CycloneDX(f)
	spdxSchema := schematest.SPDXIfPresent()
	f.Fuzz(func(t *testing.T, data []byte) {
		r := reportFromFuzz(data)
		for _, format := range Formats() {
			var buf bytes.Buffer
			if err := Encode(&buf, r, format, testOptions); err != nil {
				t.Fatalf("Encode(%s): %v", format, err)
			}
			out := buf.Bytes()
			switch format {
			case FormatTable:
				for _, c := range out {
					if c < 0x20 && c != '\n' {
						t.Fatalf("table contains control character %#x:\n%q", c, out)
					}
				}
			case FormatJSON:
				if !json.Valid(out) {
					t.Fatalf("native output is not JSON:\n%s", out)
				}
			case FormatCycloneDX:
				if err := schematest.Validate(cdxSchema, out); err != nil {
					t.Fatalf("invalid CycloneDX: %v\n%s", err, out)
				}
			case FormatSPDX:
				if err := checkSPDX(out); err != nil {
					t.Fatalf("invalid SPDX: %v\n%s", err, out)
				}
				if spdxSchema != nil {
					if err := schematest.Validate(spdxSchema, out); err != nil {
						t.Fatalf("invalid SPDX 2.3: %v\n%s", err, out)
					}
				}
			}
		}
	})
}

// TestFuzzSeed checks that the fuzz seeds rebuild the test reports' packages.
func TestFuzzSeed(t *testing.T) {
	for _, tc := range testReports {
		want := tc.report()
		got := reportFromFuzz(fuzzSeed(want))
		if len(got.Packages) != len(want.Packages) {
			t.Errorf("%s: %d packages from the seed, want %d", tc.name, len(got.Packages), len(want.Packages))
			continue
		}
		for i, p := range got.Packages {
			w := want.Packages[i]
			if p.Name != w.Name || p.Version != w.Version || p.PURL != w.PURL || p.Path != w.Path || (len(w.Licenses) > 0 && p.Licenses[0] != w.Licenses[0]) {
				t.Errorf("%s: package %d from the seed = %+v, want %+v", tc.name, i, p, w)
			}
		}
	}
}
