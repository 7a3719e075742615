package license

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/google/licensecheck"

	"github.com/mamorisec/mamori/internal/inventory"
)

// MaxFileSize is the largest license file the extractor reads. License
// texts are a few KiB; the GPL is 35 KiB and bundles of third-party
// notices rarely pass 512 KiB.
const MaxFileSize = 1 << 20

// Engine is the Finding.Engine of license file findings.
const Engine = "licensecheck"

type fileExtractor struct{}

// NewFileExtractor returns the extractor that classifies license files
// (LICENSE, LICENCE, COPYING, UNLICENSE and their variants such as
// LICENSE.md, LICENSE-MIT, COPYING.LESSER, MIT-LICENSE) with
// github.com/google/licensecheck. It looks only where a license file
// belongs to a package or to the image's application: the root of an npm
// package in node_modules, a Python *.dist-info or *.egg-info directory
// (and its licenses/ subdirectory), an installed gem, a Composer or Go
// vendor directory, the Go module and Cargo registry caches, and the top
// two directory levels (/LICENSE, /app/LICENSE). It leaves
// /usr/share/doc to the dpkg copyright extractor.
//
// Each license the file matches gives one Finding of kind
// inventory.KindLicense whose RuleID is the SPDX identifier (or a
// LicenseRef for licenses outside the SPDX list), Category its category,
// and Metadata["coverage"] the percentage of the file's text that matched
// known licenses.
func NewFileExtractor() inventory.Extractor { return fileExtractor{} }

func (fileExtractor) Name() string { return "license/file" }

func (fileExtractor) Version() int { return 1 }

func (fileExtractor) Required(fi inventory.FileInfo) bool {
	return fi.Size > 0 && fi.Size <= MaxFileSize && IsLicenseFileName(path.Base(fi.Path)) && inPackageDir(fi.Path)
}

func (fileExtractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, MaxFileSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{Findings: Classify(b)}, nil
}

// Classify finds the licenses in a license file's text. Findings come in
// the order of their first match; Path and Layer are left for the walk.
func Classify(text []byte) []inventory.Finding {
	cov := licensecheck.Scan(text)
	var out []inventory.Finding
	index := map[string]int{}
	for _, m := range cov.Match {
		id := m.ID
		if e, _, ok := NormalizeString(id); ok && e.Op == "" && e.Exception == "" {
			id = e.ID
		} else {
			id = Ref(m.ID)
		}
		if i, ok := index[id]; ok {
			out[i].EndLine = lineAt(text, m.End)
			continue
		}
		index[id] = len(out)
		cat := CategoryOf(id)
		meta := map[string]string{"coverage": strconv.FormatFloat(cov.Percent, 'f', 1, 64)}
		if m.IsURL {
			meta["match"] = "url"
		}
		out = append(out, inventory.Finding{
			Kind:      inventory.KindLicense,
			RuleID:    id,
			Title:     fmt.Sprintf("%s license (%s)", id, cat),
			Severity:  "UNKNOWN",
			Category:  string(cat),
			Source:    inventory.SourceFile,
			StartLine: lineAt(text, m.Start),
			EndLine:   lineAt(text, m.End),
			Engine:    Engine,
			Metadata:  meta,
		})
	}
	return out
}

// lineAt returns the 1-based line of byte offset off.
func lineAt(text []byte, off int) int {
	off = min(max(off, 0), len(text))
	return bytes.Count(text[:off], []byte{'\n'}) + 1
}

// IsLicenseFileName reports whether base is the name of a license file:
// LICENSE, LICENCE, COPYING or UNLICENSE in any case, optionally followed
// by an extension or a suffix after ".", "-" or "_" (LICENSE.md,
// LICENSE-MIT, COPYING.LESSER, LICENSE_APACHE), or preceded by a license
// name and "-" or "_" (MIT-LICENSE, APACHE_LICENSE), but not source files
// (license.go, LICENSE.json). NOTICE files are not
// license files: they hold attributions that Apache-2.0 asks to keep.
func IsLicenseFileName(base string) bool {
	if len(base) > 64 {
		return false
	}
	b := strings.ToLower(base)
	if codeExt[path.Ext(b)] {
		return false
	}
	for _, stem := range []string{"license", "licence", "copying", "unlicense"} {
		if rest, ok := strings.CutPrefix(b, stem); ok {
			if rest == "" || rest[0] == '.' || rest[0] == '-' || rest[0] == '_' {
				return true
			}
		}
	}
	for _, ext := range []string{".md", ".txt", ".rst"} {
		b = strings.TrimSuffix(b, ext)
	}
	for _, suffix := range []string{"-license", "_license", "-licence", "_licence"} {
		if strings.HasSuffix(b, suffix) && len(b) > len(suffix) {
			return true
		}
	}
	return false
}

// codeExt are extensions of source and data files that happen to be
// named like license files (license.go, LICENSE.json).
var codeExt = map[string]bool{
	".go": true, ".js": true, ".mjs": true, ".cjs": true, ".ts": true, ".py": true,
	".pyc": true, ".rb": true, ".java": true, ".class": true, ".c": true, ".h": true,
	".json": true, ".html": true, ".htm": true, ".xml": true, ".yml": true,
	".yaml": true, ".sh": true, ".php": true, ".rs": true, ".map": true,
}

// inPackageDir reports whether the license file at p sits where a package
// or application keeps its license (see NewFileExtractor).
func inPackageDir(p string) bool {
	dir := path.Dir(p)
	switch {
	case strings.HasPrefix(dir, "/usr/share/doc/") || dir == "/usr/share/doc" ||
		strings.HasPrefix(dir, "/usr/share/common-licenses"):
		return false
	case strings.Count(dir, "/") <= 1:
		return true // "/" or "/app"
	case PackageDir(dir) != "":
		return true
	}
	if i := strings.LastIndex(dir, "/vendor/"); i >= 0 {
		return strings.Count(dir[i+len("/vendor/"):], "/") <= 3
	}
	if i := strings.LastIndex(dir, "/.cargo/registry/src/"); i >= 0 {
		return strings.Count(dir[i+len("/.cargo/registry/src/"):], "/") == 1
	}
	return strings.Contains(dir, "/pkg/mod/") && strings.Contains(path.Base(dir), "@")
}

// PackageDir returns the package directory that a license file in dir
// belongs to, when dir is the root of an npm package in node_modules, a
// Python metadata directory (or its licenses/ tree) or an installed gem:
// "/x/node_modules/@s/p", "/x/site-packages/p-1.0.dist-info",
// "/x/gems/rack-3.0.8". It returns "" for other directories.
func PackageDir(dir string) string {
	if i := strings.LastIndex(dir, "/node_modules/"); i >= 0 {
		rest := dir[i+len("/node_modules/"):]
		n := strings.Count(rest, "/")
		if rest != "" && (n == 0 && rest[0] != '@' || n == 1 && rest[0] == '@') {
			return dir
		}
		return ""
	}
	for _, meta := range []string{".dist-info", ".egg-info"} {
		if strings.HasSuffix(dir, meta) {
			return dir
		}
		if i := strings.Index(dir, meta+"/licenses"); i >= 0 {
			rest := dir[i+len(meta+"/licenses"):]
			if rest == "" || rest[0] == '/' {
				return dir[:i+len(meta)]
			}
		}
	}
	if path.Base(path.Dir(dir)) == "gems" {
		return dir
	}
	return ""
}
