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
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
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

// SymbolTableKey is the metadata key AssignSymbols sets to "true" on every
// package of a binary whose functions could be read, so that an empty
// Symbols list means "none of this module's code is linked in" and not "no
// symbol information" (the per-layer cache's gob encoding does not keep
// empty lists apart from nil ones).
const SymbolTableKey = "symbolTable"

// AssignSymbols sets the Symbols of each module package to the binary's
// functions that belong to it, normalised by NormalizeSymbol. A function
// belongs to the module with the longest path that prefixes its package
// path; functions of packages without a dot in the first path element
// belong to the standard library ("stdlib"). The main module, replaced
// modules and the rest are matched by the path the code was built with.
func AssignSymbols(pkgs []inventory.Package, syms []string) {
	codePath := make(map[string]int, len(pkgs)) // module path → index
	stdlib := -1
	for i := range pkgs {
		p := &pkgs[i]
		if p.Metadata == nil {
			p.Metadata = map[string]string{}
		}
		p.Metadata[SymbolTableKey] = "true"
		if p.Name == "stdlib" {
			stdlib = i
			continue
		}
		path := p.Name
		if r := p.Metadata["replaces"]; r != "" {
			path, _, _ = strings.Cut(r, "@")
		}
		codePath[path] = i
		p.Symbols = []string{}
	}
	if stdlib >= 0 {
		pkgs[stdlib].Symbols = []string{}
	}
	for _, s := range syms {
		pkg, name, ok := NormalizeSymbol(s)
		if !ok {
			continue
		}
		idx := -1
		first, _, _ := strings.Cut(pkg, "/")
		if !strings.Contains(first, ".") {
			idx = stdlib
		} else {
			for p := pkg; ; {
				if i, ok := codePath[p]; ok {
					idx = i
					break
				}
				j := strings.LastIndexByte(p, '/')
				if j < 0 {
					break
				}
				p = p[:j]
			}
		}
		if idx < 0 {
			continue
		}
		pkgs[idx].Symbols = append(pkgs[idx].Symbols, pkg+"."+name)
		// A closure or method value implies its enclosing function.
		if k := strings.Index(name, ".func"); k > 0 {
			pkgs[idx].Symbols = append(pkgs[idx].Symbols, pkg+"."+name[:k])
		}
	}
	for i := range pkgs {
		if pkgs[i].Symbols != nil {
			pkgs[i].Symbols = sortUnique(pkgs[i].Symbols)
		}
	}
}

// NormalizeSymbol splits a Go function name from a binary into its package
// path and its name in the form OSV records use: "net/http.(*Client).Do"
// becomes ("net/http", "Client.Do") and type parameters are dropped
// ("sync.(*Map[...]).Load" → "Map.Load"); the linker's escaping of dots
// in the last path element is undone ("gopkg.in/yaml%2ev3.Unmarshal" →
// "gopkg.in/yaml.v3", "Unmarshal"). Runtime-generated names
// ("type:.eq...", "go:buildid") give ok false.
func NormalizeSymbol(s string) (pkg, name string, ok bool) {
	if strings.HasPrefix(s, "type:") || strings.HasPrefix(s, "go:") || strings.HasPrefix(s, "go.") {
		return "", "", false
	}
	slash := strings.LastIndexByte(s, '/')
	dot := strings.IndexByte(s[slash+1:], '.')
	if dot < 0 {
		return "", "", false
	}
	// The linker escapes dots in the last path element ("yaml%2ev3").
	pkg, rest := strings.ReplaceAll(s[:slash+1+dot], "%2e", "."), s[slash+2+dot:]
	if pkg == "" || rest == "" || pkg == "main" {
		return "", "", false
	}
	var b strings.Builder
	depth := 0
	for _, r := range rest {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth > 0, r == '(', r == ')', r == '*':
		default:
			b.WriteRune(r)
		}
	}
	return pkg, b.String(), b.Len() > 0
}
