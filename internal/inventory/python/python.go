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

// pythonKey identifies a distribution by its PEP 503 normalized name and
// version, so "PyYAML" and "pyyaml" are one package.
func pythonKey(p *inventory.Package) string { return NormalizeName(p.Name) + "@" + p.Version }
