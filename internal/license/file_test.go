package license

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/testenv"
)

// commonLicenses are Debian's license texts (package base-files) and the
// license licensecheck should find in each. GFDL-1.2 is missing: licensecheck
// does not recognize Debian's copy (see docs/decisions/0007).
var commonLicenses = map[string]string{
	"Apache-2.0": "Apache-2.0",
	"Artistic":   "Artistic-1.0-Perl",
	"BSD":        "BSD-3-Clause",
	"CC0-1.0":    "CC0-1.0",
	"GFDL-1.3":   "GFDL-1.3",
	"GPL-1":      "GPL-1.0",
	"GPL-2":      "GPL-2.0",
	"GPL-3":      "GPL-3.0",
	"LGPL-2":     "LGPL-2.0",
	"LGPL-2.1":   "LGPL-2.1",
	"LGPL-3":     "LGPL-3.0",
	"MPL-1.1":    "MPL-1.1",
	"MPL-2.0":    "MPL-2.0",
}

func TestClassifyCommonLicenses(t *testing.T) {
	const dir = "/usr/share/common-licenses"
	if _, err := os.Stat(dir); err != nil {
		testenv.Missing(t, "%s (Debian package base-files)", dir)
	}
	for file, want := range commonLicenses {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		fs := Classify(b)
		if len(fs) == 0 {
			t.Errorf("%s: no license found, want %s", file, want)
			continue
		}
		if got := fs[0].RuleID; !strings.HasPrefix(got, want) {
			t.Errorf("%s: found %s, want %s", file, got, want)
		}
	}
}

func TestClassifyNPM(t *testing.T) {
	for file, want := range map[string]string{
		"ms-2.1.3-license.md":     "MIT",
		"once-1.4.0-LICENSE":      "ISC",
		"qs-6.17.1-LICENSE.md":    "BSD-3-Clause",
		"rxjs-7.8.2-LICENSE.txt":  "Apache-2.0",
		"tslib-2.9.1-LICENSE.txt": "0BSD",
	} {
		b, err := os.ReadFile(filepath.Join("testdata/npm", file))
		if err != nil {
			t.Fatal(err)
		}
		fs := Classify(b)
		if len(fs) != 1 {
			t.Fatalf("%s: %d findings %+v, want one", file, len(fs), fs)
		}
		f := fs[0]
		if f.RuleID != want || f.Kind != inventory.KindLicense || f.Engine != Engine ||
			f.Category != string(Permissive) || f.Severity != "UNKNOWN" || f.StartLine < 1 || f.EndLine < f.StartLine {
			t.Errorf("%s: %+v, want a permissive %s finding", file, f, want)
		}
		if f.Metadata["coverage"] == "" {
			t.Errorf("%s: no coverage", file)
		}
	}
}

func TestClassifyNothing(t *testing.T) {
	for _, text := range []string{"", "hello world\n", strings.Repeat("\x00\xff", 1000)} {
		if fs := Classify([]byte(text)); len(fs) != 0 {
			t.Errorf("Classify(%.20q) = %+v, want nothing", text, fs)
		}
	}
}

func TestFileExtractor(t *testing.T) {
	b, err := os.ReadFile("testdata/npm/ms-2.1.3-license.md")
	if err != nil {
		t.Fatal(err)
	}
	e := NewFileExtractor()
	fi := inventory.FileInfo{Path: "/app/node_modules/ms/license.md", Size: int64(len(b)), Mode: 0o644}
	if !e.Required(fi) {
		t.Fatalf("Required(%s) = false", fi.Path)
	}
	res, err := e.Extract(context.Background(), inventory.NewInput(fi, bytes.NewReader(b), nil))
	if err != nil || len(res.Findings) != 1 || res.Findings[0].RuleID != "MIT" {
		t.Fatalf("Extract = %+v, %v; want one MIT finding", res, err)
	}
	big := inventory.FileInfo{Path: "/LICENSE", Size: MaxFileSize + 1}
	if e.Required(big) {
		t.Errorf("Required(%d bytes) = true", big.Size)
	}
	_, err = e.Extract(context.Background(), inventory.NewInput(big, bytes.NewReader(make([]byte, MaxFileSize+1)), nil))
	if err == nil || !strings.Contains(err.Error(), "/LICENSE") {
		t.Errorf("Extract(oversize) error = %v, want one naming the file", err)
	}
}

