package npm

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

type lockfile struct{}

// NewLockfile returns the extractor for npm's package-lock.json and
// npm-shrinkwrap.json (lockfileVersion 1, 2 and 3).
func NewLockfile() inventory.Extractor { return lockfile{} }

func (lockfile) Name() string { return "language/npm/packagelock" }

func (lockfile) Version() int { return 1 }

func (lockfile) Required(fi inventory.FileInfo) bool {
	base := path.Base(fi.Path)
	return (base == "package-lock.json" || base == "npm-shrinkwrap.json") && !inNodeModules(fi.Path)
}

func (lockfile) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, inventory.MaxManifestSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	pkgs, err := ParsePackageLock(b)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{Packages: pkgs}, nil
}

type packageLock struct {
	LockfileVersion int                       `json:"lockfileVersion"`
	Packages        map[string]lockPackage    `json:"packages"`
	Dependencies    map[string]lockDependency `json:"dependencies"`
}

// lockPackage is an entry of "packages" (lockfileVersion 2 and 3).
type lockPackage struct {
	Name     string          `json:"name"`
	Version  string          `json:"version"`
	Link     bool            `json:"link"`
	Dev      bool            `json:"dev"`
	License  json.RawMessage `json:"license"`
	Licenses json.RawMessage `json:"licenses"`
}

// lockDependency is an entry of "dependencies" (lockfileVersion 1).
type lockDependency struct {
	Version      string                    `json:"version"`
	Dev          bool                      `json:"dev"`
	Dependencies map[string]lockDependency `json:"dependencies"`
}

// ParsePackageLock reads the packages of a package-lock.json or
// npm-shrinkwrap.json file. Version 2 and 3 files are read from "packages",
// version 1 files from the nested "dependencies".
func ParsePackageLock(b []byte) ([]inventory.Package, error) {
	var lock packageLock
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("parsing package lock: %w", err)
	}
	var c inventory.Collector
	if lock.Packages != nil {
		for key, p := range lock.Packages {
			i := strings.LastIndex(key, "node_modules/")
			if i < 0 || p.Link {
				// The root project (""), workspace folders and links to
				// them are the project's own code.
				continue
			}
			name := p.Name
			if name == "" {
				name = key[i+len("node_modules/"):]
			}
			if name == "" || p.Version == "" {
				continue // not installed (npm records no version for it)
			}
			c.Add(newPackage(name, p.Version, parseLicenses(p.License, p.Licenses), p.Dev))
		}
		return c.Sorted(), nil
	}
	addDependencies(&c, lock.Dependencies)
	return c.Sorted(), nil
}

// addDependencies adds lockfileVersion 1 dependencies, recursively.
// Versions that are not registry versions (git URLs, tarball URLs, "file:"
// paths) are skipped; "npm:NAME@VERSION" aliases give the real package.
func addDependencies(c *inventory.Collector, deps map[string]lockDependency) {
	for name, d := range deps {
		version := d.Version
		if alias, ok := strings.CutPrefix(version, "npm:"); ok {
			if n, v, ok := splitNameVersion(alias); ok {
				name, version = n, v
			}
		}
		if name != "" && version != "" && !strings.ContainsAny(version, ":/") {
			c.Add(newPackage(name, version, nil, d.Dev))
		}
		addDependencies(c, d.Dependencies)
	}
}
