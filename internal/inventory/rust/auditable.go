package rust

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/mamorisec/mamori/internal/inventory"
)

// Limits on the ".dep-v0" section: cargo-auditable's own readers accept at
// most 8 MiB of JSON.
const (
	maxCompressed   = 8 << 20
	maxDecompressed = 8 << 20
)

// sectionName is the ELF section cargo-auditable writes.
const sectionName = ".dep-v0"

type auditable struct{}

// NewAuditable returns the extractor for binaries built with
// cargo-auditable.
func NewAuditable() inventory.Extractor { return auditable{} }

func (auditable) Name() string { return "language/rust/auditable" }

func (auditable) Version() int { return 1 }

// Required selects regular files with an execute bit and a plausible size.
func (auditable) Required(fi inventory.FileInfo) bool {
	return fi.Mode.IsRegular() && fi.Mode.Perm()&0o111 != 0 && fi.Size >= 1<<10 && fi.Size <= 1<<30
}

func (auditable) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	ra, err := in.ReaderAt()
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	off, size, err := findELFSection(ra, in.Size, sectionName)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	if size < 0 {
		return inventory.Result{}, nil
	}
	if size > maxCompressed {
		return inventory.Result{}, fmt.Errorf("%s: section %s is %d bytes, over the %d byte limit", in.Path, sectionName, size, maxCompressed)
	}
	data := make([]byte, size)
	if _, err := ra.ReadAt(data, off); err != nil {
		return inventory.Result{}, fmt.Errorf("%s: reading section %s: %w", in.Path, sectionName, err)
	}
	pkgs, err := ParseDepV0(data)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: section %s: %w", in.Path, sectionName, err)
	}
	return inventory.Result{Packages: pkgs}, nil
}

type depInfo struct {
	Packages []struct {
		Name         string `json:"name"`
		Version      string `json:"version"`
		Source       string `json:"source"`
		Kind         string `json:"kind"`
		Dependencies []int  `json:"dependencies"`
		Root         bool   `json:"root"`
	} `json:"packages"`
}

// ParseDepV0 decodes the contents of a ".dep-v0" section (zlib-compressed
// JSON) into packages.
func ParseDepV0(compressed []byte) ([]inventory.Package, error) {
	zr, err := zlib.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	js, err := inventory.ReadAllLimited(zr, maxDecompressed)
	var tooLarge *inventory.TooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("decompressed dependency list is larger than %d bytes", maxDecompressed)
	case err != nil:
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	return parseDepJSON(js)
}

func parseDepJSON(js []byte) ([]inventory.Package, error) {
	var di depInfo
	if err := json.Unmarshal(js, &di); err != nil {
		return nil, fmt.Errorf("parsing dependency JSON: %w", err)
	}
	if di.Packages == nil {
		return nil, errors.New("dependency JSON has no \"packages\" list")
	}
	pkgs := make([]inventory.Package, 0, len(di.Packages))
	for i, p := range di.Packages {
		if p.Name == "" || p.Version == "" {
			return nil, fmt.Errorf("dependency JSON: package %d has no name or version", i)
		}
		for _, d := range p.Dependencies {
			if d < 0 || d >= len(di.Packages) {
				return nil, fmt.Errorf("dependency JSON: package %s refers to package %d of %d", p.Name, d, len(di.Packages))
			}
		}
		meta := map[string]string{}
		if p.Source != "" {
			meta["source"] = p.Source
		}
		if p.Kind == "build" {
			meta["kind"] = "build"
		}
		if p.Root {
			meta["root"] = "true"
		}
		pkgs = append(pkgs, newPackage(p.Name, p.Version, meta))
	}
	return pkgs, nil
}

