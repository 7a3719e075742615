// Package apk reads the installed-package database of apk-tools,
// /lib/apk/db/installed (Alpine, Wolfi, Chainguard; /usr/lib/apk/db/installed
// on merged-/usr systems).
//
// The database is a sequence of stanzas separated by blank lines, one
// "X:value" field a line, where X is a single letter: P name, V version, A
// architecture, o origin (the source package), L license, t build time
// (Unix seconds), c the aports commit, F a directory and R a file in the
// last F directory. Other fields are ignored.
//
// Licenses are split into their parts: SPDX expressions on AND and OR
// ("X WITH Y" stays whole), older space-separated lists on spaces.
// Package metadata records "buildTime" (RFC 3339, UTC) and "commit".
package apk

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
)

type extractor struct{}

// New returns the apk database extractor.
func New() inventory.Extractor { return extractor{} }

func (extractor) Name() string { return "os/apk" }

func (extractor) Version() int { return 1 }

func (extractor) Required(fi inventory.FileInfo) bool {
	return fi.Path == "/lib/apk/db/installed" || fi.Path == "/usr/lib/apk/db/installed"
}

func (extractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, inventory.MaxManifestSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	pkgs, err := Parse(b)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{Packages: pkgs}, nil
}

// Parse reads the packages of an apk installed database.
func Parse(b []byte) ([]inventory.Package, error) {
	var (
		pkgs  []inventory.Package
		cur   *inventory.Package
		dir   string
		start int
	)
	finish := func() error {
		if cur == nil {
			return nil
		}
		if cur.Name == "" || cur.Version == "" {
			return fmt.Errorf("package at line %d has no name (P:) or version (V:)", start)
		}
		if cur.SourceName == "" {
			cur.SourceName = cur.Name
		}
		cur.SourceVersion = cur.Version
		pkgs = append(pkgs, *cur)
		cur, dir = nil, ""
		return nil
	}
	lineNo := 0
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		lineNo++
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			if err := finish(); err != nil {
				return nil, err
			}
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			return nil, fmt.Errorf("line %d: expected \"X:value\", got %q", lineNo, truncate(line))
		}
		if cur == nil {
			cur = &inventory.Package{Type: inventory.TypeAPK}
			start = lineNo
		}
		v := string(line[2:])
		switch line[0] {
		case 'P':
			cur.Name = v
		case 'V':
			cur.Version = v
		case 'A':
			cur.Arch = v
		case 'o':
			cur.SourceName = v
		case 'L':
			cur.Licenses = splitLicense(v)
		case 't':
			if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
				setMeta(cur, "buildTime", time.Unix(sec, 0).UTC().Format(time.RFC3339))
			}
		case 'c':
			setMeta(cur, "commit", v)
		case 'F':
			dir = strings.Trim(v, "/")
			if dir != "" {
				cur.Files = append(cur.Files, "/"+dir)
			}
		case 'R':
			if dir == "" {
				cur.Files = append(cur.Files, "/"+v)
			} else {
				cur.Files = append(cur.Files, "/"+dir+"/"+v)
			}
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return pkgs, nil
}

func setMeta(p *inventory.Package, k, v string) {
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	p.Metadata[k] = v
}

// splitLicense splits an L: value into license names, sorted and unique.
// "X WITH Y" stays one name; operators, parentheses and spaces separate
// names.
func splitLicense(s string) []string {
	var parts []string
	f := strings.Fields(strings.NewReplacer("(", " ", ")", " ").Replace(s))
	for i := 0; i < len(f); i++ {
		switch {
		case isOperator(f[i]):
		case i+2 < len(f) && strings.EqualFold(f[i+1], "WITH"):
			parts = append(parts, f[i]+" WITH "+f[i+2])
			i += 2
		default:
			parts = append(parts, f[i])
		}
	}
	slices.Sort(parts)
	return slices.Compact(parts)
}

func isOperator(s string) bool { return s == "AND" || s == "OR" || s == "and" || s == "or" }

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}
