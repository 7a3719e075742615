package rpm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/testenv"
)

// extractFile runs the extractor on the file name as if it were the image
// file at path.
func extractFile(t testing.TB, path, name string) ([]inventory.Package, error) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fi := inventory.FileInfo{Path: path, Size: st.Size(), Mode: 0o644}
	if !New().Required(fi) {
		t.Fatalf("Required(%s) = false", path)
	}
	res, err := New().Extract(context.Background(), inventory.NewInput(fi, f, nil))
	return res.Packages, err
}

// summary is one package as "name epoch version arch sourcename sourceversion license".
func summary(p inventory.Package) string {
	epoch := "(none)"
	if p.Epoch != nil {
		epoch = fmt.Sprint(*p.Epoch)
	}
	return strings.Join([]string{p.Name, epoch, p.Version, p.Arch, p.SourceName, p.SourceVersion, strings.Join(p.Licenses, ",")}, " ")
}

func summaries(pkgs []inventory.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, summary(p))
	}
	slices.Sort(out)
	return out
}

// rpmQuery lists the packages of the database in dir with Debian's rpm, in
// the format of summary.
func rpmQuery(t *testing.T, dir string) []string {
	t.Helper()
	rpm := testenv.NeedCommand(t, "rpm")
	out, err := exec.Command(rpm, "--dbpath", dir, "-qa", "--qf",
		`%{NAME}\t%{EPOCH}\t%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\t%{LICENSE}\n`).Output()
	if err != nil {
		t.Fatalf("rpm -qa --dbpath %s: %v", dir, err)
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			t.Fatalf("unexpected rpm output %q", line)
		}
		if f[0] == "gpg-pubkey" {
			continue
		}
		src, srcVersion := ParseSourceRPM(f[4])
		if src == "" {
			src, srcVersion = f[0], f[2]
		}
		lic := f[5]
		if lic == "(none)" {
			lic = ""
		}
		want = append(want, strings.Join([]string{f[0], f[1], f[2], f[3], src, srcVersion, lic}, " "))
	}
	slices.Sort(want)
	return want
}

const spec = `Name: mamori-hello
Version: 1.2.3
Release: 4.mm1
Epoch: 2
Summary: mamori test package
License: MIT and ASL 2.0
BuildArch: noarch

%description
A package built by mamori's tests.

%package data
Summary: data for mamori-hello
License: CC0
%description data
Data.

%install
mkdir -p %{buildroot}/usr/share/mamori-hello %{buildroot}/usr/bin
echo hello > %{buildroot}/usr/share/mamori-hello/hello.txt
echo data > %{buildroot}/usr/share/mamori-hello/data.txt
printf '#!/bin/sh\necho hi\n' > %{buildroot}/usr/bin/mamori-hello

%files
/usr/bin/mamori-hello
/usr/share/mamori-hello/hello.txt

%files data
/usr/share/mamori-hello/data.txt
`

// buildDB builds real packages with rpmbuild and installs them into a new
// SQLite rpm database, returning its directory.
func buildDB(t *testing.T) string {
	t.Helper()
	rpmbuild := testenv.NeedCommand(t, "rpmbuild")
	rpm := testenv.NeedCommand(t, "rpm")
	top := t.TempDir()
	specFile := filepath.Join(top, "hello.spec")
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "HOME="+top)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run(rpmbuild, "-bb", "--define", "_topdir "+top, "--define", "_build_id_links none", specFile)
	rpms, _ := filepath.Glob(filepath.Join(top, "RPMS", "noarch", "*.rpm"))
	if len(rpms) != 2 {
		t.Fatalf("rpmbuild made %v, want 2 packages", rpms)
	}
	db := filepath.Join(top, "db")
	def := []string{"--define", "_db_backend sqlite", "--dbpath", db}
	run(rpm, append(def, "--initdb")...)
	run(rpm, append(append(def, "-i", "--nodeps", "--justdb", "--noscripts"), rpms...)...)
	return db
}

