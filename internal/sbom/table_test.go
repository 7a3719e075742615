package sbom

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
)

// largeReport has n packages of several types, in reverse order.
func largeReport(n int) *inventory.Report {
	r := fullReport()
	types := []string{inventory.TypeDeb, inventory.TypeNPM, inventory.TypeGolang, inventory.TypePyPI, inventory.TypeMaven}
	r.Packages = make([]inventory.Package, n)
	for i := range r.Packages {
		typ := types[i%len(types)]
		name := fmt.Sprintf("package-%05d", n-i)
		version := fmt.Sprintf("1.%d.%d", i%7, i)
		r.Packages[i] = inventory.Package{
			Name: name, Version: version, Type: typ,
			PURL:     "pkg:" + typ + "/" + name + "@" + version,
			Licenses: []string{[]string{"MIT", "Apache-2.0 OR MIT", "public-domain", "GPL-2.0-or-later"}[i%4]},
			Path:     "/usr/lib/" + typ + "/" + name + "/manifest", Layer: layer1,
			Metadata: map[string]string{"goVersion": "go1.22.5"},
		}
	}
	return r
}

// TestTableLarge checks that a 2,000-package table stays aligned and sorted,
// and that encoding it allocates little per row.
func TestTableLarge(t *testing.T) {
	const n = 2000
	r := largeReport(n)
	out := string(encode(t, r, FormatTable, Options{}))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n+3 {
		t.Fatalf("%d lines, want header, %d rows, blank line and summary", len(lines), n)
	}
	header := lines[0]
	cols := []int{strings.Index(header, "VERSION"), strings.Index(header, "TYPE"), strings.Index(header, "PATH (LAYER)")}
	prev := ""
	for i, l := range lines[1 : n+1] {
		for _, c := range cols {
			if l[c-1] != ' ' || l[c] == ' ' {
				t.Fatalf("row %d is not aligned with the header:\n%s\n%s", i, header, l)
			}
		}
		if l < prev {
			t.Fatalf("row %d is out of order: %q after %q", i, l, prev)
		}
		prev = l
	}
	if want := "2000 packages (deb: 400, golang: 400, maven: 400, npm: 400, pypi: 400); OS: Debian GNU/Linux 12 (bookworm); 1 file could not be read"; lines[n+2] != want {
		t.Errorf("summary %q, want %q", lines[n+2], want)
	}

	allocs := testing.AllocsPerRun(5, func() {
		if err := Encode(io.Discard, r, FormatTable, Options{}); err != nil {
			t.Fatal(err)
		}
	})
	// tabwriter keeps its cells in growing slices; the encoder itself
	// allocates only the sorted index and the dedup set.
	if perRow := allocs / n; perRow > 3 {
		t.Errorf("%.0f allocations for %d rows (%.1f per row), want at most 3 per row", allocs, n, perRow)
	}
}

func TestTableCells(t *testing.T) {
	tests := []struct {
		name    string
		pkg     inventory.Package
		color   bool
		want    []string
		wantNot []string
	}{
		{
			name:    "control characters",
			pkg:     inventory.Package{Name: "evil\x1b[31mred\tname\n", Version: "1\r\u009b2", Type: "npm", Path: "/a\x00b"},
			want:    []string{"evil?[31mred?name?", "1??2", "/a?b (layer 0)"},
			wantNot: []string{"\x1b", "\r", "\u009b"},
		},
		{
			name:    "invalid utf-8",
			pkg:     inventory.Package{Name: "a\xffb", Version: "\xc3", Type: "\xff", Path: "/x"},
			want:    []string{"a\uFFFDb   \uFFFD        \uFFFD     /x (layer 0)", "(\uFFFD: 1)"},
			wantNot: []string{"\xff"},
		},
		{
			name: "utf-8 kept",
			pkg:  inventory.Package{Name: "café-ünïcode", Version: "1.0", Type: "pypi", Path: "/x"},
			want: []string{"café-ünïcode  1.0"},
		},
		{
			name: "no path",
			pkg:  inventory.Package{Name: "x", Version: "1", Type: "deb", Layer: inventory.Layer{Index: 3}},
			want: []string{"deb   (layer 3)"},
		},
		{
			name:  "color",
			pkg:   inventory.Package{Name: "x", Version: "1", Type: "deb"},
			color: true,
			want:  []string{ansiBold + "NAME  VERSION  TYPE  PATH (LAYER)" + ansiReset, ansiReset + "x     1        deb   (layer 0)", ansiBold + "1 package (deb: 1); OS: unknown" + ansiReset},
		},
		{
			name:    "no color",
			pkg:     inventory.Package{Name: "x", Version: "1", Type: "deb"},
			wantNot: []string{"\x1b"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &inventory.Report{Packages: []inventory.Package{tc.pkg}}
			out := string(encode(t, r, FormatTable, Options{Color: tc.color}))
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not contain %q:\n%q", w, out)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("output contains %q:\n%q", w, out)
				}
			}
		})
	}
}

func TestTableSummary(t *testing.T) {
	tests := []struct {
		name string
		r    *inventory.Report
		want string
	}{
		{"empty", &inventory.Report{}, "0 packages; OS: unknown\n"},
		{"os without pretty name", &inventory.Report{OS: &inventory.OS{ID: "alpine", VersionID: "3.20.1"}}, "0 packages; OS: alpine 3.20.1\n"},
		{"os id only", &inventory.Report{OS: &inventory.OS{ID: "wolfi"}}, "0 packages; OS: wolfi\n"},
		{"problems", &inventory.Report{Problems: make([]inventory.Problem, 3)}, "0 packages; OS: unknown; 3 files could not be read\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(encode(t, tc.r, FormatTable, Options{})); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func BenchmarkEncode2000(b *testing.B) {
	r := largeReport(2000)
	for _, format := range Formats() {
		b.Run(format, func(b *testing.B) {
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				if err := Encode(&buf, r, format, testOptions); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(buf.Len()))
		})
	}
}
