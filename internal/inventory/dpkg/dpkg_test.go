package dpkg

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/inventory/extracttest"
	"github.com/mamorisec/mamori/internal/testenv"
)

// extract runs e on content as if it were the file at path.
func extract(t testing.TB, e inventory.Extractor, path string, content []byte) (inventory.Result, error) {
	t.Helper()
	return extracttest.Run(t, e, path, content)
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nameVersions(pkgs []inventory.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Name+" "+p.Version)
	}
	slices.Sort(out)
	return out
}

// TestHostStatus reads this machine's real dpkg database and compares it
// with dpkg-query.
func TestHostStatus(t *testing.T) {
	dpkgQuery := testenv.NeedCommand(t, "dpkg-query")
	b, err := os.ReadFile(statusFile)
	if err != nil {
		testenv.Missing(t, "a Debian host with %s: %v", statusFile, err)
	}
	out, err := exec.Command(dpkgQuery, "-W", "-f", "${db:Status-Status} ${Package} ${Version} ${Architecture} ${source:Package} ${source:Version}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	var want []string
	wantFull := map[string][3]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 6 || !installed("install ok "+f[0]) {
			continue
		}
		want = append(want, f[1]+" "+f[2])
		wantFull[f[1]] = [3]string{f[3], f[4], f[5]}
	}
	slices.Sort(want)

	res, err := extract(t, New(), statusFile, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := nameVersions(res.Packages); !slices.Equal(got, want) {
		t.Fatalf("packages differ from dpkg-query:\ngot  %d %v\nwant %d %v", len(got), got, len(want), want)
	}
	for _, p := range res.Packages {
		w := wantFull[p.Name]
		if p.Type != inventory.TypeDeb || p.Arch != w[0] || p.SourceName != w[1] || p.SourceVersion != w[2] || p.PURL != "" {
			t.Errorf("%s: got type %s arch %s source %s %s purl %q, want arch %s source %s %s", p.Name, p.Type, p.Arch, p.SourceName, p.SourceVersion, p.PURL, w[0], w[1], w[2])
		}
	}
}

// TestHostFileLists compares the host's info/*.list files with dpkg-query -L.
func TestHostFileLists(t *testing.T) {
	dpkgQuery := testenv.NeedCommand(t, "dpkg-query")
	lists, _ := filepath.Glob(filepath.Join(infoDir, "*.list"))
	if len(lists) == 0 {
		testenv.Missing(t, "a Debian host with %s/*.list", infoDir)
	}
	all := map[string][]string{}
	for _, l := range lists {
		res, err := extract(t, NewFileList(), l, readFile(t, l))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range res.Files {
			all[k] = append(all[k], v...)
		}
	}
	for _, pkg := range []string{"dpkg", "bash", "libc6", "coreutils"} {
		out, err := exec.Command(dpkgQuery, "-L", pkg).Output()
		if err != nil {
			t.Fatalf("dpkg-query -L %s: %v", pkg, err)
		}
		var want []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "/") && l != "/." {
				want = append(want, l)
			}
		}
		got := slices.Clone(all[pkg])
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d files, dpkg-query -L lists %d", pkg, len(got), len(want))
		}
	}
	if !slices.Contains(all["libc6"], "/usr/share/doc/libc6/copyright") {
		t.Errorf("libc6 (libc6:amd64.list) file list lacks its copyright file: %v", all["libc6"])
	}
}

// TestHostCopyright reads every copyright file on this machine.
func TestHostCopyright(t *testing.T) {
	files, _ := filepath.Glob(docDir + "*/copyright")
	if len(files) == 0 {
		testenv.Missing(t, "a Debian host with %s*/copyright", docDir)
	}
	got := map[string][]string{}
	for _, f := range files {
		res, err := extract(t, NewCopyright(), f, readFile(t, f))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range res.Licenses {
			if res.LicenseType != inventory.TypeDeb {
				t.Errorf("%s: LicenseType = %q", f, res.LicenseType)
			}
			if !slices.IsSorted(v) || len(slices.Compact(slices.Clone(v))) != len(v) {
				t.Errorf("%s: licenses not sorted and unique: %v", f, v)
			}
			got[k] = v
		}
	}
	// Packages of every Debian 12 system, with licenses from their
	// copyright files (DEP-5 for dpkg and zlib1g, common-licenses for libc6).
	for pkg, want := range map[string][]string{
		"libc6":  {"GPL-2.0-only", "LGPL-2.1-only"},
		"zlib1g": {"Zlib"},
		"tzdata": {"public-domain"},
	} {
		if !reflect.DeepEqual(got[pkg], want) {
			t.Errorf("%s: licenses %v, want %v", pkg, got[pkg], want)
		}
	}
	if l := got["dpkg"]; !slices.Contains(l, "GPL-2.0-or-later") {
		t.Errorf("dpkg: licenses %v lack GPL-2.0-or-later", l)
	}
}

