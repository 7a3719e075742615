package rust

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/testenv"
)

func run(t *testing.T, ex inventory.Extractor, path string, data []byte) (inventory.Result, error) {
	t.Helper()
	fi := inventory.FileInfo{Path: path, Size: int64(len(data)), Mode: 0o755}
	if !ex.Required(fi) {
		t.Fatalf("%s does not require %s", ex.Name(), path)
	}
	return ex.Extract(context.Background(), inventory.NewInput(fi, bytes.NewReader(data), nil))
}

type want struct {
	name, version, purl string
	meta                map[string]string
}

func check(t *testing.T, got []inventory.Package, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d packages, want %d: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		g := got[i]
		if g.Name != w.name || g.Version != w.version || g.PURL != w.purl || g.Type != inventory.TypeCargo {
			t.Errorf("package %d = %s %s %s %s, want %s %s %s", i, g.Name, g.Version, g.PURL, g.Type, w.name, w.version, w.purl)
		}
		if len(g.Metadata) != len(w.meta) {
			t.Errorf("package %s metadata = %v, want %v", g.Name, g.Metadata, w.meta)
		}
		for k, v := range w.meta {
			if g.Metadata[k] != v {
				t.Errorf("package %s metadata = %v, want %v", g.Name, g.Metadata, w.meta)
			}
		}
	}
}

func TestCargoLock(t *testing.T) {
	tests := []struct {
		file    string
		want    []want
		wantErr string
	}{
		{file: "Cargo.lock", want: []want{
			{"cfg-if", "1.0.0", "pkg:cargo/cfg-if@1.0.0", map[string]string{"source": "registry+https://github.com/rust-lang/crates.io-index"}},
			{"demo-cli", "0.1.0", "pkg:cargo/demo-cli@0.1.0", map[string]string{"workspaceMember": "true"}},
			{"demo-core", "0.1.0", "pkg:cargo/demo-core@0.1.0", map[string]string{"workspaceMember": "true"}},
			{"regex", "1.5.4", "pkg:cargo/regex@1.5.4", map[string]string{"source": "sparse+https://index.crates.io/"}},
			{"smallvec", "0.6.14", "pkg:cargo/smallvec@0.6.14", map[string]string{"source": "git+https://github.com/servo/rust-smallvec?branch=v0.6#1e3bb0ee1ea4e8d4c64ed1ac0c7e3d0ad66e1bd1"}},
		}},
		{file: "invalid.lock", wantErr: "parsing Cargo.lock"},
		{file: "noversion.lock", wantErr: "no name or version"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			res, err := run(t, NewCargoLock(), "/src/app/Cargo.lock", data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "/src/app/Cargo.lock") {
					t.Fatalf("error = %v, want one naming the file and containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			check(t, res.Packages, tt.want)
		})
	}
}

func TestCargoLockRequired(t *testing.T) {
	for path, want := range map[string]bool{
		"/app/Cargo.lock":      true,
		"/app/Cargo.toml":      false,
		"/app/cargo.lock":      false,
		"/app/Cargo.lock.orig": false,
	} {
		if got := NewCargoLock().Required(inventory.FileInfo{Path: path, Size: 100, Mode: 0o644}); got != want {
			t.Errorf("Required(%s) = %v, want %v", path, got, want)
		}
	}
}

const depJSON = `{"packages":[
{"name":"demo","version":"0.1.0","source":"local","dependencies":[1,2],"root":true},
{"name":"smallvec","version":"0.6.13","source":"crates.io"},
{"name":"cc","version":"1.0.79","source":"crates.io","kind":"build"}]}`

func compress(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	rustOnce sync.Once
	rustBin  []byte
	rustErr  error
)

// rustBinary builds a small Rust program with no dependencies (so cargo
// needs no network).
func rustBinary(t *testing.T) []byte {
	t.Helper()
	cargo := testenv.NeedCommand(t, "cargo")
	rustOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mamori-rust-")
		if err != nil {
			rustErr = err
			return
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command(cargo, "init", "--offline", "--vcs", "none", "--name", "demo", dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			rustErr = &cmdError{cmd.Args, out, err}
			return
		}
		cmd = exec.Command(cargo, "build", "--offline", "--release")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			rustErr = &cmdError{cmd.Args, out, err}
			return
		}
		rustBin, rustErr = os.ReadFile(filepath.Join(dir, "target", "release", "demo"))
	})
	if rustErr != nil {
		t.Fatalf("building the Rust test binary: %v", rustErr)
	}
	return rustBin
}

