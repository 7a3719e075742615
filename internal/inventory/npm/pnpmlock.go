package npm

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
	"gopkg.in/yaml.v3"
)

type pnpmLock struct{}

// NewPnpmLock returns the extractor for pnpm-lock.yaml (lockfileVersion
// 5.x, 6.x and 9.x).
func NewPnpmLock() inventory.Extractor { return pnpmLock{} }

func (pnpmLock) Name() string { return "language/npm/pnpmlock" }

func (pnpmLock) Version() int { return 1 }

func (pnpmLock) Required(fi inventory.FileInfo) bool {
	return path.Base(fi.Path) == "pnpm-lock.yaml" && !inNodeModules(fi.Path)
}

func (pnpmLock) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, inventory.MaxManifestSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	pkgs, err := ParsePnpmLock(b)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{Packages: pkgs}, nil
}

type pnpmFile struct {
	LockfileVersion string                  `yaml:"lockfileVersion"`
	Importers       map[string]pnpmImporter `yaml:"importers"`
	Packages        map[string]pnpmPackage  `yaml:"packages"`
	Snapshots       map[string]pnpmSnapshot `yaml:"snapshots"`
}

type pnpmPackage struct {
	Name    string `yaml:"name"`
	Version string `yaml:"version"`
	Dev     *bool  `yaml:"dev"`
}

// pnpmImporter is a project of the workspace (lockfileVersion 9).
type pnpmImporter struct {
	Dependencies         map[string]pnpmImporterDep `yaml:"dependencies"`
	OptionalDependencies map[string]pnpmImporterDep `yaml:"optionalDependencies"`
	DevDependencies      map[string]pnpmImporterDep `yaml:"devDependencies"`
}

type pnpmImporterDep struct {
	Version string `yaml:"version"`
}

// pnpmSnapshot is a package in the dependency graph (lockfileVersion 9).
type pnpmSnapshot struct {
	Dependencies         map[string]string `yaml:"dependencies"`
	OptionalDependencies map[string]string `yaml:"optionalDependencies"`
}

// ParsePnpmLock reads the packages of a pnpm-lock.yaml file. Versions 5
// and 6 record a dev flag with each package; for version 9 a package is Dev
// when no production or optional dependency of any importer leads to it.
func ParsePnpmLock(b []byte) ([]inventory.Package, error) {
	var lock pnpmFile
	if err := yaml.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("parsing pnpm-lock.yaml: %w", err)
	}
	if lock.LockfileVersion == "" {
		return nil, fmt.Errorf("parsing pnpm-lock.yaml: no lockfileVersion")
	}
	v5 := strings.HasPrefix(lock.LockfileVersion, "5") || strings.HasPrefix(lock.LockfileVersion, "4") || strings.HasPrefix(lock.LockfileVersion, "3")
	var prod map[string]bool
	if lock.Snapshots != nil {
		prod = pnpmProduction(&lock)
	}
	var c inventory.Collector
	for key, p := range lock.Packages {
		if localProtocols[protocol(key)] {
			continue
		}
		name, version := p.Name, p.Version
		if name == "" || version == "" {
			var ok bool
			name, version, ok = parsePnpmKey(key, v5)
			if !ok {
				return nil, fmt.Errorf("parsing pnpm-lock.yaml: cannot read a name and version from package key %q", key)
			}
		}
		if localProtocols[protocol(version)] {
			continue
		}
		dev := p.Dev != nil && *p.Dev
		if prod != nil {
			dev = !prod[name+"@"+version]
		}
		c.Add(newPackage(name, version, nil, dev))
	}
	return c.Sorted(), nil
}

// parsePnpmKey reads a key of "packages": "/name/1.0.0_peer@2.0.0" (v5),
// "/name@1.0.0(peer@2.0.0)" (v6) or "name@1.0.0" (v9). Peer-dependency
// suffixes are dropped.
func parsePnpmKey(key string, v5 bool) (name, version string, ok bool) {
	key = strings.TrimPrefix(key, "/")
	if v5 {
		i := strings.LastIndex(key, "/")
		if i <= 0 {
			return "", "", false
		}
		name, version = key[:i], key[i+1:]
		version, _, _ = strings.Cut(version, "_")
	} else {
		name, version, ok = splitNameVersion(key)
		if !ok {
			return "", "", false
		}
	}
	version, _, _ = strings.Cut(version, "(")
	return name, version, name != "" && version != ""
}

// pnpmProduction returns the "name@version" keys of every package that a
// production or optional dependency of an importer leads to, following the
// snapshots graph of lockfileVersion 9.
func pnpmProduction(lock *pnpmFile) map[string]bool {
	seen := map[string]bool{}
	var queue []string
	push := func(name, ref string) {
		key := name + "@" + ref
		if base, _, _ := strings.Cut(ref, "("); strings.Contains(base, "@") {
			key = ref // an alias: ref is "real-name@version"
		}
		if strings.HasPrefix(ref, "link:") || seen[key] {
			return
		}
		seen[key] = true
		// The bare name@version (without peer suffix) marks the package.
		if n, v, ok := parsePnpmKey(key, false); ok {
			seen[n+"@"+v] = true
		}
		queue = append(queue, key)
	}
	for _, imp := range lock.Importers {
		for name, d := range imp.Dependencies {
			push(name, d.Version)
		}
		for name, d := range imp.OptionalDependencies {
			push(name, d.Version)
		}
	}
	for len(queue) > 0 {
		key := queue[0]
		queue = queue[1:]
		s := lock.Snapshots[key]
		for name, ref := range s.Dependencies {
			push(name, ref)
		}
		for name, ref := range s.OptionalDependencies {
			push(name, ref)
		}
	}
	return seen
}
