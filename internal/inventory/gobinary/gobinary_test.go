package gobinary

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/testenv"
)

const testMain = `package main

import (
	"fmt"

	"example.com/local"
	"github.com/gorilla/websocket"
	"golang.org/x/text/language"
)

var version = "dev"

func main() {
	var u websocket.Upgrader
	fmt.Println(language.English, u.ReadBufferSize, local.Name, version, websocket.FormatCloseMessage(1000, "bye"))
}
`

const testGoMod = `module example.com/app

go 1.21

require (
	example.com/local v0.0.0
	github.com/gorilla/websocket v1.4.0
	golang.org/x/text v0.3.0
)

replace github.com/gorilla/websocket v1.4.0 => github.com/gorilla/websocket v1.4.2

replace example.com/local => ./local
`

// binaries holds the Go programs built once for all tests, by name.
var (
	buildOnce sync.Once
	binaries  map[string][]byte
	buildErr  error
)

// build compiles the test program with old module versions from the module
// proxy, in several variants.
func build(t *testing.T) map[string][]byte {
	t.Helper()
	goCmd := testenv.NeedCommand(t, "go")
	buildOnce.Do(func() {
		dir := t.TempDir()
		files := map[string]string{
			"go.mod":         testGoMod,
			"main.go":        testMain,
			"local/go.mod":   "module example.com/local\n\ngo 1.21\n",
			"local/local.go": "package local\n\n// Name is a constant.\nconst Name = \"local\"\n",
		}
		for name, body := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				buildErr = err
				return
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				buildErr = err
				return
			}
		}
		env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0")
		run := func(extraEnv []string, args ...string) error {
			cmd := exec.Command(goCmd, args...)
			cmd.Dir = dir
			cmd.Env = append(slices.Clone(env), extraEnv...)
			if out, err := cmd.CombinedOutput(); err != nil {
				return &buildError{args: args, out: string(out), err: err}
			}
			return nil
		}
		if buildErr = run(nil, "mod", "tidy"); buildErr != nil {
			return
		}
		variants := []struct {
			name string
			env  []string
			args []string
		}{
			{"plain", nil, []string{"-ldflags=-X main.version=1.0"}},
			{"stripped", nil, []string{"-trimpath", "-ldflags=-s -w"}},
			{"pie", nil, []string{"-buildmode=pie"}},
			{"darwin", []string{"GOOS=darwin", "GOARCH=arm64"}, nil},
		}
		binaries = map[string][]byte{}
		for _, v := range variants {
			out := filepath.Join(dir, v.name)
			args := append([]string{"build", "-o", out}, v.args...)
			if buildErr = run(v.env, append(args, ".")...); buildErr != nil {
				return
			}
			b, err := os.ReadFile(out)
			if err != nil {
				buildErr = err
				return
			}
			binaries[v.name] = b
		}
	})
	if buildErr != nil {
		t.Fatalf("building test binaries: %v", buildErr)
	}
	return binaries
}

type buildError struct {
	args []string
	out  string
	err  error
}

func (e *buildError) Error() string {
	return "go " + strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.out
}

func extract(t *testing.T, path string, data []byte) (inventory.Result, error) {
	t.Helper()
	in := inventory.NewInput(inventory.FileInfo{Path: path, Size: int64(len(data)), Mode: 0o755}, bytes.NewReader(data), nil)
	return New().Extract(context.Background(), in)
}

func find(pkgs []inventory.Package, name string) *inventory.Package {
	for i := range pkgs {
		if pkgs[i].Name == name {
			return &pkgs[i]
		}
	}
	return nil
}

func mustFind(t *testing.T, pkgs []inventory.Package, name string) *inventory.Package {
	t.Helper()
	p := find(pkgs, name)
	if p == nil {
		t.Fatalf("package %s missing from %+v", name, pkgs)
	}
	return p
}

