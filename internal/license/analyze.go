package license

import (
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

// Where a package's license came from (PackageLicense.Source).
const (
	// FromDeclared: the package's own metadata (inventory.Package.Licenses).
	FromDeclared = "declared"
	// FromFile: license files in the package's directory, used when the
	// package declares nothing or nothing mamori recognizes.
	FromFile = "file"
	// FromSourcePackage: the declared licenses of another Debian package
	// built from the same source package. Debian lets such packages share
	// one /usr/share/doc directory through a symlink (libncurses6 ->
	// libtinfo6), so only one of them has a copyright file of its own.
	FromSourcePackage = "source-package"
	// FromWellKnown: a license mamori knows without looking (the Go
	// standard library, which Go binaries report as module "stdlib").
	FromWellKnown = "well-known"
)

// Report is the license analysis of one image.
type Report struct {
	// Packages holds one entry per inventory package, in inventory order.
	Packages []PackageLicense `json:"packages"`
	// Files are license file findings that belong to no package (the
	// application's own /app/LICENSE, vendored code).
	Files []inventory.Finding `json:"files,omitempty"`
	// Summary counts packages per category and license.
	Summary Summary `json:"summary"`
}

// PackageLicense is the license of one package.
type PackageLicense struct {
	// Key is inventory.Package.Key().
	Key     string `json:"key"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Type    string `json:"type"`
	PURL    string `json:"purl,omitempty"`
	// Declared are the licenses the package declares, verbatim.
	Declared []string `json:"declared,omitempty"`
	// Expression is the package's SPDX license expression, "" when none
	// was found.
	Expression string `json:"expression,omitempty"`
	// IDs are the license identifiers in Expression, sorted.
	IDs []string `json:"ids,omitempty"`
	// Category is the category of Expression (Unknown when empty).
	Category Category `json:"category"`
	// Source is FromDeclared, FromFile, FromSourcePackage, FromWellKnown
	// or "" (no license found).
	Source string `json:"source,omitempty"`
	// Files are the license files found in the package's directory.
	Files []string `json:"files,omitempty"`
	// Unrecognized lists declared strings that became LicenseRefs.
	Unrecognized []string `json:"unrecognized,omitempty"`

	expr *Expr
}

// Expr returns Expression parsed, nil when there is none.
func (p *PackageLicense) Expr() *Expr { return p.expr }

// Summary counts an image's packages by license category and identifier.
type Summary struct {
	// Packages is the number of packages.
	Packages int `json:"packages"`
	// WithLicense is the number of packages with a license expression.
	WithLicense int `json:"withLicense"`
	// ByCategory counts packages per category of their expression.
	ByCategory map[Category]int `json:"byCategory"`
	// ByLicense counts packages per license identifier they mention.
	ByLicense map[string]int `json:"byLicense"`
	// Unknown lists the keys of packages whose category is Unknown.
	Unknown []string `json:"unknown,omitempty"`
}

// Analyze normalizes every package's declared licenses, attributes the
// license file findings of rep to the packages whose directories hold
// them, and counts the results. A package that declares nothing, or
// nothing with a known category (only unrecognized text or
// LicenseRef-proprietary), takes the licenses of its files instead,
// joined with AND. A declared family name without a version ("BSD
// License", "GPL") takes the family member that the package's license
// files name. A Debian package that declares nothing takes the
// licenses of a package built from the same source; the Go standard
// library is BSD-3-Clause.
func Analyze(rep *inventory.Report) *Report {
	bySource := map[string][]string{}
	for _, p := range rep.Packages {
		if k := sourceKey(&p); k != "" && len(p.Licenses) > 0 && bySource[k] == nil {
			bySource[k] = p.Licenses
		}
	}
	byDir := map[string][]inventory.Finding{}
	dirs := map[string]bool{}
	for i := range rep.Packages {
		if d := packageRoot(&rep.Packages[i]); d != "" {
			dirs[d] = true
		}
	}
	var loose []inventory.Finding
	for _, f := range rep.Findings {
		if f.Kind != inventory.KindLicense {
			continue
		}
		d := PackageDir(path.Dir(f.Path))
		if d == "" {
			d = path.Dir(f.Path)
		}
		if dirs[d] {
			byDir[d] = append(byDir[d], f)
		} else {
			loose = append(loose, f)
		}
	}
	r := &Report{
		Files: loose,
		Summary: Summary{
			Packages:   len(rep.Packages),
			ByCategory: map[Category]int{},
			ByLicense:  map[string]int{},
		},
	}
	for i := range rep.Packages {
		p := &rep.Packages[i]
		pl := PackageLicense{
			Key: p.Key(), Name: p.Name, Version: p.Version, Type: p.Type, PURL: p.PURL,
			Declared: p.Licenses,
		}
		n := Normalize(p.Type, p.Licenses)
		pl.Unrecognized = n.Unrecognized
		if n.Expr != nil {
			pl.expr, pl.Source = n.Expr, FromDeclared
		} else if shared := bySource[sourceKey(p)]; shared != nil {
			n = Normalize(p.Type, shared)
			pl.expr, pl.Source = n.Expr, FromSourcePackage
		} else if p.Type == inventory.TypeGolang && p.Name == "stdlib" {
			pl.expr, pl.Source = &Expr{ID: "BSD-3-Clause"}, FromWellKnown
		}
		files := byDir[packageRoot(p)]
		for _, f := range files {
			if !slices.Contains(pl.Files, f.Path) {
				pl.Files = append(pl.Files, f.Path)
			}
		}
		if fe := fileExpr(files); fe != nil && !knownCategory(pl.expr) {
			pl.expr, pl.Source = fe, FromFile
		} else if fe != nil {
			pl.expr = refine(pl.expr, fe)
		}
		pl.Category = ExpressionCategory(pl.expr)
		if pl.expr != nil {
			pl.Expression = pl.expr.String()
			for _, l := range pl.expr.Leaves() {
				if !slices.Contains(pl.IDs, l.ID) {
					pl.IDs = append(pl.IDs, l.ID)
				}
			}
			sort.Strings(pl.IDs)
			r.Summary.WithLicense++
		}
		for _, id := range pl.IDs {
			r.Summary.ByLicense[id]++
		}
		r.Summary.ByCategory[pl.Category]++
		if pl.Category == Unknown {
			r.Summary.Unknown = append(r.Summary.Unknown, pl.Key)
		}
		r.Packages = append(r.Packages, pl)
	}
	return r
}

// sourceKey names the source package of a Debian package, "" for other
// types.
func sourceKey(p *inventory.Package) string {
	if p.Type != inventory.TypeDeb {
		return ""
	}
	if p.SourceName != "" {
		return p.SourceName + " " + p.SourceVersion
	}
	return p.Name + " " + p.Version
}

// knownCategory reports whether some license in e has a category other
// than Unknown.
func knownCategory(e *Expr) bool {
	if e == nil {
		return false
	}
	for _, l := range e.Leaves() {
		if leafCategory(l.ID, l.Exception) != Unknown {
			return true
		}
	}
	return false
}

// families maps mamori's references for license families to the prefix
// of the SPDX identifiers of their members.
var families = map[string]string{
	"LicenseRef-BSD": "BSD-", "LicenseRef-GPL": "GPL-", "LicenseRef-LGPL": "LGPL-",
}

// refine replaces family references in a declared expression ("BSD
// License" from a PyPI classifier is LicenseRef-BSD) with the one member of
// the family that the package's license files name (BSD-3-Clause).
func refine(e, files *Expr) *Expr {
	if e.Op != "" {
		args := make([]*Expr, len(e.Args))
		for i, a := range e.Args {
			args[i] = refine(a, files)
		}
		return join(e.Op, args)
	}
	prefix, ok := families[e.ID]
	if !ok {
		return e
	}
	var member *Expr
	for _, l := range files.Leaves() {
		if strings.HasPrefix(l.ID, prefix) {
			if member != nil {
				return e
			}
			member = l
		}
	}
	if member == nil {
		return e
	}
	return &Expr{ID: member.ID, Exception: e.Exception}
}

// fileExpr joins the licenses of license file findings with AND, leaving
// out LicenseRefs when an SPDX license was found too.
func fileExpr(fs []inventory.Finding) *Expr {
	var ids, refs []*Expr
	for _, f := range fs {
		e := &Expr{ID: f.RuleID}
		if strings.HasPrefix(f.RuleID, "LicenseRef-") {
			refs = append(refs, e)
		} else if _, ok := spdxID(f.RuleID); ok {
			ids = append(ids, e)
		}
	}
	if len(ids) == 0 {
		ids = refs
	}
	if len(ids) == 0 {
		return nil
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].ID < ids[j].ID })
	return join(OpAnd, ids)
}

// packageRoot returns the directory that holds a package's files, where
// its license files are: the directory of an npm package.json, the Python
// *.dist-info or *.egg-info directory, the gems/NAME-VERSION directory of
// an installed gem specification, vendor/NAME for Composer packages. It
// returns "" when the package's files are not in one place of its own
// (OS packages, lock file entries, modules inside binaries).
func packageRoot(p *inventory.Package) string {
	dir, base := path.Split(p.Path)
	dir = strings.TrimSuffix(dir, "/")
	switch p.Type {
	case inventory.TypeNPM:
		if base == "package.json" {
			return dir
		}
	case inventory.TypePyPI:
		if strings.HasSuffix(dir, ".dist-info") || strings.HasSuffix(dir, ".egg-info") {
			return dir
		}
	case inventory.TypeGem:
		if strings.HasSuffix(base, ".gemspec") {
			spec := dir
			if path.Base(spec) == "default" {
				spec = path.Dir(spec)
			}
			if path.Base(spec) == "specifications" {
				return path.Join(path.Dir(spec), "gems", strings.TrimSuffix(base, ".gemspec"))
			}
		}
	case inventory.TypeComposer:
		if base == "installed.json" && path.Base(dir) == "composer" {
			return path.Join(path.Dir(dir), p.Name)
		}
	}
	return ""
}
