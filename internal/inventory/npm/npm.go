// Package npm finds JavaScript packages: packages installed in node_modules
// directories and the packages pinned by npm, Yarn and pnpm lock files.
//
// Installed packages are read from node_modules/NAME/package.json and
// node_modules/@SCOPE/NAME/package.json only; other package.json files
// (the application's own, or files deeper inside a package) are ignored.
//
// Lock files are read only outside node_modules (npm keeps a hidden
// node_modules/.package-lock.json that would repeat the installed
// packages). Local packages (workspace members, "file:" and "link:"
// dependencies) are not reported: they are part of the project itself.
// A package that a lock file holds several times with the same version is
// reported once; it is Dev only when every occurrence is a development
// dependency.
package npm

import (
	"encoding/json"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/package-url/packageurl-go"
)

// All returns every extractor of this package.
func All() []inventory.Extractor {
	return []inventory.Extractor{NewInstalled(), NewLockfile(), NewYarnLock(), NewPnpmLock()}
}

// PURL returns the package URL of an npm package. Scoped names
// ("@babel/core") put the scope in the namespace; the purl spec asks for
// lowercase names.
func PURL(name, version string) string {
	name = strings.ToLower(name)
	ns := ""
	if scope, n, ok := strings.Cut(name, "/"); ok && strings.HasPrefix(scope, "@") {
		ns, name = scope, n
	}
	return packageurl.NewPackageURL(packageurl.TypeNPM, ns, name, version, nil, "").ToString()
}

func newPackage(name, version string, licenses []string, dev bool) inventory.Package {
	return inventory.Package{
		Name:     name,
		Version:  version,
		Type:     inventory.TypeNPM,
		PURL:     PURL(name, version),
		Licenses: licenses,
		Dev:      dev,
	}
}

// inNodeModules reports whether a path lies inside a node_modules directory.
func inNodeModules(p string) bool { return strings.Contains(p, "/node_modules/") }

// parseLicenses reads the license declarations of package.json (and of
// package-lock.json v3 entries): "license" as an SPDX string or a legacy
// {"type": ...} object, and the legacy "licenses" array of strings or
// objects. Shapes it does not know are ignored: licenses are informative
// and must not make a package unreadable.
func parseLicenses(license, licenses json.RawMessage) []string {
	var out []string
	add := func(raw json.RawMessage) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
			return
		}
		var obj struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(raw, &obj) == nil {
			if t := strings.TrimSpace(obj.Type); t != "" {
				out = append(out, t)
			}
		}
	}
	for _, raw := range []json.RawMessage{license, licenses} {
		if len(raw) == 0 {
			continue
		}
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) == nil {
			for _, l := range list {
				add(l)
			}
			continue
		}
		add(raw)
	}
	return out
}

// splitNameVersion splits "name@version" and "@scope/name@version" at the
// "@" that ends the name.
func splitNameVersion(s string) (name, version string, ok bool) {
	start := 0
	if strings.HasPrefix(s, "@") {
		start = 1
	}
	i := strings.Index(s[start:], "@")
	if i < 0 {
		return "", "", false
	}
	i += start
	return s[:i], s[i+1:], i > 0
}
