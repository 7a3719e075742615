// Package gobinary finds the Go modules compiled into Go executables (ELF,
// Mach-O and PE) from the build information the Go linker embeds.
//
// For every Go binary it reports:
//
//   - the main module, with Metadata "mainModule"="true". Its version is kept
//     verbatim, including "(devel)". When the version is "(devel)" and the
//     binary records the vcs.revision and vcs.time build settings, the
//     pseudo-version Go would have derived from them
//     ("v0.0.0-20230102150405-abcdef123456") is recorded in Metadata
//     "pseudoVersion"; Version itself is not changed, because a pseudo-version
//     sorts below every release and would make matchers report
//     vulnerabilities fixed long ago.
//   - every dependency module. A "=> replacement" module is reported under
//     the replacement's path and version, with the original "path@version" in
//     Metadata "replaces". A replacement by a local directory has no real
//     version (Go records "(devel)"): such a module keeps its original path and version and records the
//     directory in Metadata "replaceDir".
//   - the Go standard library as package "stdlib", with the toolchain version
//     as a semantic version ("go1.21.3" -> "v1.21.3", "go1.22rc1" ->
//     "v1.22.0-rc.1"). Development toolchains ("devel go1.23-abcdef ...") give
//     version "(devel)".
//
// Every package carries Metadata "goVersion" (the toolchain string verbatim),
// "goos" and "goarch", and "ldflags"="true" when the binary records that it
// was linked with -ldflags (Go leaves the setting out of -trimpath builds; the
// flags themselves are not copied: they often hold secrets set with -X).
package gobinary

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/binary"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/package-url/packageurl-go"
)

// Size bounds of the files the extractor looks at.
const (
	minSize = 1 << 10
	maxSize = 1 << 30
)

type extractor struct{}

// New returns the Go binary extractor.
func New() inventory.Extractor { return extractor{} }

// All returns every extractor of this package.
func All() []inventory.Extractor { return []inventory.Extractor{New()} }

func (extractor) Name() string { return "language/golang/binary" }

func (extractor) Version() int { return 3 }

// Required selects regular files with an execute bit and a plausible size.
func (extractor) Required(fi inventory.FileInfo) bool {
	return fi.Mode.IsRegular() && fi.Mode.Perm()&0o111 != 0 &&
		fi.Size >= minSize && fi.Size <= maxSize
}

func (extractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	ra, err := in.ReaderAt()
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	bi, err := readBuildInfo(ra, in.Size)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: reading Go build information: %w", in.Path, err)
	}
	if bi == nil {
		return inventory.Result{}, nil
	}
	pkgs := Packages(bi)
	if syms, err := Symbols(ra); err == nil {
		AssignSymbols(pkgs, syms)
	}
	return inventory.Result{Packages: pkgs}, nil
}

// Executable formats, told apart by their first bytes.
const (
	formatNone = iota
	formatELF
	formatOther // Mach-O, fat Mach-O, PE
)

func format(magic []byte) int {
	switch {
	case bytes.HasPrefix(magic, []byte("\x7fELF")):
		return formatELF
	case bytes.HasPrefix(magic, []byte("MZ")),
		bytes.HasPrefix(magic, []byte("\xfe\xed\xfa")),
		bytes.HasPrefix(magic[1:], []byte("\xfa\xed\xfe")),
		bytes.Equal(magic, []byte("\xca\xfe\xba\xbe")),
		bytes.Equal(magic, []byte("\xca\xfe\xba\xbf")):
		return formatOther
	}
	return formatNone
}

// readBuildInfo returns the build information of a Go binary, nil and no
// error for a file that is not a Go binary, and an error for a Go binary
// whose build information cannot be read.
func readBuildInfo(ra io.ReaderAt, size int64) (*debug.BuildInfo, error) {
	var magic [4]byte
	if _, err := ra.ReadAt(magic[:], 0); err != nil {
		return nil, nil // too short for any executable format
	}
	switch format(magic[:]) {
	case formatNone:
		return nil, nil
	case formatELF:
		switch sect, err := elfGoSection(ra, size); {
		case err != nil:
			return nil, err
		case sect == sectionAbsent:
			return nil, nil
		case sect == sectionPresent:
			// Any failure from here on is corruption.
			return buildinfo.Read(ra)
		}
	}
	bi, err := buildinfo.Read(ra)
	if err != nil && notGo(err) {
		return nil, nil
	}
	return bi, err
}

// notGo reports whether a debug/buildinfo error means "not a Go binary"
// rather than "a damaged Go binary". The package does not export these
// errors, so their (stable) texts are compared.
func notGo(err error) bool {
	s := err.Error()
	return s == "not a Go executable" || s == "unrecognized file format"
}

