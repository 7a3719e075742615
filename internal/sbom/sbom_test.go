package sbom

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/schematest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenExt is the file extension of each format's golden files.
var goldenExt = map[string]string{
	FormatTable:     "txt",
	FormatJSON:      "json",
	FormatCycloneDX: "cdx.json",
	FormatSPDX:      "spdx.json",
}

func encode(t *testing.T, r *inventory.Report, format string, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, r, format, opts); err != nil {
		t.Fatalf("Encode(%s): %v", format, err)
	}
	return buf.Bytes()
}

// TestGolden encodes every test report in every format, compares the output
// with testdata/<report>.<ext>.golden and validates the SBOMs.
func TestGolden(t *testing.T) {
	for _, tc := range testReports {
		for _, format := range Formats() {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				r := tc.report()
				before := tc.report()
				got := encode(t, r, format, testOptions)
				if !reflect.DeepEqual(r, before) {
					t.Errorf("Encode modified the report")
				}
				golden := filepath.Join("testdata", tc.name+"."+goldenExt[format]+".golden")
				if *update {
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("output differs from %s (run go test -update after checking the change):\n%s", golden, firstDiff(got, want))
				}
				checkOutput(t, format, got)
			})
		}
	}
}

// checkOutput validates one encoder output: JSON formats must parse, SBOMs
// must validate against their official schemas.
func checkOutput(t *testing.T, format string, b []byte) {
	t.Helper()
	switch format {
	case FormatJSON:
		var r inventory.Report
		if err := json.Unmarshal(b, &r); err != nil {
			t.Errorf("native JSON does not decode into a Report: %v", err)
		}
	case FormatCycloneDX:
		if err := schematest.Validate(schematest.CycloneDX(t), b); err != nil {
			t.Errorf("CycloneDX output is not valid CycloneDX 1.6: %v", err)
		}
	case FormatSPDX:
		if err := checkSPDX(b); err != nil {
			t.Errorf("SPDX output: %v", err)
		}
		if err := schematest.Validate(schematest.SPDX(t), b); err != nil {
			t.Errorf("SPDX output is not valid SPDX 2.3: %v", err)
		}
	}
}

// firstDiff shows the first differing line of two outputs.
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
	return "(no line differs)"
}

