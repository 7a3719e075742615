// Package php finds PHP Composer packages: the packages installed in a
// vendor directory (vendor/composer/installed.json, Composer 1 and 2) and
// the packages pinned by composer.lock.
//
// Versions are reported verbatim ("v5.4.0"). In package URLs a "v" before
// a digit is dropped, as Composer's own version normalization does, so that
// "v5.4.0" and "5.4.0" give the same package URL.
package php

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/package-url/packageurl-go"
)

// All returns every extractor of this package.
func All() []inventory.Extractor {
	return []inventory.Extractor{NewInstalled(), NewComposerLock()}
}

// PURL returns the package URL of a Composer package "vendor/name".
// Vendor and name are lowercased, as Composer treats them
// case-insensitively.
func PURL(name, version string) string {
	name = strings.ToLower(name)
	vendor, pkg, ok := strings.Cut(name, "/")
	if !ok {
		vendor, pkg = "", name
	}
	if len(version) > 1 && (version[0] == 'v' || version[0] == 'V') && version[1] >= '0' && version[1] <= '9' {
		version = version[1:]
	}
	return packageurl.NewPackageURL(packageurl.TypeComposer, vendor, pkg, version, nil, "").ToString()
}

type extractor struct {
	name     string
	required func(string) bool
	parse    func([]byte) ([]inventory.Package, error)
}

// NewInstalled returns the extractor for vendor/composer/installed.json.
func NewInstalled() inventory.Extractor {
	return extractor{
		name:     "language/php/installed",
		required: func(p string) bool { return strings.HasSuffix(p, "/vendor/composer/installed.json") },
		parse:    ParseInstalled,
	}
}

// NewComposerLock returns the extractor for composer.lock files.
func NewComposerLock() inventory.Extractor {
	return extractor{
		name:     "language/php/composerlock",
		required: func(p string) bool { return path.Base(p) == "composer.lock" },
		parse:    ParseComposerLock,
	}
}

func (e extractor) Name() string { return e.name }

func (extractor) Version() int { return 1 }

func (e extractor) Required(fi inventory.FileInfo) bool { return e.required(fi.Path) }

func (e extractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, inventory.MaxManifestSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	pkgs, err := e.parse(b)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{Packages: pkgs}, nil
}

// composerPackage is a package entry of installed.json and composer.lock.
type composerPackage struct {
	Name    string          `json:"name"`
	Version string          `json:"version"`
	License json.RawMessage `json:"license"`
}

// installedV2 is the Composer 2 installed.json; Composer 1 writes the
// package array alone.
type installedV2 struct {
	Packages        []composerPackage `json:"packages"`
	DevPackageNames []string          `json:"dev-package-names"`
}

// ParseInstalled reads vendor/composer/installed.json. Composer 2 files
// list the development packages in "dev-package-names"; those are Dev.
func ParseInstalled(b []byte) ([]inventory.Package, error) {
	const what = "installed.json"
	var v2 installedV2
	if trimmed := strings.TrimSpace(string(b)); strings.HasPrefix(trimmed, "[") {
		if err := json.Unmarshal(b, &v2.Packages); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", what, err)
		}
	} else if err := json.Unmarshal(b, &v2); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", what, err)
	}
	dev := map[string]bool{}
	for _, n := range v2.DevPackageNames {
		dev[n] = true
	}
	pkgs := make([]inventory.Package, 0, len(v2.Packages))
	for i, p := range v2.Packages {
		pkg, err := newPackage(what, i, p, dev[p.Name])
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, pkg)
	}
	return pkgs, nil
}

type composerLock struct {
	Packages    []composerPackage `json:"packages"`
	PackagesDev []composerPackage `json:"packages-dev"`
}

// ParseComposerLock reads the "packages" and "packages-dev" (Dev) of a
// composer.lock file.
func ParseComposerLock(b []byte) ([]inventory.Package, error) {
	const what = "composer.lock"
	var lock composerLock
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", what, err)
	}
	pkgs := make([]inventory.Package, 0, len(lock.Packages)+len(lock.PackagesDev))
	for i, p := range lock.Packages {
		pkg, err := newPackage(what+` "packages"`, i, p, false)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, pkg)
	}
	for i, p := range lock.PackagesDev {
		pkg, err := newPackage(what+` "packages-dev"`, i, p, true)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, pkg)
	}
	return pkgs, nil
}

// newPackage checks and converts entry i of a package list.
func newPackage(what string, i int, p composerPackage, dev bool) (inventory.Package, error) {
	if p.Name == "" || p.Version == "" {
		return inventory.Package{}, fmt.Errorf("parsing %s: package number %d has no name or version", what, i+1)
	}
	return inventory.Package{
		Name:     p.Name,
		Version:  p.Version,
		Type:     inventory.TypeComposer,
		PURL:     PURL(p.Name, p.Version),
		Licenses: licenses(p.License),
		Dev:      dev,
	}, nil
}

// licenses reads a license field: an array of SPDX strings, or a single
// string. Other shapes are ignored.
func licenses(raw json.RawMessage) []string {
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" {
			return nil
		}
		list = []string{s}
	}
	return list
}
