package walk

import (
	"cmp"
	"path"
	"slices"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

// MergeOptions supply the OS-specific pieces the merge needs.
type MergeOptions struct {
	// SelectOS picks the image's OS from the OS release files that survive
	// in the final filesystem (keyed by path).
	SelectOS func(found map[string]*inventory.OS) *inventory.OS
	// OSPURL builds the package URL of an OS package once the OS is known.
	OSPURL func(p *inventory.Package, os *inventory.OS) string
	// KeepFS builds the merged file index (Merged.FS).
	KeepFS bool
}

// Node is a path in the merged filesystem.
type Node struct {
	Entry
	// Layer is the index of the layer that last wrote the path.
	Layer int
}

// FS is the merged view of an image's files (metadata only).
type FS struct {
	Nodes map[string]Node
}

// maxLinkHops bounds symlink resolution (as Linux's MAXSYMLINKS).
const maxLinkHops = 40

// Resolve follows symlinks in p inside the image and returns the final path.
// Resolution never leaves the image root: ".." at the root stays at the
// root, and absolute link targets are taken relative to the image root. It
// fails on loops and on dangling links.
func (f *FS) Resolve(p string) (string, bool) {
	hops := 0
	var walkPath func(p string) (string, bool)
	walkPath = func(p string) (string, bool) {
		parts := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
		cur := "/"
		for i, part := range parts {
			if part == "" {
				continue
			}
			next := path.Join(cur, part)
			n, ok := f.Nodes[next]
			if !ok {
				return "", false
			}
			if n.Type == TypeSymlink {
				hops++
				if hops > maxLinkHops {
					return "", false
				}
				target := n.Link
				if !strings.HasPrefix(target, "/") {
					target = path.Join(cur, target)
				}
				rest := strings.Join(parts[i+1:], "/")
				return walkPath(path.Join("/", target, rest))
			}
			cur = next
		}
		return cur, true
	}
	return walkPath(p)
}

// Merged is the result of applying all layers.
type Merged struct {
	Report *inventory.Report
	// FS is the merged file index; nil unless MergeOptions.KeepFS was set.
	FS *FS
}

type fileState struct {
	res   *FileResult
	layer int
}

// Merge applies the layers in order and assembles the inventory. layers[i]
// must be the result of image layer i; meta describes the layers for
// attribution. The merged file index (Merged.FS) is built only when
// opts.KeepFS is set: the inventory itself needs just the files extractors
// read.
func Merge(layers []*LayerResult, meta []inventory.Layer, opts MergeOptions) *Merged {
	var fsys *FS
	// knownDirs holds every directory seen so far, explicit or implied by a
	// path below it (only with KeepFS). Entries may outlive a whiteout; that
	// only costs a scan.
	var knownDirs map[string]bool
	if opts.KeepFS {
		total := 0
		for _, lr := range layers {
			total += len(lr.Entries) + len(lr.entryData)/32
		}
		fsys = &FS{Nodes: make(map[string]Node, total)}
		knownDirs = make(map[string]bool, total/8)
	}
	results := map[string]*fileState{}
	var problems []inventory.Problem
	// buried are findings in files that a later layer removed or replaced.
	var buried []inventory.Finding
	bury := func(st *fileState) {
		for _, f := range st.res.Findings {
			if keepsWhenRemoved(f.Kind) {
				f.Removed = true
				f.Layer.Index = st.layer
				buried = append(buried, f)
			}
		}
	}

	for i, lr := range layers {
		problems = append(problems, lr.Problems...)
		// Whiteouts and opaque directories hide lower layers only, so they
		// are applied before this layer's own entries.
		if len(lr.Whiteouts) > 0 || len(lr.Opaque) > 0 {
			gone := map[string]bool{}
			for _, w := range lr.Whiteouts {
				gone[w] = true
			}
			opaque := map[string]bool{}
			for _, o := range lr.Opaque {
				opaque[o] = true
			}
			hidden := func(p string) bool {
				if gone[p] {
					return true
				}
				for d := path.Dir(p); ; d = path.Dir(d) {
					if gone[d] || opaque[d] {
						return true
					}
					if d == "/" {
						return false
					}
				}
			}
			removeIf(fsys, results, hidden, bury)
		}
		// A non-directory replacing a lower directory removes its contents.
		var resultDirs map[string]bool
		if i > 0 && len(results) > 0 {
			resultDirs = map[string]bool{}
			for p := range results {
				for d := path.Dir(p); d != "/" && !resultDirs[d]; d = path.Dir(d) {
					resultDirs[d] = true
				}
			}
		}
		// The file list matters only when it can replace lower results or
		// when the file index is wanted.
		var entries Entries
		if fsys != nil || len(results) > 0 {
			var err error
			if entries, err = lr.files(); err != nil {
				problems = append(problems, inventory.Problem{Layer: lr.DiffID, Message: err.Error() + "; rescan with --no-cache"})
			}
		}
		var replacedDirs map[string]bool
		for _, e := range entries {
			if e.Type != TypeDir && (resultDirs[e.Path] || knownDirs[e.Path]) {
				if replacedDirs == nil {
					replacedDirs = map[string]bool{}
				}
				replacedDirs[e.Path] = true
			}
		}
		if replacedDirs != nil {
			removeIf(fsys, results, func(p string) bool {
				for d := path.Dir(p); d != "/"; d = path.Dir(d) {
					if replacedDirs[d] {
						return true
					}
				}
				return false
			}, bury)
		}
		prev := map[string]*fileState{}
		for _, e := range entries {
			if fsys != nil {
				fsys.Nodes[e.Path] = Node{Entry: e, Layer: i}
				if e.Type == TypeDir {
					knownDirs[e.Path] = true
				}
				for d := path.Dir(e.Path); d != "/" && !knownDirs[d]; d = path.Dir(d) {
					knownDirs[d] = true
				}
			}
			if old, ok := results[e.Path]; ok {
				prev[e.Path] = old
				delete(results, e.Path)
				bury(old)
			}
		}
		for p, fr := range lr.Results {
			attribute(fr, prev[p], i)
			results[p] = &fileState{res: fr, layer: i}
		}
	}
	return &Merged{Report: assemble(results, buried, meta, opts, problems), FS: fsys}
}

// keepsWhenRemoved reports whether findings of a kind stay in the report
// when a later layer deletes or replaces the file: a secret or malware in a
// lower layer still ships in the image, a license text or a cache file that
// is gone does not matter.
func keepsWhenRemoved(kind string) bool {
	return kind == inventory.KindSecret || kind == inventory.KindMalware
}

// removeIf deletes the paths matching gone from the file index (if any) and
// from the extractor results, handing each removed result to removed.
func removeIf(fsys *FS, results map[string]*fileState, gone func(string) bool, removed func(*fileState)) {
	if fsys != nil {
		for p := range fsys.Nodes {
			if gone(p) {
				delete(fsys.Nodes, p)
			}
		}
	}
	for p, st := range results {
		if gone(p) {
			delete(results, p)
			removed(st)
		}
	}
}

// attribute sets the layer of each package: the layer that first introduced
// the same package in the same file, when the file was rewritten by later
// layers (a package database grows layer by layer).
func attribute(fr *FileResult, old *fileState, layer int) {
	var before map[string]int
	if old != nil {
		before = make(map[string]int, len(old.res.Packages))
		for _, p := range old.res.Packages {
			before[p.Key()] = p.Layer.Index
		}
	}
	for i := range fr.Packages {
		if l, ok := before[fr.Packages[i].Key()]; ok {
			fr.Packages[i].Layer.Index = l
		} else {
			fr.Packages[i].Layer.Index = layer
		}
	}
}

func isOSType(t string) bool {
	return t == inventory.TypeDeb || t == inventory.TypeAPK || t == inventory.TypeRPM
}

func assemble(results map[string]*fileState, buried []inventory.Finding, meta []inventory.Layer, opts MergeOptions, problems []inventory.Problem) *inventory.Report {
	rep := &inventory.Report{SchemaVersion: 1, Layers: meta, Packages: []inventory.Package{}}
	findings := buried
	osFound := map[string]*inventory.OS{}
	licenses := map[string][]string{} // type|name -> licenses
	// File lists of OS packages, looked at only after the language packages
	// are known: ownership is needed for their few paths, not for every file.
	type fileList struct {
		owner string
		files []string
	}
	var lists []fileList
	for p, st := range results {
		fr := st.res
		if fr.OS != nil {
			osFound[p] = fr.OS
		}
		for name, l := range fr.Licenses {
			k := fr.LicenseType + "|" + name
			licenses[k] = append(licenses[k], l...)
		}
		for name, files := range fr.Files {
			lists = append(lists, fileList{inventory.TypeDeb + ":" + name, files})
		}
		for _, f := range fr.Findings {
			f.Layer.Index = st.layer
			findings = append(findings, f)
		}
		for _, pb := range fr.Problems {
			if pb.Layer == "" && st.layer < len(meta) {
				pb.Layer = meta[st.layer].DiffID
			}
			problems = append(problems, pb)
		}
		for _, pkg := range fr.Packages {
			if isOSType(pkg.Type) && len(pkg.Files) > 0 {
				lists = append(lists, fileList{pkg.Type + ":" + pkg.Name, pkg.Files})
			}
			rep.Packages = append(rep.Packages, pkg)
		}
	}
	if opts.SelectOS != nil {
		rep.OS = opts.SelectOS(osFound)
	}
	owner := map[string]string{} // candidate path -> "type:name"
	for i := range rep.Packages {
		if !isOSType(rep.Packages[i].Type) {
			for _, c := range ownerCandidates(rep.Packages[i].Path) {
				owner[c] = ""
			}
		}
	}
	if len(owner) > 0 {
		for _, l := range lists {
			for _, f := range l.files {
				if _, ok := owner[f]; ok {
					owner[f] = l.owner
				}
			}
		}
	}
	for i := range rep.Packages {
		pkg := &rep.Packages[i]
		if li := pkg.Layer.Index; li >= 0 && li < len(meta) {
			pkg.Layer = meta[li]
		}
		if isOSType(pkg.Type) {
			if len(pkg.Licenses) == 0 {
				if l := licenses[pkg.Type+"|"+pkg.Name]; len(l) > 0 {
					pkg.Licenses = dedupe(l)
				}
			}
			if opts.OSPURL != nil {
				pkg.PURL = opts.OSPURL(pkg, rep.OS)
			}
			continue
		}
		for _, c := range ownerCandidates(pkg.Path) {
			if o := owner[c]; o != "" {
				pkg.OwnedBy = o
				break
			}
		}
	}
	rep.Packages = dropLockedDuplicates(rep.Packages)
	slices.SortFunc(rep.Packages, func(a, b inventory.Package) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Path, b.Path))
	})
	slices.SortFunc(problems, func(a, b inventory.Problem) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Extractor, b.Extractor), cmp.Compare(a.Message, b.Message))
	})
	rep.Problems = problems
	for i := range findings {
		if li := findings[i].Layer.Index; li >= 0 && li < len(meta) {
			findings[i].Layer = meta[li]
		}
	}
	SortFindings(findings)
	rep.Findings = findings
	return rep
}

