package npm

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
	"gopkg.in/yaml.v3"
)

type yarnLock struct{}

// NewYarnLock returns the extractor for yarn.lock files of Yarn 1 (its own
// format) and Yarn 2+ ("berry", YAML with a __metadata entry).
func NewYarnLock() inventory.Extractor { return yarnLock{} }

func (yarnLock) Name() string { return "language/npm/yarnlock" }

func (yarnLock) Version() int { return 1 }

func (yarnLock) Required(fi inventory.FileInfo) bool {
	return path.Base(fi.Path) == "yarn.lock" && !inNodeModules(fi.Path)
}

func (yarnLock) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, inventory.MaxManifestSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	pkgs, err := ParseYarnLock(b)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{Packages: pkgs}, nil
}

// ParseYarnLock reads the packages of a yarn.lock file of any Yarn version.
func ParseYarnLock(b []byte) ([]inventory.Package, error) {
	if bytes.HasPrefix(b, []byte("__metadata:")) || bytes.Contains(b, []byte("\n__metadata:")) {
		return parseYarnBerry(b)
	}
	return parseYarnClassic(b)
}

// localProtocols are descriptor protocols of packages that live in the
// project itself rather than in a registry.
var localProtocols = map[string]bool{
	"workspace": true, "link": true, "portal": true, "file": true, "exec": true,
}

// protocol returns the "proto" of a "proto:..." range, or "".
func protocol(rng string) string {
	p, _, ok := strings.Cut(rng, ":")
	if !ok || strings.ContainsAny(p, "/@ ") {
		return ""
	}
	return p
}

// parseYarnClassic reads the Yarn 1 format: unindented entry headers
// (`"a@^1.0.0", a@^1.1.0:`) followed by indented fields (`  version "1.2.0"`).
func parseYarnClassic(b []byte) ([]inventory.Package, error) {
	var c inventory.Collector
	type entry struct {
		name, version string
		local         bool
		line          int
	}
	var cur *entry
	finish := func() error {
		if cur == nil || cur.local {
			return nil
		}
		if cur.version == "" {
			return fmt.Errorf("parsing yarn.lock: entry on line %d has no version", cur.line)
		}
		c.Add(newPackage(cur.name, cur.version, nil, false))
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), inventory.MaxManifestSize)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		case trimmed == line: // an entry header
			if !strings.HasSuffix(line, ":") {
				return nil, fmt.Errorf("parsing yarn.lock: line %d: expected an entry header ending in %q", n, ":")
			}
			if err := finish(); err != nil {
				return nil, err
			}
			first, _, _ := strings.Cut(strings.TrimSuffix(line, ":"), ",")
			name, rng, ok := splitNameVersion(unquote(strings.TrimSpace(first)))
			if !ok {
				return nil, fmt.Errorf("parsing yarn.lock: line %d: entry %q has no name@range", n, first)
			}
			if alias, ok := strings.CutPrefix(rng, "npm:"); ok && strings.Contains(alias[min(1, len(alias)):], "@") {
				name, _, _ = splitNameVersion(alias)
			}
			cur = &entry{name: name, line: n, local: localProtocols[protocol(rng)]}
		case cur != nil && len(line)-len(trimmed) == 2 && strings.HasPrefix(trimmed, "version "):
			cur.version = unquote(strings.TrimSpace(strings.TrimPrefix(trimmed, "version ")))
		case cur == nil:
			return nil, fmt.Errorf("parsing yarn.lock: line %d: field outside an entry", n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parsing yarn.lock: %w", err)
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return c.Sorted(), nil
}

// unquote removes the double quotes around a yarn.lock string.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
		return s[1 : len(s)-1]
	}
	return s
}

type berryEntry struct {
	Version    string `yaml:"version"`
	Resolution string `yaml:"resolution"`
	LinkType   string `yaml:"linkType"`
}

// parseYarnBerry reads the YAML format of Yarn 2 and later. The package
// name comes from "resolution" ("name@npm:1.2.3"), which names the real
// package even for aliases; workspaces, links and patches (which repeat the
// patched package) are skipped.
func parseYarnBerry(b []byte) ([]inventory.Package, error) {
	var entries map[string]berryEntry
	if err := yaml.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("parsing yarn.lock: %w", err)
	}
	var c inventory.Collector
	for key, e := range entries {
		if key == "__metadata" || e.LinkType == "soft" {
			continue
		}
		res := e.Resolution
		if res == "" {
			res, _, _ = strings.Cut(key, ",")
		}
		name, rng, ok := splitNameVersion(strings.TrimSpace(res))
		if !ok {
			return nil, fmt.Errorf("parsing yarn.lock: entry %q has no name@resolution", key)
		}
		proto := protocol(rng)
		if localProtocols[proto] || proto == "patch" {
			continue
		}
		if e.Version == "" {
			return nil, fmt.Errorf("parsing yarn.lock: entry %q has no version", key)
		}
		c.Add(newPackage(name, e.Version, nil, false))
	}
	return c.Sorted(), nil
}
