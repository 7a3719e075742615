package gobinary

import (
	"debug/elf"
	"debug/gosym"
	"debug/macho"
	"debug/pe"
	"errors"
	"fmt"
	"io"
	"slices"
)

// maxPclntab bounds the Go line table read into memory by Symbols.
const maxPclntab = 512 << 20

// Symbols returns the sorted, de-duplicated names of the functions in a Go
// executable (ELF, Mach-O or PE). It uses the symbol table when the binary
// has one and otherwise the Go line table (.gopclntab), which even stripped
// (-ldflags=-s -w) binaries keep because the runtime needs it. Stripped PE
// binaries have neither and give an error.
func Symbols(r io.ReaderAt) (names []string, err error) {
	// debug/gosym is not hardened against hostile line tables.
	defer func() {
		if p := recover(); p != nil {
			names, err = nil, fmt.Errorf("corrupt Go line table: %v", p)
		}
	}()
	var magic [4]byte
	if _, err := r.ReadAt(magic[:], 0); err != nil {
		return nil, errors.New("file too short for an executable")
	}
	var pcln []byte
	var text uint64
	switch {
	case string(magic[:]) == "\x7fELF":
		f, err := elf.NewFile(r)
		if err != nil {
			return nil, fmt.Errorf("reading ELF file: %w", err)
		}
		if syms, err := f.Symbols(); err == nil {
			for _, s := range syms {
				if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Name != "" {
					names = append(names, s.Name)
				}
			}
		}
		if len(names) > 0 {
			return sortUnique(names), nil
		}
		s := f.Section(".gopclntab")
		if s == nil {
			s = f.Section(".data.rel.ro.gopclntab") // PIE binaries
		}
		if s == nil {
			return nil, errors.New("ELF file has neither function symbols nor a Go line table")
		}
		if t := f.Section(".text"); t != nil {
			text = t.Addr
		}
		if pcln, err = sectionData(s.Size, s.Open()); err != nil {
			return nil, err
		}
	case format(magic[:]) == formatOther && string(magic[:2]) != "MZ":
		f, err := macho.NewFile(r)
		if err != nil {
			return nil, fmt.Errorf("reading Mach-O file: %w", err)
		}
		textSect := f.Section("__text")
		if f.Symtab != nil && textSect != nil {
			for _, s := range f.Symtab.Syms {
				if int(s.Sect) > 0 && int(s.Sect) <= len(f.Sections) && f.Sections[s.Sect-1] == textSect && s.Name != "" {
					names = append(names, s.Name)
				}
			}
		}
		if len(names) > 0 {
			return sortUnique(names), nil
		}
		s := f.Section("__gopclntab")
		if s == nil {
			return nil, errors.New("Mach-O file has neither function symbols nor a Go line table")
		}
		if textSect != nil {
			text = textSect.Addr
		}
		if pcln, err = sectionData(s.Size, s.Open()); err != nil {
			return nil, err
		}
	case string(magic[:2]) == "MZ":
		f, err := pe.NewFile(r)
		if err != nil {
			return nil, fmt.Errorf("reading PE file: %w", err)
		}
		for _, s := range f.Symbols {
			if s.SectionNumber > 0 && int(s.SectionNumber) <= len(f.Sections) &&
				f.Sections[s.SectionNumber-1].Name == ".text" && s.Name != "" {
				names = append(names, s.Name)
			}
		}
		if len(names) == 0 {
			return nil, errors.New("PE file has no function symbols")
		}
		return sortUnique(names), nil
	default:
		return nil, errors.New("not an ELF, Mach-O or PE executable")
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(pcln, text))
	if err != nil {
		return nil, fmt.Errorf("reading Go line table: %w", err)
	}
	for _, fn := range tab.Funcs {
		names = append(names, fn.Name)
	}
	if len(names) == 0 {
		return nil, errors.New("the Go line table lists no functions")
	}
	return sortUnique(names), nil
}

func sectionData(size uint64, r io.ReadSeeker) ([]byte, error) {
	if size > maxPclntab {
		return nil, fmt.Errorf("the Go line table is %d bytes, over the %d byte limit", size, maxPclntab)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("reading Go line table: %w", err)
	}
	return b, nil
}

func sortUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