type cmdError struct {
	args []string
	out  []byte
	err  error
}

func (e *cmdError) Error() string {
	return strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + string(e.out)
}

// withSection adds a .dep-v0 section holding data to bin with objcopy, as
// cargo-auditable's linker step does.
func withSection(t *testing.T, bin, data []byte) []byte {
	t.Helper()
	objcopy := testenv.NeedCommand(t, "objcopy")
	dir := t.TempDir()
	in, sec, out := filepath.Join(dir, "in"), filepath.Join(dir, "sec"), filepath.Join(dir, "out")
	if err := os.WriteFile(in, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sec, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(objcopy, "--add-section", ".dep-v0="+sec, "--set-section-flags", ".dep-v0=noload,readonly", in, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAuditable(t *testing.T) {
	bin := rustBinary(t)
	bomb := compress(t, bytes.Repeat([]byte(" "), maxDecompressed+1))
	tests := []struct {
		name    string
		bin     []byte
		want    []want
		wantErr string
	}{
		{name: "no section", bin: bin},
		{name: "auditable", bin: withSection(t, bin, compress(t, []byte(depJSON))), want: []want{
			{"demo", "0.1.0", "pkg:cargo/demo@0.1.0", map[string]string{"source": "local", "root": "true"}},
			{"smallvec", "0.6.13", "pkg:cargo/smallvec@0.6.13", map[string]string{"source": "crates.io"}},
			{"cc", "1.0.79", "pkg:cargo/cc@1.0.79", map[string]string{"source": "crates.io", "kind": "build"}},
		}},
		{name: "not zlib", bin: withSection(t, bin, []byte("garbage, not zlib")), wantErr: "decompressing"},
		{name: "truncated zlib", bin: withSection(t, bin, compress(t, []byte(depJSON))[:20]), wantErr: "decompressing"},
		{name: "bad JSON", bin: withSection(t, bin, compress(t, []byte(`{"packages":[{"name":1}]}`))), wantErr: "parsing dependency JSON"},
		{name: "bad index", bin: withSection(t, bin, compress(t, []byte(`{"packages":[{"name":"a","version":"1","dependencies":[7]}]}`))), wantErr: "refers to package 7"},
		{name: "bomb", bin: withSection(t, bin, bomb), wantErr: "larger than"},
		{name: "truncated binary", bin: bin[:len(bin)/2], wantErr: "truncated ELF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := run(t, NewAuditable(), "/usr/local/bin/demo", tt.bin)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "/usr/local/bin/demo") {
					t.Fatalf("error = %v, want one naming the file and containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			check(t, res.Packages, tt.want)
		})
	}
}

func TestAuditableNotELF(t *testing.T) {
	data := []byte("#!/bin/sh\n" + strings.Repeat("echo hi\n", 200))
	res, err := run(t, NewAuditable(), "/usr/bin/script", data)
	if err != nil || len(res.Packages) != 0 {
		t.Fatalf("got %v, %v; want nothing", res.Packages, err)
	}
	if NewAuditable().Required(inventory.FileInfo{Path: "/x", Size: 4096, Mode: 0o644}) {
		t.Error("non-executable file required")
	}
}

func FuzzCargoLock(f *testing.F) {
	for _, name := range []string{"Cargo.lock", "invalid.lock", "noversion.lock"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParseCargoLock(data)
		for _, p := range pkgs {
			if err != nil || p.Name == "" || p.Version == "" {
				t.Fatalf("bad package %+v (err %v)", p, err)
			}
		}
	})
}

func FuzzDepV0(f *testing.F) {
	f.Add([]byte(depJSON), false)
	f.Add(compress(f, []byte(depJSON)), true)
	f.Add([]byte(`{"packages":[{"name":"a","version":"1","dependencies":[-1]}]}`), false)
	f.Fuzz(func(t *testing.T, data []byte, compressed bool) {
		var pkgs []inventory.Package
		var err error
		if compressed {
			pkgs, err = ParseDepV0(data)
		} else {
			pkgs, err = parseDepJSON(data)
		}
		for _, p := range pkgs {
			if err != nil || p.Name == "" || p.Version == "" {
				t.Fatalf("bad package %+v (err %v)", p, err)
			}
		}
	})
}

// tinyELF hand-writes a 64-bit little-endian ELF file with a null section,
// a section named name holding data, and the section name table.
func tinyELF(name string, data []byte) []byte {
	le := binary.LittleEndian
	names := "\x00" + name + "\x00.shstrtab\x00"
	dataOff := 64
	namesOff := dataOff + len(data)
	shoff := namesOff + len(names)
	b := make([]byte, shoff+3*64)
	copy(b, "\x7fELF\x02\x01\x01")
	le.PutUint16(b[16:], 2)  // ET_EXEC
	le.PutUint16(b[18:], 62) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[40:], uint64(shoff))
	le.PutUint16(b[52:], 64)
	le.PutUint16(b[58:], 64)
	le.PutUint16(b[60:], 3)
	le.PutUint16(b[62:], 2)
	copy(b[dataOff:], data)
	copy(b[namesOff:], names)
	sh := b[shoff+64:]
	le.PutUint32(sh[0:], 1)
	le.PutUint32(sh[4:], 1) // SHT_PROGBITS
	le.PutUint64(sh[24:], uint64(dataOff))
	le.PutUint64(sh[32:], uint64(len(data)))
	sh = b[shoff+128:]
	le.PutUint32(sh[0:], uint32(2+len(name)))
	le.PutUint32(sh[4:], 3) // SHT_STRTAB
	le.PutUint64(sh[24:], uint64(namesOff))
	le.PutUint64(sh[32:], uint64(len(names)))
	return b
}

func TestFindELFSection(t *testing.T) {
	payload := []byte("payload")
	tests := []struct {
		name     string
		data     []byte
		wantSize int64
		wantErr  bool
	}{
		{"found", tinyELF(sectionName, payload), int64(len(payload)), false},
		{"other section", tinyELF(".dep-v1", payload), -1, false},
		{"tail-shared name", tinyELF(".rela"+sectionName, payload), -1, false},
		{"not ELF", []byte("MZ not an ELF file at all, just text padding the header......"), -1, false},
		{"truncated", tinyELF(sectionName, payload)[:100], 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			off, size, err := findELFSection(bytes.NewReader(tt.data), int64(len(tt.data)), sectionName)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if size != tt.wantSize {
				t.Fatalf("size = %d, want %d", size, tt.wantSize)
			}
			if size >= 0 && !bytes.Equal(tt.data[off:off+size], payload) {
				t.Errorf("section data = %q", tt.data[off:off+size])
			}
		})
	}
}

func FuzzFindELFSection(f *testing.F) {
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Add(tinyELF(sectionName, []byte("x")))
	f.Add(tinyELF(".other", nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		off, size, err := findELFSection(bytes.NewReader(data), int64(len(data)), sectionName)
		if err == nil && size >= 0 && (off < 0 || off+size > int64(len(data))) {
			t.Fatalf("section [%d,+%d) outside a %d byte file", off, size, len(data))
		}
	})
}