// findELFSection returns the file offset and size of the named section of
// an ELF file, and size -1 when the file is not ELF or has no such section.
// It reads only the ELF header, the section headers and the section name
// table, so that rejecting the common binary without the section is cheap.
func findELFSection(ra io.ReaderAt, fileSize int64, name string) (off, size int64, err error) {
	var hdr [64]byte
	if n, _ := ra.ReadAt(hdr[:], 0); n < 52 || string(hdr[:4]) != "\x7fELF" {
		return 0, -1, nil
	}
	bo, err := byteOrder(hdr[5])
	if err != nil {
		return 0, 0, err
	}
	var shoff uint64
	var shentsize, shnum, shstrndx uint16
	is64 := hdr[4] == 2
	switch hdr[4] {
	case 1:
		shoff = uint64(bo.Uint32(hdr[32:]))
		shentsize, shnum, shstrndx = bo.Uint16(hdr[46:]), bo.Uint16(hdr[48:]), bo.Uint16(hdr[50:])
	case 2:
		shoff = bo.Uint64(hdr[40:])
		shentsize, shnum, shstrndx = bo.Uint16(hdr[58:]), bo.Uint16(hdr[60:]), bo.Uint16(hdr[62:])
	default:
		return 0, 0, fmt.Errorf("invalid ELF class %d", hdr[4])
	}
	if shoff == 0 || shnum == 0 || shstrndx >= shnum {
		return 0, -1, nil // no usable section headers
	}
	if (is64 && shentsize < 64) || (!is64 && shentsize < 40) {
		return 0, 0, fmt.Errorf("invalid ELF section header size %d", shentsize)
	}
	tableSize := uint64(shnum) * uint64(shentsize)
	if shoff > uint64(fileSize) || tableSize > uint64(fileSize)-shoff {
		return 0, 0, fmt.Errorf("truncated ELF file: section headers end past byte %d", fileSize)
	}
	table := make([]byte, tableSize)
	if _, err := ra.ReadAt(table, int64(shoff)); err != nil {
		return 0, 0, fmt.Errorf("reading ELF section headers: %w", err)
	}
	// section returns the name offset, file offset and size of section i.
	section := func(i int) (nameOff uint32, off, size uint64) {
		sh := table[i*int(shentsize):]
		if is64 {
			return bo.Uint32(sh), bo.Uint64(sh[24:]), bo.Uint64(sh[32:])
		}
		return bo.Uint32(sh), uint64(bo.Uint32(sh[16:])), uint64(bo.Uint32(sh[20:]))
	}
	_, strOff, strSize := section(int(shstrndx))
	const maxNames = 1 << 20
	if strSize > maxNames || strOff > uint64(fileSize) || strSize > uint64(fileSize)-strOff {
		return 0, 0, fmt.Errorf("invalid ELF section name table (offset %d, size %d)", strOff, strSize)
	}
	names := make([]byte, strSize)
	if _, err := ra.ReadAt(names, int64(strOff)); err != nil {
		return 0, 0, fmt.Errorf("reading ELF section names: %w", err)
	}
	// Section names may share a tail with longer names (".rela.dep-v0").
	if !bytes.Contains(names, []byte(name+"\x00")) {
		return 0, -1, nil
	}
	for i := 0; i < int(shnum); i++ {
		nameOff, off, size := section(i)
		if uint64(nameOff)+uint64(len(name)) >= uint64(len(names)) ||
			string(names[nameOff:nameOff+uint32(len(name))]) != name || names[nameOff+uint32(len(name))] != 0 {
			continue
		}
		if off > uint64(fileSize) || size > uint64(fileSize)-off {
			return 0, 0, fmt.Errorf("ELF section %s (offset %d, size %d) extends past the end of the file (%d bytes)", name, off, size, fileSize)
		}
		return int64(off), int64(size), nil
	}
	return 0, -1, nil
}

func byteOrder(b byte) (binary.ByteOrder, error) {
	switch b {
	case 1:
		return binary.LittleEndian, nil
	case 2:
		return binary.BigEndian, nil
	}
	return nil, fmt.Errorf("invalid ELF data encoding %d", b)
}