func TestFormats(t *testing.T) {
	want := []string{"table", "json", "cyclonedx", "spdx"}
	if got := Formats(); !reflect.DeepEqual(got, want) {
		t.Errorf("Formats() = %v, want %v", got, want)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		report *inventory.Report
		format string
		want   []string
	}{
		{"unknown format", fullReport(), "xml", []string{`"xml"`, "table, json, cyclonedx, spdx"}},
		{"empty format", fullReport(), "", []string{`""`, "valid:"}},
		{"nil report", nil, "json", []string{"json", "no report"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Encode(&buf, tc.report, tc.format, testOptions)
			if err == nil {
				t.Fatal("Encode succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestEncodeWriteError(t *testing.T) {
	for _, format := range Formats() {
		err := Encode(errWriter{}, fullReport(), format, testOptions)
		if err == nil || !strings.Contains(err.Error(), format) {
			t.Errorf("%s: error %v, want a write error naming the format", format, err)
		}
	}
}

// TestIdentifiers checks that the CycloneDX serial number and the SPDX
// namespace depend on the image and the clock only.
func TestIdentifiers(t *testing.T) {
	ids := func(r *inventory.Report, opts Options) (serial, namespace string) {
		var cdxDoc struct{ SerialNumber string }
		if err := json.Unmarshal(encode(t, r, FormatCycloneDX, opts), &cdxDoc); err != nil {
			t.Fatal(err)
		}
		var spdxDoc struct{ DocumentNamespace string }
		if err := json.Unmarshal(encode(t, r, FormatSPDX, opts), &spdxDoc); err != nil {
			t.Fatal(err)
		}
		return cdxDoc.SerialNumber, spdxDoc.DocumentNamespace
	}
	s0, n0 := ids(fullReport(), testOptions)
	if !strings.HasPrefix(s0, "urn:uuid:") || s0[9+14] != '5' {
		t.Errorf("serial number %q is not a version 5 UUID URN", s0)
	}
	if !strings.HasPrefix(n0, "https://mamori.dev/spdx/registry.example.com-team-app-1.4-") {
		t.Errorf("namespace %q does not name the image", n0)
	}

	fewer := fullReport()
	fewer.Packages = fewer.Packages[:3]
	if s, n := ids(fewer, testOptions); s != s0 || n != n0 {
		t.Errorf("identifiers changed with the package list: %s %s", s, n)
	}

	later := testOptions
	later.Now = func() time.Time { return testClock().Add(time.Second) }
	otherImage := fullReport()
	otherImage.Image.Digest = digestB
	seeded := testOptions
	seeded.Seed = "build-42"
	for name, c := range map[string]struct {
		r    *inventory.Report
		opts Options
	}{
		"later clock":   {fullReport(), later},
		"other digest":  {otherImage, testOptions},
		"explicit seed": {fullReport(), seeded},
	} {
		if s, n := ids(c.r, c.opts); s == s0 || n == n0 {
			t.Errorf("%s: identifiers did not change: %s %s", name, s, n)
		}
	}
}

func TestUUIDV5(t *testing.T) {
	u := uuidV5("x")
	if len(u) != 36 || u[14] != '5' || !strings.ContainsRune("89ab", rune(u[19])) {
		t.Errorf("uuidV5 = %q, want an RFC 4122 version 5 UUID", u)
	}
	if uuidV5("x") != u || uuidV5("y") == u {
		t.Error("uuidV5 is not a function of its input")
	}
}

func TestImagePURL(t *testing.T) {
	tests := []struct {
		name       string
		im         inventory.ImageInfo
		want       string // purl name; "" when no purl is expected
		qualifiers map[string]string
	}{
		{"no digest", inventory.ImageInfo{Source: "registry", Name: "debian:12", ID: digestB}, "", nil},
		{
			"registry with tag",
			inventory.ImageInfo{Source: "registry", Name: "docker.io/library/debian:12", Digest: digestA},
			"debian", map[string]string{"repository_url": "docker.io/library/debian", "tag": "12"},
		},
		{
			"registry with port and digest",
			inventory.ImageInfo{Source: "registry", Name: "localhost:5000/Team/App@" + digestA, Digest: digestA},
			"app", map[string]string{"repository_url": "localhost:5000/Team/App"},
		},
		{
			"archive with repo tag",
			inventory.ImageInfo{Source: "docker-archive", Name: "/tmp/x.tar", Digest: digestA, RepoTags: []string{"example/app:v1"}},
			"app", map[string]string{"repository_url": "example/app", "tag": "v1"},
		},
		{
			"archive with repo digest",
			inventory.ImageInfo{Source: "docker-archive", Name: "/tmp/x.tar", Digest: digestA, RepoDigests: []string{"example/app@" + digestA}},
			"app", map[string]string{"repository_url": "example/app"},
		},
		{
			"layout without repository",
			inventory.ImageInfo{Source: "oci-layout", Name: "/images/Busybox.layout/", Digest: digestA},
			"busybox", map[string]string{},
		},
		{"nameless", inventory.ImageInfo{Source: "oci-layout", Digest: digestA}, "image", map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := imagePURL(tc.im)
			if tc.want == "" {
				if got != "" {
					t.Errorf("imagePURL = %q, want none", got)
				}
				return
			}
			p, err := packageurl.FromString(got)
			if err != nil {
				t.Fatalf("imagePURL = %q: %v", got, err)
			}
			if p.Type != "oci" || p.Namespace != "" || p.Name != tc.want || p.Version != digestA || !reflect.DeepEqual(p.Qualifiers.Map(), tc.qualifiers) {
				t.Errorf("imagePURL = %q (%+v), want pkg:oci/%s@%s with qualifiers %v", got, p, tc.want, digestA, tc.qualifiers)
			}
		})
	}
}

// TestNativeRoundTrip decodes the native JSON back into the report.
func TestNativeRoundTrip(t *testing.T) {
	for _, tc := range testReports {
		r := tc.report()
		var got inventory.Report
		if err := json.Unmarshal(encode(t, r, FormatJSON, testOptions), &got); err != nil {
			t.Fatal(err)
		}
		want := tc.report()
		slices.SortStableFunc(want.Packages, func(a, b inventory.Package) int { return comparePackages(&a, &b) })
		for i := range want.Packages {
			want.Packages[i].Files = nil // not part of any output
		}
		if want.Layers == nil {
			want.Layers = []inventory.Layer{}
		}
		if want.Packages == nil {
			want.Packages = []inventory.Package{}
		}
		if !reflect.DeepEqual(&got, want) {
			t.Errorf("%s: decoded native JSON differs from the report:\n got %+v\nwant %+v", tc.name, got, *want)
		}
	}
}

// TestNativeDocs checks that docs/native-json.md documents every field of the
// native format, and that its example is JSON of the documented shape.
func TestNativeDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(schematest.ModuleRoot(), "docs", "native-json.md"))
	if err != nil {
		t.Fatal(err)
	}
	var fields func(reflect.Type)
	seen := map[reflect.Type]bool{}
	fields = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if !bytes.Contains(doc, []byte("| `"+name+"` |")) {
				t.Errorf("docs/native-json.md does not document %s.%s (%q)", typ.Name(), f.Name, name)
			}
			fields(f.Type)
		}
	}
	fields(reflect.TypeFor[inventory.Report]())

	_, example, ok := bytes.Cut(doc, []byte("## Example"))
	if ok {
		_, example, ok = bytes.Cut(example, []byte("```json\n"))
	}
	if ok {
		example, _, ok = bytes.Cut(example, []byte("```"))
	}
	if !ok {
		t.Fatal("docs/native-json.md has no JSON example")
	}
	dec := json.NewDecoder(bytes.NewReader(example))
	dec.DisallowUnknownFields()
	var r inventory.Report
	if err := dec.Decode(&r); err != nil {
		t.Errorf("the example in docs/native-json.md is not a native report: %v", err)
	}
}