func TestRequired(t *testing.T) {
	e := NewFileExtractor()
	for p, want := range map[string]bool{
		"/LICENSE":                              true,
		"/app/LICENSE.md":                       true,
		"/app/COPYING":                          true,
		"/app/README.md":                        false,
		"/app/NOTICE":                           false,
		"/srv/app/node_modules/express/LICENSE": true,
		"/srv/app/node_modules/@babel/core/LICENSE":                                          true,
		"/srv/app/node_modules/@babel/LICENSE":                                               false,
		"/srv/app/node_modules/express/lib/LICENSE":                                          false,
		"/srv/app/node_modules/a/node_modules/b/license":                                     true,
		"/usr/lib/python3/dist-packages/six-1.16.0.dist-info/LICENSE":                        true,
		"/usr/local/lib/python3.11/site-packages/x-1.0.dist-info/licenses/LICENSE.txt":       true,
		"/usr/local/lib/python3.11/site-packages/x-1.0.dist-info/licenses/sub/COPYING":       true,
		"/usr/local/lib/python3.11/site-packages/x/LICENSE":                                  false,
		"/usr/local/bundle/gems/rails-7.1.0/MIT-LICENSE":                                     true,
		"/var/www/vendor/symfony/console/LICENSE":                                            true,
		"/src/vendor/github.com/pkg/errors/LICENSE":                                          true,
		"/root/go/pkg/mod/github.com/gin-gonic/gin@v1.9.1/LICENSE":                           true,
		"/root/go/pkg/mod/github.com/gin-gonic/gin@v1.9.1/internal/LICENSE":                  false,
		"/root/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde-1.0.0/LICENSE-MIT": true,
		"/usr/share/doc/bash/copyright":                                                      false,
		"/usr/share/doc/bash/LICENSE":                                                        false,
		"/usr/share/common-licenses/GPL-2":                                                   false,
		"/usr/lib/x86_64-linux-gnu/perl/LICENSE":                                             false,
	} {
		if got := e.Required(inventory.FileInfo{Path: p, Size: 1000}); got != want {
			t.Errorf("Required(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestIsLicenseFileName(t *testing.T) {
	for name, want := range map[string]bool{
		"LICENSE": true, "LICENCE": true, "license.md": true, "LICENSE.txt": true,
		"LICENSE-MIT": true, "LICENSE-APACHE": true, "LICENSE_APACHE2": true,
		"COPYING": true, "COPYING.LESSER": true, "COPYING.LIB": true, "UNLICENSE": true,
		"MIT-LICENSE": true, "APACHE_LICENSE.txt": true, "Unlicense.txt": true,
		"NOTICE": false, "README": false, "licenses": false, "licensed.go": false,
		"-license": false, "copyright": false, "LICENSE.go": false, "license.js": false,
	} {
		if got := IsLicenseFileName(name); got != want {
			t.Errorf("IsLicenseFileName(%q) = %v, want %v", name, got, want)
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	text, err := os.ReadFile("testdata/npm/rxjs-7.8.2-LICENSE.txt")
	if err != nil {
		b.Fatal(err)
	}
	Classify(text)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Classify(text)
	}
}

func FuzzClassify(f *testing.F) {
	files, _ := filepath.Glob("testdata/npm/*")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Permission is hereby granted, free of charge\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		lines := bytes.Count(text, []byte{'\n'}) + 1
		for _, fd := range Classify(text) {
			if _, ok := spdxID(fd.RuleID); !ok {
				t.Errorf("RuleID %q is neither an SPDX identifier nor a LicenseRef", fd.RuleID)
			}
			if fd.StartLine < 1 || fd.EndLine < fd.StartLine || fd.EndLine > lines {
				t.Errorf("lines %d-%d outside 1-%d", fd.StartLine, fd.EndLine, lines)
			}
		}
	})
}

func FuzzRequired(f *testing.F) {
	for _, p := range []string{"/LICENSE", "/a/node_modules/@s/x/LICENSE", "/s/x.dist-info/licenses/a/COPYING",
		"/g/gems/x-1/MIT-LICENSE", "/v/vendor/a/b/LICENSE", "/r/go/pkg/mod/x@v1/LICENSE"} {
		f.Add(p)
	}
	e := NewFileExtractor()
	f.Fuzz(func(t *testing.T, p string) {
		e.Required(inventory.FileInfo{Path: p, Size: 100})
		dir := filepath.Dir(p)
		if d := PackageDir(dir); d != "" && !strings.HasPrefix(dir, d) {
			t.Errorf("PackageDir(%q) = %q, not a prefix", dir, d)
		}
	})
}
