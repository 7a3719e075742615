// Package python finds Python packages: installed distributions
// (*.dist-info/METADATA, *.egg-info/PKG-INFO, *.egg-info files,
// EGG-INFO/PKG-INFO) and the packages pinned by poetry.lock, Pipfile.lock
// and requirements*.txt files.
//
// Names are reported as the files spell them, except for requirements
// files, whose names are reported normalized (PEP 503). Package URLs always
// use the normalized name.
package python

import (
	"regexp"
	"sort"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/package-url/packageurl-go"
)

// All returns every extractor of this package.
func All() []inventory.Extractor {
	return []inventory.Extractor{NewInstalled(), NewPoetryLock(), NewPipfileLock(), NewRequirements()}
}

var separatorRuns = regexp.MustCompile(`[-_.]+`)

// NormalizeName normalizes a distribution name as PEP 503 does: lowercase,
// with every run of "-", "_" and "." replaced by one "-".
func NormalizeName(name string) string {
	return separatorRuns.ReplaceAllString(strings.ToLower(name), "-")
}

// PURL returns the package URL of a PyPI package.
func PURL(name, version string) string {
	return packageurl.NewPackageURL(packageurl.TypePyPi, "", NormalizeName(name), version, nil, "").ToString()
}

func newPackage(name, version string, licenses []string, dev bool) inventory.Package {
	return inventory.Package{
		Name:     name,
		Version:  version,
		Type:     inventory.TypePyPI,
		PURL:     PURL(name, version),
		Licenses: licenses,
		Dev:      dev,
	}
}

// collector keeps one package per normalized name and version.
type collector struct {
	pkgs  []inventory.Package
	index map[string]int
}

// add records a package. A package seen again is Dev only if every
// occurrence is.
func (c *collector) add(p inventory.Package) {
	if c.index == nil {
		c.index = map[string]int{}
	}
	key := NormalizeName(p.Name) + "@" + p.Version
	if i, ok := c.index[key]; ok {
		c.pkgs[i].Dev = c.pkgs[i].Dev && p.Dev
		return
	}
	c.index[key] = len(c.pkgs)
	c.pkgs = append(c.pkgs, p)
}

// sorted returns the packages sorted by name and version.
func (c *collector) sorted() []inventory.Package {
	sort.SliceStable(c.pkgs, func(i, j int) bool {
		if c.pkgs[i].Name != c.pkgs[j].Name {
			return c.pkgs[i].Name < c.pkgs[j].Name
		}
		return c.pkgs[i].Version < c.pkgs[j].Version
	})
	return c.pkgs
}
