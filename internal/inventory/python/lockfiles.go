package python

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/mamorisec/mamori/internal/inventory"
)

// lockExtractor is an extractor for a lock file with a fixed base name.
type lockExtractor struct {
	name  string
	base  func(string) bool
	parse func([]byte) ([]inventory.Package, error)
}

func (e lockExtractor) Name() string { return e.name }

func (lockExtractor) Version() int { return 1 }

func (e lockExtractor) Required(fi inventory.FileInfo) bool { return e.base(path.Base(fi.Path)) }

func (e lockExtractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
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

// NewPoetryLock returns the extractor for poetry.lock files.
func NewPoetryLock() inventory.Extractor {
	return lockExtractor{
		name:  "language/python/poetrylock",
		base:  func(b string) bool { return b == "poetry.lock" },
		parse: ParsePoetryLock,
	}
}

// NewPipfileLock returns the extractor for Pipfile.lock files.
func NewPipfileLock() inventory.Extractor {
	return lockExtractor{
		name:  "language/python/pipfilelock",
		base:  func(b string) bool { return b == "Pipfile.lock" },
		parse: ParsePipfileLock,
	}
}

type poetryLock struct {
	Package []struct {
		Name     string   `toml:"name"`
		Version  string   `toml:"version"`
		Category string   `toml:"category"`
		Groups   []string `toml:"groups"`
		Source   struct {
			Type string `toml:"type"`
		} `toml:"source"`
	} `toml:"package"`
}

// ParsePoetryLock reads the [[package]] entries of a poetry.lock file. A
// package is Dev when its category is "dev" (Poetry before 1.5) or when its
// groups (Poetry 2) do not include "main". Packages from git, URLs or
// local paths get Metadata "source" with the source type.
func ParsePoetryLock(b []byte) ([]inventory.Package, error) {
	var lock poetryLock
	if err := toml.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("parsing poetry.lock: %w", err)
	}
	c := inventory.Collector{Key: pythonKey}
	for i, p := range lock.Package {
		if p.Name == "" || p.Version == "" {
			return nil, fmt.Errorf("parsing poetry.lock: [[package]] number %d has no name or version", i+1)
		}
		dev := p.Category == "dev" || (len(p.Groups) > 0 && !slices.Contains(p.Groups, "main"))
		pkg := newPackage(p.Name, p.Version, nil, dev)
		if p.Source.Type != "" {
			pkg.Metadata = map[string]string{"source": p.Source.Type}
		}
		c.Add(pkg)
	}
	return c.Sorted(), nil
}

type pipfileLock struct {
	Default map[string]pipfileEntry `json:"default"`
	Develop map[string]pipfileEntry `json:"develop"`
}

type pipfileEntry struct {
	Version string `json:"version"`
}

// ParsePipfileLock reads the "default" and "develop" sections of a
// Pipfile.lock. Entries without an exact "==" version (VCS and editable
// dependencies) are skipped.
func ParsePipfileLock(b []byte) ([]inventory.Package, error) {
	var lock pipfileLock
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("parsing Pipfile.lock: %w", err)
	}
	c := inventory.Collector{Key: pythonKey}
	for _, section := range []struct {
		entries map[string]pipfileEntry
		dev     bool
	}{{lock.Default, false}, {lock.Develop, true}} {
		for name, e := range section.entries {
			v, ok := strings.CutPrefix(strings.TrimSpace(e.Version), "==")
			if v = strings.TrimSpace(v); !ok || name == "" || v == "" || strings.HasPrefix(v, "=") {
				continue
			}
			c.Add(newPackage(name, v, nil, section.dev))
		}
	}
	return c.Sorted(), nil
}
