// Package dotnet finds NuGet packages in .NET dependency manifests: the
// *.deps.json file the SDK writes next to every built application, and the
// packages.lock.json lock file of a project.
//
// deps.json: every entry of "libraries" of type "package" (a NuGet package)
// or "runtimepack" (the runtime of a self-contained application, itself a
// NuGet package) is reported; "project" and "reference" entries are the
// application's own code and are skipped. Metadata "libraryType" holds the
// type and "runtimeTarget" the target framework.
//
// packages.lock.json: every resolved dependency of every target framework is
// reported once per name and version, with Metadata "dependencyType" (
// "Direct" when the package is a direct dependency for any framework,
// otherwise "Transitive" or "CentralTransitive") and "targetFrameworks" (the
// comma-separated, sorted frameworks it is resolved for). "Project" entries
// are skipped.
package dotnet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/package-url/packageurl-go"
)

// All returns every extractor of this package.
func All() []inventory.Extractor { return []inventory.Extractor{NewDepsJSON(), NewPackagesLock()} }

type depsJSON struct{}

// NewDepsJSON returns the *.deps.json extractor.
func NewDepsJSON() inventory.Extractor { return depsJSON{} }

func (depsJSON) Name() string { return "language/dotnet/depsjson" }

func (depsJSON) Version() int { return 1 }

func (depsJSON) Required(fi inventory.FileInfo) bool {
	return strings.HasSuffix(fi.Path, ".deps.json") && !strings.HasSuffix(fi.Path, "/.deps.json")
}

func (depsJSON) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	return extract(in, ParseDepsJSON)
}

type packagesLock struct{}

// NewPackagesLock returns the packages.lock.json extractor.
func NewPackagesLock() inventory.Extractor { return packagesLock{} }

func (packagesLock) Name() string { return "language/dotnet/packageslock" }

func (packagesLock) Version() int { return 1 }

func (packagesLock) Required(fi inventory.FileInfo) bool {
	return path.Base(fi.Path) == "packages.lock.json"
}

func (packagesLock) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	return extract(in, ParsePackagesLock)
}

func extract(in *inventory.Input, parse func([]byte) ([]inventory.Package, error)) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, inventory.MaxManifestSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	pkgs, err := parse(b)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{Packages: pkgs}, nil
}

// ParseDepsJSON reads the packages of a .deps.json file, sorted by name and
// version.
func ParseDepsJSON(b []byte) ([]inventory.Package, error) {
	var doc struct {
		RuntimeTarget struct {
			Name string `json:"name"`
		} `json:"runtimeTarget"`
		Libraries map[string]struct {
			Type string `json:"type"`
		} `json:"libraries"`
	}
	if err := json.Unmarshal(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), &doc); err != nil {
		return nil, fmt.Errorf("parsing deps.json: %w", err)
	}
	if doc.Libraries == nil {
		return nil, fmt.Errorf("parsing deps.json: no \"libraries\" object")
	}
	var pkgs []inventory.Package
	for key, lib := range doc.Libraries {
		if lib.Type != "package" && lib.Type != "runtimepack" {
			continue
		}
		name, version, ok := strings.Cut(key, "/")
		if !ok || name == "" || version == "" {
			return nil, fmt.Errorf("parsing deps.json: library %q is not \"Name/Version\"", key)
		}
		meta := map[string]string{"libraryType": lib.Type}
		if doc.RuntimeTarget.Name != "" {
			meta["runtimeTarget"] = doc.RuntimeTarget.Name
		}
		pkgs = append(pkgs, newPackage(name, version, meta))
	}
	sortPackages(pkgs)
	return pkgs, nil
}

// ParsePackagesLock reads the resolved packages of a packages.lock.json
// file, sorted by name and version.
func ParsePackagesLock(b []byte) ([]inventory.Package, error) {
	var doc struct {
		Version      int `json:"version"`
		Dependencies map[string]map[string]struct {
			Type     string `json:"type"`
			Resolved string `json:"resolved"`
		} `json:"dependencies"`
	}
	if err := json.Unmarshal(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), &doc); err != nil {
		return nil, fmt.Errorf("parsing packages.lock.json: %w", err)
	}
	if doc.Dependencies == nil {
		return nil, fmt.Errorf("parsing packages.lock.json: no \"dependencies\" object")
	}
	type found struct {
		depType    string
		frameworks []string
	}
	byKey := map[[2]string]*found{}
	for framework, deps := range doc.Dependencies {
		for name, d := range deps {
			if d.Type == "Project" {
				continue
			}
			if name == "" || d.Resolved == "" {
				return nil, fmt.Errorf("parsing packages.lock.json: %q (%s) has no resolved version", name, framework)
			}
			k := [2]string{name, d.Resolved}
			f := byKey[k]
			if f == nil {
				f = &found{depType: d.Type}
				byKey[k] = f
			}
			if d.Type == "Direct" {
				f.depType = "Direct"
			}
			f.frameworks = append(f.frameworks, framework)
		}
	}
	pkgs := make([]inventory.Package, 0, len(byKey))
	for k, f := range byKey {
		slices.Sort(f.frameworks)
		pkgs = append(pkgs, newPackage(k[0], k[1], map[string]string{
			"dependencyType":   f.depType,
			"targetFrameworks": strings.Join(slices.Compact(f.frameworks), ","),
		}))
	}
	sortPackages(pkgs)
	return pkgs, nil
}

func newPackage(name, version string, meta map[string]string) inventory.Package {
	return inventory.Package{
		Name:     name,
		Version:  version,
		Type:     inventory.TypeNuGet,
		PURL:     packageurl.NewPackageURL(packageurl.TypeNuget, "", name, version, nil, "").ToString(),
		Metadata: meta,
	}
}

func sortPackages(pkgs []inventory.Package) {
	slices.SortFunc(pkgs, func(a, b inventory.Package) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Version, b.Version)
	})
}
