// Package dpkg reads what dpkg knows about installed Debian packages:
//
//   - the status database /var/lib/dpkg/status, and the per-package stanza
//     files distroless images keep in /var/lib/dpkg/status.d/ (New);
//   - the file lists /var/lib/dpkg/info/NAME.list and distroless's
//     /var/lib/dpkg/status.d/NAME.md5sums (NewFileList);
//   - the licenses in /usr/share/doc/NAME/copyright (NewCopyright).
//
// Only installed packages are reported: Status "installed" (whatever the
// selection, so held packages count) or "triggers-awaited"/"triggers-pending"
// (installed, with only trigger processing left). Stanzas in status.d have no
// Status field and are installed. Package URLs are left empty: they need the
// OS, which the walk knows once every layer is read.
package dpkg

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

const (
	statusFile = "/var/lib/dpkg/status"
	statusDir  = "/var/lib/dpkg/status.d"
	infoDir    = "/var/lib/dpkg/info"
)

type statusExtractor struct{}

// New returns the extractor for /var/lib/dpkg/status and the stanza files
// in /var/lib/dpkg/status.d/.
func New() inventory.Extractor { return statusExtractor{} }

// All returns every extractor of this package.
func All() []inventory.Extractor {
	return []inventory.Extractor{New(), NewFileList(), NewCopyright()}
}

func (statusExtractor) Name() string { return "os/dpkg" }

func (statusExtractor) Version() int { return 1 }

func (statusExtractor) Required(fi inventory.FileInfo) bool {
	if fi.Path == statusFile {
		return true
	}
	dir, name := path.Split(fi.Path)
	return dir == statusDir+"/" && !strings.HasSuffix(name, ".md5sums") && !strings.HasPrefix(name, ".")
}

func (statusExtractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, inventory.MaxManifestSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	pkgs, err := ParseStatus(b, in.Path != statusFile)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{Packages: pkgs}, nil
}

// Stanza is one paragraph of a deb822 control file: field names (as
// written) to values. Continuation lines are joined to the value with "\n".
type Stanza map[string]string

// ParseStanzas splits deb822 text into stanzas. Stanzas are separated by
// blank lines; a line starting with a space or tab continues the previous
// field. Any other line must be "Field: value".
func ParseStanzas(b []byte) ([]Stanza, error) {
	var (
		out  []Stanza
		cur  Stanza
		last string
	)
	lineNo := 0
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		lineNo++
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			if cur != nil {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur == nil {
				return nil, fmt.Errorf("line %d: continuation line outside a field", lineNo)
			}
			cur[last] += "\n" + string(bytes.TrimSpace(line))
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("line %d: expected \"Field: value\", got %q", lineNo, truncate(line))
		}
		if cur == nil {
			cur = Stanza{}
		}
		last = string(name)
		cur[last] = string(bytes.TrimSpace(value))
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out, nil
}

// ParseStatus reads the installed packages of a dpkg status file. With
// noStatus (distroless status.d files) stanzas without a Status field count
// as installed.
func ParseStatus(b []byte, noStatus bool) ([]inventory.Package, error) {
	stanzas, err := ParseStanzas(b)
	if err != nil {
		return nil, err
	}
	var pkgs []inventory.Package
	for i, s := range stanzas {
		if st, ok := s["Status"]; ok || !noStatus {
			if !installed(st) {
				continue
			}
		}
		name, version := s["Package"], s["Version"]
		if name == "" || version == "" {
			return nil, fmt.Errorf("stanza %d (Package %q) has no Package or Version field", i+1, name)
		}
		src, srcVersion := parseSource(s["Source"])
		if src == "" {
			src = name
		}
		if srcVersion == "" {
			srcVersion = version
		}
		pkgs = append(pkgs, inventory.Package{
			Name:          name,
			Version:       version,
			Type:          inventory.TypeDeb,
			Arch:          s["Architecture"],
			SourceName:    src,
			SourceVersion: srcVersion,
		})
	}
	return pkgs, nil
}

// installed reports whether a Status value ("want flag status") describes
// a package whose files are installed and configured.
func installed(status string) bool {
	f := strings.Fields(status)
	if len(f) != 3 {
		return false
	}
	switch f[2] {
	case "installed", "triggers-awaited", "triggers-pending":
		return true
	}
	return false
}

// parseSource splits a Source field, "name" or "name (version)".
func parseSource(s string) (name, version string) {
	name, rest, ok := strings.Cut(s, "(")
	name = strings.TrimSpace(name)
	if ok {
		version = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), ")"))
	}
	return name, version
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}
