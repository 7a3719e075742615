// Package rust finds Rust crates in Cargo.lock files and in binaries built
// with cargo-auditable.
//
// Cargo.lock: every [[package]] is reported. Packages with a source
// (registry "registry+..." or "sparse+...", git "git+...") are the
// dependencies that count for vulnerability matching; packages without a
// source are workspace members or path dependencies (Cargo.lock does not
// tell them apart) and are reported with Metadata "workspaceMember"="true".
// Metadata "source" holds the source verbatim (for git it includes the
// commit).
//
// Auditable binaries: cargo-auditable stores the dependency tree as
// zlib-compressed JSON in the ELF section ".dep-v0". Each package is
// reported; the root crate gets Metadata "root"="true", build-time
// dependencies Metadata "kind"="build", and Metadata "source" is the
// source kind cargo-auditable recorded ("crates.io", "git", "local", ...).
// Only ELF binaries are read.
package rust

import (
	"context"
	"fmt"
	"path"

	"github.com/BurntSushi/toml"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/package-url/packageurl-go"
)

type cargoLock struct{}

// NewCargoLock returns the Cargo.lock extractor.
func NewCargoLock() inventory.Extractor { return cargoLock{} }

// All returns every extractor of this package.
func All() []inventory.Extractor { return []inventory.Extractor{NewCargoLock(), NewAuditable()} }

func (cargoLock) Name() string { return "language/rust/cargolock" }

func (cargoLock) Version() int { return 1 }

func (cargoLock) Required(fi inventory.FileInfo) bool { return path.Base(fi.Path) == "Cargo.lock" }

func (cargoLock) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, inventory.MaxManifestSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	pkgs, err := ParseCargoLock(b)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{Packages: pkgs}, nil
}

type lockFile struct {
	Package []struct {
		Name    string `toml:"name"`
		Version string `toml:"version"`
		Source  string `toml:"source"`
	} `toml:"package"`
}

// ParseCargoLock reads the packages of a Cargo.lock file.
func ParseCargoLock(b []byte) ([]inventory.Package, error) {
	var lf lockFile
	if err := toml.Unmarshal(b, &lf); err != nil {
		return nil, fmt.Errorf("parsing Cargo.lock: %w", err)
	}
	pkgs := make([]inventory.Package, 0, len(lf.Package))
	for i, p := range lf.Package {
		if p.Name == "" || p.Version == "" {
			return nil, fmt.Errorf("parsing Cargo.lock: [[package]] number %d has no name or version", i+1)
		}
		meta := map[string]string{}
		if p.Source == "" {
			meta["workspaceMember"] = "true"
		} else {
			meta["source"] = p.Source
		}
		pkgs = append(pkgs, newPackage(p.Name, p.Version, meta))
	}
	return pkgs, nil
}

func newPackage(name, version string, meta map[string]string) inventory.Package {
	return inventory.Package{
		Name:     name,
		Version:  version,
		Type:     inventory.TypeCargo,
		PURL:     packageurl.NewPackageURL(packageurl.TypeCargo, "", name, version, nil, "").ToString(),
		Metadata: meta,
	}
}