// SortFindings orders findings by kind, path, line, rule and layer, the
// order of Report.Findings.
func SortFindings(fs []inventory.Finding) {
	slices.SortFunc(fs, func(a, b inventory.Finding) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Path, b.Path), cmp.Compare(a.StartLine, b.StartLine),
			cmp.Compare(a.RuleID, b.RuleID), cmp.Compare(a.Layer.Index, b.Layer.Index), cmp.Compare(a.Match, b.Match))
	})
}

// ownerCandidates lists the paths under which an OS package database may
// record the file p. Databases may record either side of Debian's merged /usr
// (/bin/x vs /usr/bin/x). Paths inside archives ("/a.war!/lib/b.jar") are
// owned when the outer archive is.
func ownerCandidates(p string) []string {
	if i := strings.Index(p, "!/"); i >= 0 {
		p = p[:i]
	}
	if rest, ok := strings.CutPrefix(p, "/usr"); ok && strings.HasPrefix(rest, "/") {
		return []string{p, rest}
	}
	return []string{p, "/usr" + p}
}

func dedupe(in []string) []string {
	slices.Sort(in)
	return slices.Compact(in)
}

// lockFiles are manifests that describe what an install step will put on
// disk, as opposed to the installed packages' own metadata.
var lockFiles = map[string]bool{
	"package-lock.json": true, "npm-shrinkwrap.json": true, "yarn.lock": true, "pnpm-lock.yaml": true,
	"poetry.lock": true, "Pipfile.lock": true, "Gemfile.lock": true, "gems.locked": true,
	"composer.lock": true,
}