func TestStatusFixtures(t *testing.T) {
	tests := []struct {
		name, path, file string
		want             []inventory.Package
	}{
		{"mixed states", statusFile, "testdata/status-mixed", []inventory.Package{
			{Name: "tzdata", Version: "2024a-0+deb12u1", Type: "deb", Arch: "all", SourceName: "tzdata", SourceVersion: "2024a-0+deb12u1"},
			{Name: "libssl3", Version: "3.0.14-1~deb12u2", Type: "deb", Arch: "amd64", SourceName: "openssl", SourceVersion: "3.0.14-1~deb12u2"},
			{Name: "libgcc-s1", Version: "12.2.0-14", Type: "deb", Arch: "amd64", SourceName: "gcc-12", SourceVersion: "12.2.0-14"},
		}},
		{"distroless one stanza", statusDir + "/base-files", "testdata/status.d/base-files", []inventory.Package{
			{Name: "base-files", Version: "12.4+deb12u7", Type: "deb", Arch: "amd64", SourceName: "base-files", SourceVersion: "12.4+deb12u7"},
		}},
		{"distroless two stanzas", statusDir + "/libssl3", "testdata/status.d/libssl3", []inventory.Package{
			{Name: "libssl3", Version: "3.0.14-1~deb12u2", Type: "deb", Arch: "amd64", SourceName: "openssl", SourceVersion: "3.0.14-1~deb12u2"},
			{Name: "openssl", Version: "3.0.14-1~deb12u2", Type: "deb", Arch: "amd64", SourceName: "openssl", SourceVersion: "3.0.14-1~deb12u2"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := extract(t, New(), tt.path, readFile(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Packages, tt.want) {
				t.Errorf("got  %+v\nwant %+v", res.Packages, tt.want)
			}
		})
	}
}

func TestParseStanzas(t *testing.T) {
	got, err := ParseStanzas(readFile(t, "testdata/status-mixed"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("got %d stanzas, want 6", len(got))
	}
	wantDesc := "time zone and daylight-saving time data\nThis package contains data required for the implementation of\nstandard local time for many representative locations around the\n.\nglobe."
	if got[0]["Description"] != wantDesc {
		t.Errorf("continuation lines: got %q\nwant %q", got[0]["Description"], wantDesc)
	}
	crlf, err := ParseStanzas([]byte("Package: a\r\nVersion: 1\r\n\r\n\r\nPackage: b\r\nVersion: 2\r\n"))
	if err != nil || len(crlf) != 2 || crlf[1]["Version"] != "2" {
		t.Errorf("CRLF stanzas = %v, %v", crlf, err)
	}
}

func TestStatusErrors(t *testing.T) {
	tests := []struct{ name, path, content, wantErr string }{
		{"continuation first", statusFile, " orphan continuation\n", "line 1: continuation line outside a field"},
		{"no colon", statusFile, "Package: a\nVersion: 1\ngarbage line\n", `line 3: expected "Field: value"`},
		{"binary", statusFile, "\x00\x01\x02\n", "line 1"},
		{"missing version", statusFile, "Package: a\nStatus: install ok installed\n", `stanza 1 (Package "a") has no Package or Version`},
		{"status.d missing package", statusDir + "/x", "Version: 1\n", "has no Package or Version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := extract(t, New(), tt.path, []byte(tt.content))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), tt.path+": ") {
				t.Errorf("error = %v, want %s: ...%s", err, tt.path, tt.wantErr)
			}
		})
	}
}

func TestFileList(t *testing.T) {
	tests := []struct {
		name, path string
		content    []byte
		want       map[string][]string
		wantErr    string
	}{
		{"multiarch list", infoDir + "/libc6:amd64.list", []byte("/.\n/usr\n/usr/lib/x86_64-linux-gnu/libc.so.6\n"),
			map[string][]string{"libc6": {"/usr", "/usr/lib/x86_64-linux-gnu/libc.so.6"}}, ""},
		{"plain list", infoDir + "/bash.list", []byte("/bin/bash\n"), map[string][]string{"bash": {"/bin/bash"}}, ""},
		{"empty list", infoDir + "/empty.list", nil, nil, ""},
		{"distroless md5sums", statusDir + "/libssl3.md5sums", readFile(t, "testdata/status.d/libssl3.md5sums"),
			map[string][]string{"libssl3": {"/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/share/doc/libssl3/copyright"}}, ""},
		{"relative list path", infoDir + "/x.list", []byte("/ok\nrelative\n"), nil, `line 2: "relative" is not an absolute path`},
		{"bad md5sums", statusDir + "/x.md5sums", []byte("nothex  usr/bin/x\n"), nil, `line 1: expected "MD5  path"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := extract(t, NewFileList(), tt.path, tt.content)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), tt.path) {
					t.Errorf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Files, tt.want) {
				t.Errorf("got %v, want %v", res.Files, tt.want)
			}
		})
	}
}

func TestCopyrightFixtures(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"testdata/copyright-dep5", []string{"BSD-3-Clause", "GFDL-NIV-1.3", "GPL-2.0-or-later", "LGPL-2.1-or-later", "MIT", "public-domain"}},
		{"testdata/copyright-plain", []string{"Apache-2.0", "GPL-2.0-only", "LGPL-2.1-only"}},
		// Free text that quotes the license instead of naming it: classified.
		{"testdata/copyright-text", []string{"MIT"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			res, err := extract(t, NewCopyright(), "/usr/share/doc/example/copyright", readFile(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Licenses["example"]; !reflect.DeepEqual(got, tt.want) || res.LicenseType != "deb" {
				t.Errorf("got %v (%s), want %v", got, res.LicenseType, tt.want)
			}
		})
	}
}

func TestNormalizeLicense(t *testing.T) {
	for in, want := range map[string]string{
		"GPL-2+": "GPL-2.0-or-later", "GPL-2": "GPL-2.0-only", "GPL-3.0+": "GPL-3.0-or-later",
		"LGPL-2.1+": "LGPL-2.1-or-later", "LGPL-2": "LGPL-2.0-only", "AGPL-3+": "AGPL-3.0-or-later",
		"GPL-2.0-or-later": "GPL-2.0-or-later", "GFDL-1.2+": "GFDL-1.2-or-later",
		"Apache-2": "Apache-2.0", "BSD-3-clause": "BSD-3-Clause", "bsd-2-clause": "BSD-2-Clause",
		"Expat": "MIT", "public-domain": "public-domain", "GPL": "GPL", "Artistic": "Artistic-1.0",
	} {
		if got := NormalizeLicense(in); got != want {
			t.Errorf("NormalizeLicense(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequired(t *testing.T) {
	tests := []struct {
		e    inventory.Extractor
		path string
		want bool
	}{
		{New(), statusFile, true},
		{New(), "/var/lib/dpkg/status-old", false},
		{New(), statusDir + "/libc6", true},
		{New(), statusDir + "/libc6.md5sums", false},
		{New(), statusDir + "/sub/libc6", false},
		{NewFileList(), infoDir + "/bash.list", true},
		{NewFileList(), infoDir + "/bash.md5sums", false},
		{NewFileList(), infoDir + "/.list", false},
		{NewFileList(), statusDir + "/libc6.md5sums", true},
		{NewCopyright(), "/usr/share/doc/bash/copyright", true},
		{NewCopyright(), "/usr/share/doc/bash/sub/copyright", false},
		{NewCopyright(), "/usr/share/doc/copyright", false},
	}
	for _, tt := range tests {
		if got := tt.e.Required(inventory.FileInfo{Path: tt.path}); got != tt.want {
			t.Errorf("%s.Required(%s) = %v, want %v", tt.e.Name(), tt.path, got, tt.want)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, name := range []string{"testdata/status-mixed", "testdata/status.d/base-files", "testdata/status.d/libssl3"} {
		f.Add(readFile(f, name), name != "testdata/status-mixed")
	}
	f.Add([]byte(" x\nPackage: a\n"), false)
	f.Fuzz(func(t *testing.T, b []byte, noStatus bool) {
		pkgs, err := ParseStatus(b, noStatus)
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.SourceName == "" || p.SourceVersion == "" {
				t.Fatalf("incomplete package %+v", p)
			}
		}
	})
}

func FuzzParseCopyright(f *testing.F) {
	f.Add(readFile(f, "testdata/copyright-dep5"))
	f.Add(readFile(f, "testdata/copyright-plain"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l := ParseCopyright(b)
		if !slices.IsSorted(l) || slices.Contains(l, "") {
			t.Fatalf("licenses not sorted or empty: %q", l)
		}
	})
}

func FuzzParseFileLists(f *testing.F) {
	f.Add([]byte("/.\n/usr/bin/x\n"))
	f.Add(readFile(f, "testdata/status.d/libssl3.md5sums"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if files, err := ParseList(b); err == nil {
			for _, p := range files {
				if !strings.HasPrefix(p, "/") {
					t.Fatalf("relative path %q", p)
				}
			}
		}
		if files, err := ParseMD5Sums(b); err == nil {
			for _, p := range files {
				if !strings.HasPrefix(p, "/") {
					t.Fatalf("relative path %q", p)
				}
			}
		}
	})
}