func TestBuiltSQLite(t *testing.T) {
	db := buildDB(t)
	pkgs, err := extractFile(t, "/var/lib/rpm/rpmdb.sqlite", filepath.Join(db, "rpmdb.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	two := 2
	src := "mamori-hello"
	want := []inventory.Package{
		{Name: "mamori-hello", Version: "1.2.3-4.mm1", Type: "rpm", Arch: "noarch", Epoch: &two, Licenses: []string{"MIT and ASL 2.0"},
			SourceName: src, SourceVersion: "1.2.3-4.mm1", Files: []string{"/usr/bin/mamori-hello", "/usr/share/mamori-hello/hello.txt"}},
		{Name: "mamori-hello-data", Version: "1.2.3-4.mm1", Type: "rpm", Arch: "noarch", Epoch: &two, Licenses: []string{"CC0"},
			SourceName: src, SourceVersion: "1.2.3-4.mm1", Files: []string{"/usr/share/mamori-hello/data.txt"}},
	}
	slices.SortFunc(pkgs, func(a, b inventory.Package) int { return strings.Compare(a.Name, b.Name) })
	if !reflect.DeepEqual(pkgs, want) {
		t.Errorf("got  %+v\nwant %+v", pkgs, want)
	}
	if got, w := summaries(pkgs), rpmQuery(t, db); !slices.Equal(got, w) {
		t.Errorf("differs from rpm -qa:\ngot  %q\nwant %q", got, w)
	}
}

// moduleTestdata returns go-rpmdb's sample databases directory.
func moduleTestdata(t testing.TB) string {
	t.Helper()
	goCmd := testenv.NeedCommand(t, "go")
	out, err := exec.Command(goCmd, "list", "-m", "-f", "{{.Dir}}", "github.com/knqyf263/go-rpmdb").Output()
	dir := filepath.Join(strings.TrimSpace(string(out)), "pkg", "testdata")
	if _, serr := os.Stat(dir); err != nil || serr != nil {
		testenv.Missing(t, "go-rpmdb module source with its sample databases (go mod download github.com/knqyf263/go-rpmdb): %v %v", err, serr)
	}
	return dir
}

// TestSampleDatabases reads go-rpmdb's sample databases in place and
// compares them with what Debian's rpm reads from a copy (rpm may create lock
// files next to a database; it reads Berkeley DB with its bdb_ro backend).
func TestSampleDatabases(t *testing.T) {
	dir := moduleTestdata(t)
	tests := []struct {
		sample, file, path string
	}{
		{"centos5-plain", "Packages", "/var/lib/rpm/Packages"},
		{"centos7-plain", "Packages", "/var/lib/rpm/Packages"},
		{"ubi8-s390x", "Packages", "/var/lib/rpm/Packages"}, // big-endian
		{"fedora35", "rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite"},
		{"cbl-mariner-2.0", "rpmdb.sqlite", "/var/lib/rpm/rpmdb.sqlite"},
	}
	for _, tt := range tests {
		t.Run(tt.sample, func(t *testing.T) {
			name := filepath.Join(dir, tt.sample, tt.file)
			pkgs, err := extractFile(t, tt.path, name)
			if err != nil {
				t.Fatal(err)
			}
			if len(pkgs) < 10 {
				t.Fatalf("only %d packages", len(pkgs))
			}
			copyDir := t.TempDir()
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(copyDir, tt.file), b, 0o644); err != nil {
				t.Fatal(err)
			}
			if got, want := summaries(pkgs), rpmQuery(t, copyDir); !slices.Equal(got, want) {
				t.Errorf("differs from rpm -qa:\ngot  %d %q\nwant %d %q", len(got), got, len(want), want)
			}
		})
	}
}

// TestSampleNDB reads SUSE's NDB sample; Debian's rpm has no NDB backend to
// compare with, so a few packages are checked.
func TestSampleNDB(t *testing.T) {
	pkgs, err := extractFile(t, "/usr/lib/sysimage/rpm/Packages.db", filepath.Join(moduleTestdata(t), "sle15-bci", "Packages.db"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"bash":       "bash (none) 4.4-19.6.1 x86_64 bash 4.4-19.6.1 GPL-3.0-or-later",
		"glibc":      "glibc (none) 2.31-9.3.2 x86_64 glibc 2.31-9.3.2 LGPL-2.1-or-later AND LGPL-2.1-or-later WITH GCC-exception-2.0 AND GPL-2.0-or-later",
		"filesystem": "filesystem (none) 15.0-11.3.2 x86_64 filesystem 15.0-11.3.2 MIT",
	}
	if len(pkgs) != 35 {
		t.Errorf("got %d packages, want 35", len(pkgs))
	}
	for _, p := range pkgs {
		if w, ok := want[p.Name]; ok {
			if got := summary(p); got != w {
				t.Errorf("got  %s\nwant %s", got, w)
			}
			if p.Name == "bash" && !slices.Contains(p.Files, "/usr/bin/bash") {
				t.Errorf("bash files lack /usr/bin/bash: %v", p.Files)
			}
			delete(want, p.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing packages %v", want)
	}
}

func TestCorrupt(t *testing.T) {
	dir := moduleTestdata(t)
	bdb, err := os.ReadFile(filepath.Join(dir, "centos7-plain", "Packages"))
	if err != nil {
		t.Fatal(err)
	}
	ndb, err := os.ReadFile(filepath.Join(dir, "sle15-bci", "Packages.db"))
	if err != nil {
		t.Fatal(err)
	}
	sqlite, err := os.ReadFile(filepath.Join(dir, "fedora35", "rpmdb.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	set := func(b []byte, off int, v uint32) []byte {
		c := bytes.Clone(b)
		binary.LittleEndian.PutUint32(c[off:], v)
		return c
	}
	tests := []struct {
		name, file string
		content    []byte
		wantErr    string
	}{
		{"empty", "Packages", nil, "not an rpm database"},
		{"text", "rpmdb.sqlite", []byte("hello world"), "not an rpm database"},
		{"bdb truncated", "Packages", bdb[:len(bdb)/2], "file has"},
		{"bdb metadata only", "Packages", bdb[:512], "file has"},
		{"bdb page size", "Packages", set(bdb, 20, 1000), "page size"},
		{"bdb zeroed data", "Packages", append(bytes.Clone(bdb[:4096]), make([]byte, len(bdb)-4096)...), ""},
		{"ndb truncated", "Packages.db", ndb[:len(ndb)/3], "corrupt rpm database"},
		{"ndb slot pages", "Packages.db", set(ndb, 12, 4000), "unsupported NDB header"},
		{"ndb bad slot", "Packages.db", set(ndb, 32, 0x12345678), "bad magic number"},
		{"sqlite truncated", "rpmdb.sqlite", sqlite[:len(sqlite)/4], "corrupt rpm database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(name, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			path := "/var/lib/rpm/" + tt.file
			pkgs, err := extractFile(t, path, name)
			if tt.wantErr == "" {
				// Zeroed pages hold no hash entries: an empty database.
				if err != nil || len(pkgs) != 0 {
					t.Errorf("got %d packages, %v", len(pkgs), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("error = %v, want %s: ...%s", err, path, tt.wantErr)
			}
		})
	}
}

// firstChain finds the first overflow chain of a little-endian Berkeley DB
// file and returns the page size and the chain's first page.
func firstChain(t *testing.T, b []byte) (pageSize, first int) {
	t.Helper()
	pageSize = int(binary.LittleEndian.Uint32(b[20:]))
	for pn := 1; (pn+1)*pageSize <= len(b); pn++ {
		page := b[pn*pageSize : (pn+1)*pageSize]
		if page[25] != bdbHash && page[25] != bdbHashUnsorted {
			continue
		}
		for k := 1; k < int(binary.LittleEndian.Uint16(page[20:])); k += 2 {
			idx := int(binary.LittleEndian.Uint16(page[bdbPageHeader+2*k:]))
			if page[idx] == bdbHashOffPage {
				return pageSize, int(binary.LittleEndian.Uint32(page[idx+4:]))
			}
		}
	}
	t.Fatal("no overflow chain found")
	return 0, 0
}

// TestCraftedBDB checks corruptions that would make go-rpmdb loop forever,
// panic in its reader goroutine or allocate gigabytes.
func TestCraftedBDB(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(moduleTestdata(t), "libuuid", "Packages"))
	if err != nil {
		t.Fatal(err)
	}
	pageSize, first := firstChain(t, b)
	at := first * pageSize
	tests := []struct {
		name    string
		edit    func(c []byte)
		wantErr string
	}{
		{"chain page of wrong type", func(c []byte) { c[at+25] = 5 }, "has page type 5"},
		{"chain loop", func(c []byte) { binary.LittleEndian.PutUint32(c[at+16:], uint32(first)) }, "used twice"},
		{"chain past the end", func(c []byte) { binary.LittleEndian.PutUint32(c[at+16:], 1<<20) }, "past the last page"},
		{"huge index count", func(c []byte) { binary.BigEndian.PutUint32(c[at+bdbPageHeader:], 0x7fffffff) }, "index entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := bytes.Clone(b)
			tt.edit(c)
			name := filepath.Join(t.TempDir(), "Packages")
			if err := os.WriteFile(name, c, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := ReadFile(name)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	dir := t.TempDir()
	err := copyLimited(filepath.Join(dir, "Packages"), bytes.NewReader(make([]byte, 100)), 99)
	var tl *inventory.TooLargeError
	if !errors.As(err, &tl) {
		t.Errorf("error = %v, want TooLargeError", err)
	}
}

func TestTempDirRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if _, err := extractFile(t, "/var/lib/rpm/Packages", filepath.Join(moduleTestdata(t), "centos5-plain", "Packages")); err != nil {
		t.Fatal(err)
	}
	fi := inventory.FileInfo{Path: "/var/lib/rpm/Packages", Size: 5}
	if _, err := New().Extract(context.Background(), inventory.NewInput(fi, strings.NewReader("junk!"), nil)); err == nil {
		t.Error("junk database accepted")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestParseSourceRPM(t *testing.T) {
	tests := []struct{ in, name, version string }{
		{"bash-5.1.8-6.el9.src.rpm", "bash", "5.1.8-6.el9"},
		{"python3.11-3.11.7-1.el9.src.rpm", "python3.11", "3.11.7-1.el9"},
		{"java-17-openjdk-17.0.9.0.9-2.el9.src.rpm", "java-17-openjdk", "17.0.9.0.9-2.el9"},
		{"foo-1-2.nosrc.rpm", "foo", "1-2"},
		{"", "", ""},
		{"(none)", "", ""},
		{"bash-5.1.8.src.rpm", "", ""},
		{"-1-2.src.rpm", "", ""},
		{"bash-5.1-6.el9", "", ""},
	}
	for _, tt := range tests {
		if n, v := ParseSourceRPM(tt.in); n != tt.name || v != tt.version {
			t.Errorf("ParseSourceRPM(%q) = %q, %q; want %q, %q", tt.in, n, v, tt.name, tt.version)
		}
	}
}

func TestRequired(t *testing.T) {
	for p, want := range map[string]bool{
		"/var/lib/rpm/Packages":              true,
		"/var/lib/rpm/Packages.db":           true,
		"/var/lib/rpm/rpmdb.sqlite":          true,
		"/usr/lib/sysimage/rpm/rpmdb.sqlite": true,
		"/usr/lib/sysimage/rpm/Packages":     true,
		"/var/lib/rpm/Name":                  false,
		"/var/lib/rpm/rpmdb.sqlite-shm":      false,
		"/opt/var/lib/rpm/Packages":          false,
		"/var/lib/rpm/sub/Packages":          false,
	} {
		if got := New().Required(inventory.FileInfo{Path: p}); got != want {
			t.Errorf("Required(%s) = %v, want %v", p, got, want)
		}
	}
}

func FuzzParseSourceRPM(f *testing.F) {
	f.Add("bash-5.1.8-6.el9.src.rpm")
	f.Add("foo-1-2.nosrc.rpm")
	f.Fuzz(func(t *testing.T, s string) {
		name, version := ParseSourceRPM(s)
		if (name == "") != (version == "") {
			t.Fatalf("ParseSourceRPM(%q) = %q, %q", s, name, version)
		}
		if name != "" && !strings.HasPrefix(s, name+"-"+version+".") {
			t.Fatalf("ParseSourceRPM(%q) = %q, %q: not a prefix", s, name, version)
		}
	})
}

// FuzzReadFile mutates small databases: the reader must return packages or
// an error, never panic, hang or exhaust memory.
func FuzzReadFile(f *testing.F) {
	dir := moduleTestdata(f)
	for _, name := range []string{"libuuid/Packages", "sle15-bci/Packages.db"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("SQLite format 3\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		name := filepath.Join(t.TempDir(), "Packages")
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _ = ReadFile(name)
	})
}
