package sbom

import (
	"cmp"
	"io"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/mamorisec/mamori/internal/inventory"
)

// ANSI sequences for the table. Both are 4 bytes long: tabwriter counts them
// as text, so every row starts with one of them to keep the columns aligned.
const (
	ansiBold  = "\x1b[1m"
	ansiReset = "\x1b[0m"
)

// encodeTable writes one row per package (name, version, type, and the file
// and layer it was found in), sorted by name, version, type and path, and a
// summary line: the number of packages by type and the OS.
func encodeTable(w io.Writer, r *inventory.Report, opts Options) error {
	color := opts.Color || isTerminal(w)
	pkgs := uniquePackages(r, compareRows)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)

	var line []byte
	if len(pkgs) > 0 {
		if color {
			line = append(line, ansiBold...)
		}
		line = append(line, "NAME\tVERSION\tTYPE\tPATH (LAYER)"...)
		if color {
			line = append(line, ansiReset...)
		}
		line = append(line, '\n')
		if _, err := tw.Write(line); err != nil {
			return err
		}
	}
	for _, p := range pkgs {
		line = line[:0]
		if color {
			line = append(line, ansiReset...)
		}
		line = appendCell(line, p.Name)
		line = append(line, '\t')
		line = appendCell(line, p.Version)
		line = append(line, '\t')
		line = appendCell(line, p.Type)
		line = append(line, '\t')
		if p.Path != "" {
			line = appendCell(line, p.Path)
			line = append(line, ' ')
		}
		line = append(line, "(layer "...)
		line = strconv.AppendInt(line, int64(p.Layer.Index), 10)
		line = append(line, ")\n"...)
		if _, err := tw.Write(line); err != nil {
			return err
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	line = line[:0]
	if len(pkgs) > 0 {
		line = append(line, '\n')
	}
	if color {
		line = append(line, ansiBold...)
	}
	line = appendSummary(line, r, pkgs)
	if color {
		line = append(line, ansiReset...)
	}
	line = append(line, '\n')
	_, err := w.Write(line)
	return err
}

// compareRows orders table rows by name, version, type, path and layer.
func compareRows(a, b *inventory.Package) int {
	return cmp.Or(
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Version, b.Version),
		cmp.Compare(a.Type, b.Type),
		cmp.Compare(a.Path, b.Path),
		cmp.Compare(a.Layer.Index, b.Layer.Index),
	)
}

// appendSummary appends "N packages (deb: 3, npm: 1); OS: Debian 12" and the
// number of unreadable files, if any.
func appendSummary(b []byte, r *inventory.Report, pkgs []*inventory.Package) []byte {
	counts := make(map[string]int)
	for _, p := range pkgs {
		counts[p.Type]++
	}
	types := make([]string, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	slices.Sort(types)

	b = strconv.AppendInt(b, int64(len(pkgs)), 10)
	if len(pkgs) == 1 {
		b = append(b, " package"...)
	} else {
		b = append(b, " packages"...)
	}
	for i, t := range types {
		if i == 0 {
			b = append(b, " ("...)
		} else {
			b = append(b, ", "...)
		}
		if t == "" {
			t = "unknown type"
		}
		b = appendCell(b, t)
		b = append(b, ": "...)
		b = strconv.AppendInt(b, int64(counts[types[i]]), 10)
	}
	if len(types) > 0 {
		b = append(b, ')')
	}
	b = append(b, "; OS: "...)
	switch {
	case r.OS == nil:
		b = append(b, "unknown"...)
	case r.OS.PrettyName != "":
		b = appendCell(b, r.OS.PrettyName)
	default:
		b = appendCell(b, r.OS.ID)
		if r.OS.VersionID != "" {
			b = append(b, ' ')
			b = appendCell(b, r.OS.VersionID)
		}
	}
	if n := len(r.Problems); n == 1 {
		b = append(b, "; 1 file could not be read"...)
	} else if n > 1 {
		b = append(b, "; "...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, " files could not be read"...)
	}
	return b
}

// appendCell appends s with control characters (which could break the table
// or drive the terminal) replaced by '?' and invalid UTF-8 by U+FFFD. Image
// contents are untrusted.
func appendCell(b []byte, s string) []byte {
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii {
		return append(b, s...)
	}
	// Ranging decodes invalid UTF-8 as U+FFFD, which also keeps out the byte
	// 0xff, tabwriter's escape character.
	for _, r := range s {
		if r < 0x20 || 0x7f <= r && r < 0xa0 {
			b = append(b, '?')
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

// isTerminal reports whether w is a terminal that accepts colors.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && os.Getenv("NO_COLOR") == "" && term.IsTerminal(int(f.Fd()))
}