// What an ELF file's section headers tell about its ".go.buildinfo" section.
const (
	sectionAbsent = iota
	sectionPresent
	sectionUnknown // no usable section headers
)

// elfGoSection reports whether an ELF file has a ".go.buildinfo" section.
// It reads just the ELF header, one section header and the section name
// table, so that the common case of a non-Go binary costs a few small reads.
func elfGoSection(ra io.ReaderAt, size int64) (int, error) {
	var hdr [64]byte
	if _, err := ra.ReadAt(hdr[:52], 0); err != nil {
		return sectionAbsent, fmt.Errorf("truncated ELF header")
	}
	var bo binary.ByteOrder
	switch hdr[5] {
	case 1:
		bo = binary.LittleEndian
	case 2:
		bo = binary.BigEndian
	default:
		return sectionAbsent, fmt.Errorf("invalid ELF data encoding %d", hdr[5])
	}
	var shoff uint64
	var shentsize, shnum, shstrndx uint16
	switch hdr[4] {
	case 1: // 32-bit
		shoff = uint64(bo.Uint32(hdr[32:]))
		shentsize, shnum, shstrndx = bo.Uint16(hdr[46:]), bo.Uint16(hdr[48:]), bo.Uint16(hdr[50:])
	case 2: // 64-bit
		if _, err := ra.ReadAt(hdr[:], 0); err != nil {
			return sectionAbsent, fmt.Errorf("truncated ELF header")
		}
		shoff = bo.Uint64(hdr[40:])
		shentsize, shnum, shstrndx = bo.Uint16(hdr[58:]), bo.Uint16(hdr[60:]), bo.Uint16(hdr[62:])
	default:
		return sectionAbsent, fmt.Errorf("invalid ELF class %d", hdr[4])
	}
	if shoff == 0 || shnum == 0 || shstrndx == 0 || shstrndx >= shnum {
		// No usable section headers (or more than 0xff00 sections, which
		// puts the real count elsewhere): let debug/buildinfo decide.
		return sectionUnknown, nil
	}
	end := shoff + uint64(shnum)*uint64(shentsize)
	if shoff > uint64(size) || end > uint64(size) {
		return sectionAbsent, fmt.Errorf("truncated ELF file: section headers end at byte %d of %d", end, size)
	}
	var sh [64]byte
	var strOff, strSize uint64
	off := int64(shoff) + int64(shstrndx)*int64(shentsize)
	switch {
	case hdr[4] == 1 && shentsize >= 40:
		if _, err := ra.ReadAt(sh[:40], off); err != nil {
			return sectionAbsent, fmt.Errorf("reading ELF section header: %w", err)
		}
		strOff, strSize = uint64(bo.Uint32(sh[16:])), uint64(bo.Uint32(sh[20:]))
	case hdr[4] == 2 && shentsize >= 64:
		if _, err := ra.ReadAt(sh[:], off); err != nil {
			return sectionAbsent, fmt.Errorf("reading ELF section header: %w", err)
		}
		strOff, strSize = bo.Uint64(sh[24:]), bo.Uint64(sh[32:])
	default:
		return sectionAbsent, fmt.Errorf("invalid ELF section header size %d", shentsize)
	}
	const maxNames = 1 << 20
	if strSize > maxNames || strOff > uint64(size) || strOff+strSize > uint64(size) {
		return sectionAbsent, fmt.Errorf("invalid ELF section name table (offset %d, size %d, file size %d)", strOff, strSize, size)
	}
	names := make([]byte, strSize)
	if _, err := ra.ReadAt(names, int64(strOff)); err != nil {
		return sectionAbsent, fmt.Errorf("reading ELF section names: %w", err)
	}
	if bytes.Contains(names, []byte(".go.buildinfo\x00")) {
		return sectionPresent, nil
	}
	return sectionAbsent, nil
}