func TestExtractGoBinaries(t *testing.T) {
	bins := build(t)
	goVersion := runtime.Version()
	for _, name := range []string{"plain", "stripped", "pie", "darwin"} {
		t.Run(name, func(t *testing.T) {
			res, err := extract(t, "/usr/bin/app", bins[name])
			if err != nil {
				t.Fatal(err)
			}
			want := []struct{ name, version, purl string }{
				{"example.com/app", "(devel)", "pkg:golang/example.com/app@%28devel%29"},
				{"example.com/local", "v0.0.0", "pkg:golang/example.com/local@v0.0.0"},
				{"github.com/gorilla/websocket", "v1.4.2", "pkg:golang/github.com/gorilla/websocket@v1.4.2"},
				{"golang.org/x/text", "v0.3.0", "pkg:golang/golang.org/x/text@v0.3.0"},
				{"stdlib", StdlibVersion(goVersion), "pkg:golang/stdlib@" + StdlibVersion(goVersion)},
			}
			if len(res.Packages) != len(want) {
				t.Fatalf("got %d packages, want %d: %+v", len(res.Packages), len(want), res.Packages)
			}
			for _, w := range want {
				p := find(res.Packages, w.name)
				if p == nil {
					t.Errorf("package %s missing", w.name)
					continue
				}
				if p.Version != w.version || p.PURL != w.purl || p.Type != inventory.TypeGolang {
					t.Errorf("%s: got version %q purl %q type %q, want %q %q", w.name, p.Version, p.PURL, p.Type, w.version, w.purl)
				}
				if p.Metadata["goVersion"] != goVersion {
					t.Errorf("%s: goVersion = %q, want %q", w.name, p.Metadata["goVersion"], goVersion)
				}
			}
			main := mustFind(t, res.Packages, "example.com/app")
			if main.Metadata["mainModule"] != "true" {
				t.Errorf("main module not marked: %v", main.Metadata)
			}
			wantOS, wantArch := "linux", runtime.GOARCH
			if name == "darwin" {
				wantOS, wantArch = "darwin", "arm64"
			}
			if main.Metadata["goos"] != wantOS || main.Metadata["goarch"] != wantArch {
				t.Errorf("goos/goarch = %q/%q, want %q/%q", main.Metadata["goos"], main.Metadata["goarch"], wantOS, wantArch)
			}
			// Go records -ldflags only without -trimpath.
			if got, want := main.Metadata["ldflags"] == "true", name == "plain"; got != want {
				t.Errorf("ldflags recorded = %v, want %v", got, want)
			}
			if ws := mustFind(t, res.Packages, "github.com/gorilla/websocket"); ws.Metadata["replaces"] != "github.com/gorilla/websocket@v1.4.0" {
				t.Errorf("replacement not recorded: %v", ws.Metadata)
			}
			if l := mustFind(t, res.Packages, "example.com/local"); l.Metadata["replaceDir"] != "./local" {
				t.Errorf("directory replacement not recorded: %v", l.Metadata)
			}
		})
	}
}

func TestExtractNotGo(t *testing.T) {
	ls, err := os.ReadFile("/bin/ls")
	if err != nil {
		testenv.Missing(t, "/bin/ls: %v", err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"ls", ls},
		{"shell script", []byte("#!/bin/sh\necho hello\n" + strings.Repeat("#", 2000))},
		{"empty", nil},
		{"elf magic only", []byte("\x7fELF")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := extract(t, "/bin/x", tt.data)
			if tt.name == "elf magic only" {
				if err == nil {
					t.Fatal("want an error for a truncated ELF header")
				}
				return
			}
			if err != nil || len(res.Packages) != 0 {
				t.Fatalf("got %v, %v; want no packages and no error", res.Packages, err)
			}
		})
	}
	// Rejecting a non-Go ELF must stay cheap.
	in := func() *inventory.Input {
		return inventory.NewInput(inventory.FileInfo{Path: "/bin/ls", Size: int64(len(ls)), Mode: 0o755}, bytes.NewReader(ls), nil)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := New().Extract(context.Background(), in()); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 10 {
		t.Errorf("rejecting /bin/ls took %v allocations, want at most 10", allocs)
	}
}

func TestExtractTruncated(t *testing.T) {
	bin := build(t)["plain"]
	for _, n := range []int{64, 4096, len(bin) / 2, len(bin) - 1} {
		if _, err := extract(t, "/usr/bin/app", bin[:n]); err == nil {
			t.Errorf("truncated to %d bytes: want an error", n)
		} else if !strings.Contains(err.Error(), "/usr/bin/app") {
			t.Errorf("error %q does not name the file", err)
		}
	}
}

func TestSymbols(t *testing.T) {
	bins := build(t)
	for _, name := range []string{"plain", "stripped", "pie", "darwin"} {
		t.Run(name, func(t *testing.T) {
			syms, err := Symbols(bytes.NewReader(bins[name]))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"main.main", "golang.org/x/text/language.Tag.String", "github.com/gorilla/websocket.hostPortNoPort"} {
				if _, ok := slices.BinarySearch(syms, want); !ok {
					t.Errorf("symbol %s missing (got %d symbols)", want, len(syms))
				}
			}
			if !slices.IsSorted(syms) {
				t.Error("symbols not sorted")
			}
		})
	}
	if _, err := Symbols(bytes.NewReader([]byte("#!/bin/sh\n"))); err == nil {
		t.Error("want an error for a shell script")
	}
	if _, err := Symbols(bytes.NewReader(bins["plain"][:len(bins["plain"])/3])); err == nil {
		t.Error("want an error for a truncated binary")
	}
}

func TestRequired(t *testing.T) {
	tests := []struct {
		fi   inventory.FileInfo
		want bool
	}{
		{inventory.FileInfo{Path: "/usr/bin/app", Size: 5 << 20, Mode: 0o755}, true},
		{inventory.FileInfo{Path: "/usr/bin/app", Size: 5 << 20, Mode: 0o100}, true},
		{inventory.FileInfo{Path: "/usr/bin/app", Size: 5 << 20, Mode: 0o644}, false},
		{inventory.FileInfo{Path: "/usr/bin/app", Size: 512, Mode: 0o755}, false},
		{inventory.FileInfo{Path: "/usr/bin/app", Size: 2 << 30, Mode: 0o755}, false},
		{inventory.FileInfo{Path: "/usr/bin", Size: 4096, Mode: fs.ModeDir | 0o755}, false},
	}
	for _, tt := range tests {
		if got := New().Required(tt.fi); got != tt.want {
			t.Errorf("Required(%+v) = %v, want %v", tt.fi, got, tt.want)
		}
	}
}

func TestStdlibVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"go1.21.3", "v1.21.3"},
		{"go1.21", "v1.21.0"},
		{"go1.22rc1", "v1.22.0-rc.1"},
		{"go1.20beta2", "v1.20.0-beta.2"},
		{"go1.9.2rc2", "v1.9.2-rc.2"},
		{"go1.21.3 X:boringcrypto", "v1.21.3"},
		{"go1.21.0-bigcorp", "v1.21.0"},
		{"devel go1.23-e8ee1dc4f9 Thu Mar 7 00:00:00 2024 +0000", "(devel)"},
		{"go1", "go1"},
		{"gox.y", "gox.y"},
		{"go1.22rcx", "go1.22rcx"},
		{"weird", "weird"},
	}
	for _, tt := range tests {
		if got := StdlibVersion(tt.in); got != tt.want {
			t.Errorf("StdlibVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPackagesFromBuildInfo(t *testing.T) {
	bi, err := debug.ParseBuildInfo(strings.Join([]string{
		"go\tgo1.22rc1",
		"path\texample.com/cmd/tool",
		"mod\texample.com\t(devel)\t",
		"dep\tgithub.com/a/b\tv1.0.0\th1:abc=",
		"build\tGOOS=linux",
		"build\tvcs.revision=0123456789abcdef0123456789abcdef01234567",
		"build\tvcs.time=2023-01-02T15:04:05Z",
	}, "\n") + "\n")
	if err != nil {
		t.Fatal(err)
	}
	bi.GoVersion = "go1.22rc1"
	pkgs := Packages(bi)
	main := find(pkgs, "example.com")
	if main == nil || main.Version != "(devel)" || main.Metadata["pseudoVersion"] != "v0.0.0-20230102150405-0123456789ab" {
		t.Errorf("main module = %+v", main)
	}
	if std := find(pkgs, "stdlib"); std == nil || std.Version != "v1.22.0-rc.1" || std.PURL != "pkg:golang/stdlib@v1.22.0-rc.1" {
		t.Errorf("stdlib = %+v", std)
	}
	if b := find(pkgs, "github.com/a/b"); b == nil || b.PURL != "pkg:golang/github.com/a/b@v1.0.0" {
		t.Errorf("dependency = %+v", b)
	}
}

func FuzzReadBuildInfo(f *testing.F) {
	f.Add([]byte("\x7fELF"))
	f.Add([]byte("MZ\x90\x00"))
	f.Add([]byte("\xcf\xfa\xed\xfe\x0c\x00\x00\x01"))
	if ls, err := os.ReadFile("/bin/ls"); err == nil {
		f.Add(ls[:min(len(ls), 8192)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		bi, err := readBuildInfo(bytes.NewReader(data), int64(len(data)))
		if err == nil && bi != nil {
			for _, p := range Packages(bi) {
				if p.Type != inventory.TypeGolang || p.Name == "" {
					t.Errorf("bad package %+v", p)
				}
			}
		}
		_, _ = Symbols(bytes.NewReader(data))
	})
}

func FuzzPackages(f *testing.F) {
	f.Add("go1.21.3", "path\tx\nmod\tx\t(devel)\t\ndep\ta\tv1\t\n=>\tb\tv2\th1:x\nbuild\t-ldflags=-s\nbuild\tvcs.time=2023-01-02T15:04:05Z\nbuild\tvcs.revision=0123456789abcdef\n")
	f.Add("devel go1.23-abc", "dep\ta\tv1\t\n=>\t../a\t\t\n")
	f.Fuzz(func(t *testing.T, goVersion, mod string) {
		bi, err := debug.ParseBuildInfo(mod)
		if err != nil {
			return
		}
		bi.GoVersion = goVersion
		for _, p := range Packages(bi) {
			if p.Type != inventory.TypeGolang || p.Name == "" {
				t.Errorf("bad package %+v", p)
			}
		}
	})
}

// withoutSectionHeaders zeroes e_shoff and e_shnum of a 64-bit ELF file, as
// some packers and sstrip do.
func withoutSectionHeaders(b []byte) []byte {
	b = slices.Clone(b)
	clear(b[40:48])
	clear(b[60:62])
	return b
}

func TestExtractWithoutSectionHeaders(t *testing.T) {
	res, err := extract(t, "/usr/bin/app", withoutSectionHeaders(build(t)["plain"]))
	if err != nil {
		t.Fatal(err)
	}
	mustFind(t, res.Packages, "golang.org/x/text")
	ls, err := os.ReadFile("/bin/ls")
	if err != nil {
		testenv.Missing(t, "/bin/ls: %v", err)
	}
	res, err = extract(t, "/bin/ls", withoutSectionHeaders(ls))
	if err != nil || len(res.Packages) != 0 {
		t.Fatalf("got %v, %v; want no packages and no error", res.Packages, err)
	}
}