func isLockFile(p string) bool {
	base := path.Base(p)
	return lockFiles[base] || (strings.HasPrefix(base, "requirements") && strings.HasSuffix(base, ".txt"))
}

// dropLockedDuplicates keeps lock-file packages only where they are the
// best record of what the image runs. A lock file with an installed tree of
// its ecosystem below its directory (node_modules next to package-lock.json,
// a virtualenv next to requirements.txt) is superseded by that tree: the
// installed packages are reported from their own metadata (real files,
// licenses, layers), and lock entries that were not installed (optional
// dependencies for other platforms, such as fsevents) are not in the image.
// Development dependencies are dropped too: an image that installed them has
// them on disk. So are lock files that belong to an OS package or sit inside
// an installed package's directory: they describe how that package was
// developed, not what the image runs. What stays are lock files of
// applications bundled without an installed tree.
func dropLockedDuplicates(pkgs []inventory.Package) []inventory.Package {
	installed := map[string][]string{} // type -> installed package paths
	for _, p := range pkgs {
		if !isLockFile(p.Path) {
			installed[p.Type] = append(installed[p.Type], p.Path)
		}
	}
	superseded := map[string]bool{} // type|lock path -> has an installed tree
	hasTree := func(p inventory.Package) bool {
		k := p.Type + "|" + p.Path
		if v, ok := superseded[k]; ok {
			return v
		}
		dir := path.Dir(p.Path)
		if dir != "/" {
			dir += "/"
		}
		found := false
		for _, ip := range installed[p.Type] {
			if strings.HasPrefix(ip, dir) {
				found = true
				break
			}
		}
		superseded[k] = found
		return found
	}
	out := pkgs[:0]
	for _, p := range pkgs {
		if isLockFile(p.Path) && (p.Dev || p.OwnedBy != "" || insidePackage(p.Path) || hasTree(p)) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// insidePackage reports whether a lock file sits inside an installed
// package's own directory (a gem's sources, a Python or npm package): such a
// file describes how that package was developed, not what is installed.
func insidePackage(p string) bool {
	for _, marker := range []string{"/node_modules/", "/site-packages/", "/dist-packages/", "/vendor/bundle/"} {
		if strings.Contains(p, marker) {
			return true
		}
	}
	// RubyGems installs each gem under .../gems/NAME-VERSION/.
	if i := strings.Index(p, "/gems/"); i >= 0 {
		rest := p[i+len("/gems/"):]
		if j := strings.LastIndex(rest, "/gems/"); j >= 0 {
			rest = rest[j+len("/gems/"):]
		}
		return strings.Contains(rest, "/")
	}
	return false
}
