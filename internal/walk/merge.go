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
}

// Node is a path in the merged filesystem.
type Node struct {
	Entry
	// Layer is the index of the layer that last wrote the path.
	Layer int
}

// FS is the merged view of an image's files (metadata only).
type FS struct {
	Nodes map[string]*Node
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
	FS     *FS
}

type fileState struct {
	res   *FileResult
	layer int
}

// Merge applies the layers in order and assembles the inventory. layers[i]
// must be the result of image layer i; meta describes the layers for
// attribution.
func Merge(layers []*LayerResult, meta []inventory.Layer, opts MergeOptions) *Merged {
	fsys := &FS{Nodes: map[string]*Node{}}
	results := map[string]*fileState{}
	// knownDirs holds every directory seen so far, explicit or implied by a
	// path below it. Entries may outlive a whiteout; that only costs a scan.
	knownDirs := map[string]bool{}
	var problems []inventory.Problem

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
			for p := range fsys.Nodes {
				if hidden(p) {
					delete(fsys.Nodes, p)
				}
			}
			for p := range results {
				if hidden(p) {
					delete(results, p)
				}
			}
		}
		// A non-directory replacing a lower directory removes its contents.
		var replacedDirs map[string]bool
		for _, e := range lr.Entries {
			if e.Type != TypeDir && knownDirs[e.Path] {
				if replacedDirs == nil {
					replacedDirs = map[string]bool{}
				}
				replacedDirs[e.Path] = true
			}
		}
		if replacedDirs != nil {
			under := func(p string) bool {
				for d := path.Dir(p); d != "/"; d = path.Dir(d) {
					if replacedDirs[d] {
						return true
					}
				}
				return false
			}
			for p := range fsys.Nodes {
				if under(p) {
					delete(fsys.Nodes, p)
				}
			}
			for p := range results {
				if under(p) {
					delete(results, p)
				}
			}
		}
		prev := map[string]*fileState{}
		for _, e := range lr.Entries {
			fsys.Nodes[e.Path] = &Node{Entry: e, Layer: i}
			if e.Type == TypeDir {
				knownDirs[e.Path] = true
			}
			for d := path.Dir(e.Path); d != "/" && !knownDirs[d]; d = path.Dir(d) {
				knownDirs[d] = true
			}
			if old, ok := results[e.Path]; ok {
				prev[e.Path] = old
				delete(results, e.Path)
			}
		}
		for p, fr := range lr.Results {
			attribute(fr, prev[p], i)
			results[p] = &fileState{res: fr, layer: i}
		}
	}
	return &Merged{Report: assemble(results, meta, opts, problems), FS: fsys}
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

func assemble(results map[string]*fileState, meta []inventory.Layer, opts MergeOptions, problems []inventory.Problem) *inventory.Report {
	rep := &inventory.Report{SchemaVersion: 1, Layers: meta, Packages: []inventory.Package{}}
	osFound := map[string]*inventory.OS{}
	licenses := map[string][]string{} // type|name -> licenses
	owner := map[string]string{}      // file -> "type:name"
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
			for _, f := range files {
				owner[f] = inventory.TypeDeb + ":" + name
			}
		}
		for _, pb := range fr.Problems {
			if pb.Layer == "" && st.layer < len(meta) {
				pb.Layer = meta[st.layer].DiffID
			}
			problems = append(problems, pb)
		}
		for _, pkg := range fr.Packages {
			if isOSType(pkg.Type) {
				for _, f := range pkg.Files {
					owner[f] = pkg.Type + ":" + pkg.Name
				}
			}
			rep.Packages = append(rep.Packages, pkg)
		}
	}
	if opts.SelectOS != nil {
		rep.OS = opts.SelectOS(osFound)
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
		if o := ownerOf(owner, pkg.Path); o != "" {
			pkg.OwnedBy = o
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
	return rep
}

// ownerOf finds the OS package owning a file. Package databases may record
// either side of Debian's merged /usr (/bin/x vs /usr/bin/x), so both are
// tried. Paths inside archives ("/a.war!/lib/b.jar") are owned when the outer
// archive is.
func ownerOf(owner map[string]string, p string) string {
	if i := strings.Index(p, "!/"); i >= 0 {
		p = p[:i]
	}
	if o := owner[p]; o != "" {
		return o
	}
	if rest, ok := strings.CutPrefix(p, "/usr"); ok && strings.HasPrefix(rest, "/") {
		return owner[rest]
	}
	return owner["/usr"+p]
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

// dropLockedDuplicates removes a lock-file package when the same package
// (type, normalized name, version) is installed below the lock file's
// directory: the installed copy is the better record (it has the real file,
// licenses and layer), and reporting both would count one package twice.
// Development dependencies listed only in a lock file are dropped too: an
// image that installed them has them on disk, where the installed-package
// extractors report them. Other lock-file entries with no installed
// counterpart (bundled applications, installs elsewhere) stay.
func dropLockedDuplicates(pkgs []inventory.Package) []inventory.Package {
	installed := map[string][]string{}
	for _, p := range pkgs {
		if !isLockFile(p.Path) {
			k := p.Type + "|" + normName(p.Name) + "|" + p.Version
			installed[k] = append(installed[k], p.Path)
		}
	}
	out := pkgs[:0]
	for _, p := range pkgs {
		if isLockFile(p.Path) {
			if p.Dev {
				continue
			}
			dir := path.Dir(p.Path)
			if dir != "/" {
				dir += "/"
			}
			dup := false
			for _, ip := range installed[p.Type+"|"+normName(p.Name)+"|"+p.Version] {
				if strings.HasPrefix(ip, dir) {
					dup = true
					break
				}
			}
			if dup {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// normName folds the spelling differences ecosystems allow in names (PEP 503
// for Python; case for Composer).
func normName(n string) string {
	n = strings.ToLower(n)
	return strings.NewReplacer("_", "-", ".", "-").Replace(n)
}