// Packages turns build information into packages: the main module, the
// dependencies and the standard library.
func Packages(bi *debug.BuildInfo) []inventory.Package {
	common := map[string]string{"goVersion": bi.GoVersion}
	var vcsRevision, vcsTime string
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS":
			common["goos"] = s.Value
		case "GOARCH":
			common["goarch"] = s.Value
		case "-ldflags":
			common["ldflags"] = "true"
		case "vcs.revision":
			vcsRevision = s.Value
		case "vcs.time":
			vcsTime = s.Value
		}
	}
	meta := func(extra ...string) map[string]string {
		m := make(map[string]string, len(common)+len(extra)/2)
		for k, v := range common {
			m[k] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}

	pkgs := make([]inventory.Package, 0, len(bi.Deps)+2)
	if bi.Main.Path != "" {
		p := newPackage(bi.Main.Path, bi.Main.Version, meta("mainModule", "true"))
		if bi.Main.Version == "(devel)" {
			if pv := pseudoVersion(vcsRevision, vcsTime); pv != "" {
				p.Metadata["pseudoVersion"] = pv
			}
		}
		pkgs = append(pkgs, p)
	}
	for _, d := range bi.Deps {
		if d == nil || d.Path == "" {
			continue
		}
		switch r := d.Replace; {
		case r == nil || r.Path == "":
			pkgs = append(pkgs, newPackage(d.Path, d.Version, meta()))
		case isDir(r.Path):
			pkgs = append(pkgs, newPackage(d.Path, d.Version, meta("replaceDir", r.Path)))
		default:
			pkgs = append(pkgs, newPackage(r.Path, r.Version, meta("replaces", d.Path+"@"+d.Version)))
		}
	}
	if bi.GoVersion != "" {
		pkgs = append(pkgs, newPackage("stdlib", StdlibVersion(bi.GoVersion), meta()))
	}
	return pkgs
}

// isDir reports whether a replacement module path is a local directory
// ("./x", "../x", "/x", "C:\\x"), which debug/buildinfo gives version
// "(devel)".
func isDir(path string) bool {
	return strings.HasPrefix(path, "./") || strings.HasPrefix(path, "../") ||
		strings.HasPrefix(path, "/") || strings.HasPrefix(path, ".\\") ||
		strings.HasPrefix(path, "..\\") || strings.HasPrefix(path, "\\") ||
		(len(path) >= 2 && path[1] == ':')
}

func newPackage(path, version string, meta map[string]string) inventory.Package {
	return inventory.Package{
		Name:     path,
		Version:  version,
		Type:     inventory.TypeGolang,
		PURL:     PURL(path, version),
		Metadata: meta,
	}
}

// PURL returns the package URL of a Go module: pkg:golang/<path>@<version>.
func PURL(path, version string) string {
	ns, name := "", path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		ns, name = path[:i], path[i+1:]
	}
	return packageurl.NewPackageURL(packageurl.TypeGolang, ns, name, version, nil, "").ToString()
}

// StdlibVersion converts a Go toolchain version to the semantic version
// vulnerability databases use for the standard library: "go1.21.3" ->
// "v1.21.3", "go1.21" -> "v1.21.0", "go1.22rc1" -> "v1.22.0-rc.1",
// "go1.20beta2" -> "v1.20.0-beta.2". Build suffixes ("go1.21.3
// X:boringcrypto", "go1.21.3-corp") are dropped. Development toolchains
// ("devel go1.23-abcdef ...") give "(devel)"; a string that is not a Go
// version is returned unchanged.
func StdlibVersion(goVersion string) string {
	v := goVersion
	if strings.HasPrefix(v, "devel") {
		return "(devel)"
	}
	if i := strings.IndexAny(v, " -+"); i >= 0 {
		v = v[:i]
	}
	rest, ok := strings.CutPrefix(v, "go")
	if !ok {
		return goVersion
	}
	// Split "1.22rc1" into the numeric part and the pre-release.
	num, pre := rest, ""
	for _, kind := range []string{"rc", "beta", "alpha"} {
		if i := strings.Index(rest, kind); i >= 0 {
			num, pre = rest[:i], kind+"."+rest[i+len(kind):]
			if !allDigits(rest[i+len(kind):]) {
				return goVersion
			}
			break
		}
	}
	parts := strings.Split(num, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return goVersion
	}
	for _, p := range parts {
		if !allDigits(p) {
			return goVersion
		}
	}
	if len(parts) == 2 {
		parts = append(parts, "0")
	}
	out := "v" + strings.Join(parts, ".")
	if pre != "" {
		out += "-" + pre
	}
	return out
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// pseudoVersion builds the Go pseudo-version for a commit:
// "v0.0.0-<UTC yyyymmddhhmmss>-<12 hex digits of the revision>". It returns
// "" when the settings are missing or malformed.
func pseudoVersion(revision, vcsTime string) string {
	if len(revision) < 12 || len(vcsTime) < len("2006-01-02T15:04:05Z") {
		return ""
	}
	t, err := time.Parse(time.RFC3339, vcsTime)
	if err != nil {
		return ""
	}
	return "v0.0.0-" + t.UTC().Format("20060102150405") + "-" + revision[:12]
}
