package suppress

import (
	"path"
	"slices"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/mamorisec/mamori/internal/inventory"
)

// foldedNames are the purl types whose names are case-insensitive (the purl
// specification has them lowercased).
var foldedNames = []string{"bitbucket", "composer", "deb", "github", "npm", "oci", "pypi", "apk"}

// purlMatches reports whether candidate is the package pattern names.
// Parts the pattern leaves out (version, qualifiers, subpath) match
// anything; every qualifier the pattern has must be in the candidate with
// the same value.
func purlMatches(pattern, candidate *packageurl.PackageURL) bool {
	typ := strings.ToLower(pattern.Type)
	if typ != strings.ToLower(candidate.Type) {
		return false
	}
	if !strings.EqualFold(pattern.Namespace, candidate.Namespace) {
		return false
	}
	pn, cn := pattern.Name, candidate.Name
	if typ == "pypi" {
		pn, cn = strings.ReplaceAll(pn, "_", "-"), strings.ReplaceAll(cn, "_", "-")
	}
	if slices.Contains(foldedNames, typ) {
		if !strings.EqualFold(pn, cn) {
			return false
		}
	} else if pn != cn {
		return false
	}
	if pattern.Version != "" && pattern.Version != candidate.Version {
		return false
	}
	if pattern.Subpath != "" && strings.Trim(pattern.Subpath, "/") != strings.Trim(candidate.Subpath, "/") {
		return false
	}
	have := candidate.Qualifiers.Map()
	for _, q := range pattern.Qualifiers {
		if v, ok := have[q.Key]; !ok || v != q.Value {
			return false
		}
	}
	return true
}

// image is what a pkg:oci purl can be compared with.
type image struct {
	names   []string // lowercased last path element of each repository
	repos   []string // normalized repositories
	tags    []string
	digests []string
	os      string
	arch    string
}

// imageOf collects the names, repositories, tags and digests an image is
// known by.
func imageOf(r *inventory.Report) *image {
	if r == nil {
		return nil
	}
	im := &image{}
	info := r.Image
	addRef := func(ref string) {
		if i := strings.IndexByte(ref, '@'); i >= 0 {
			im.digests = append(im.digests, strings.ToLower(ref[i+1:]))
			ref = ref[:i]
		}
		if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
			im.tags = append(im.tags, ref[i+1:])
			ref = ref[:i]
		}
		if ref == "" {
			return
		}
		im.repos = append(im.repos, normalizeRepo(ref))
		im.names = append(im.names, strings.ToLower(path.Base(ref)))
	}
	for _, ref := range info.RepoTags {
		addRef(ref)
	}
	for _, ref := range info.RepoDigests {
		addRef(ref)
	}
	switch {
	case info.Source == "registry" || info.Source == "docker":
		addRef(info.Name)
	case info.Name != "":
		// A file or directory: its base name without extension, as the
		// SBOM's image purl names it.
		base := path.Base(strings.TrimRight(info.Name, "/"))
		base = strings.TrimSuffix(base, path.Ext(base))
		if i := strings.IndexAny(base, ":@"); i > 0 {
			base = base[:i]
		}
		im.names = append(im.names, strings.ToLower(base))
	}
	if info.Digest != "" {
		im.digests = append(im.digests, strings.ToLower(info.Digest))
	}
	im.os, im.arch, _ = strings.Cut(info.Platform, "/")
	if i := strings.IndexByte(im.arch, '/'); i >= 0 {
		im.arch = im.arch[:i] // drop the variant ("arm/v7")
	}
	return im
}

// normalizeRepo spells a repository the way Docker resolves it:
// "alpine", "library/alpine" and "index.docker.io/library/alpine" are all
// "docker.io/library/alpine".
func normalizeRepo(repo string) string {
	repo = strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(repo, "https://"), "http://"))
	first, rest, found := strings.Cut(repo, "/")
	switch {
	case !found:
		return "docker.io/library/" + repo
	case first == "index.docker.io" || first == "registry-1.docker.io":
		repo = "docker.io/" + rest
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		repo = "docker.io/" + repo
	}
	if after, ok := strings.CutPrefix(repo, "docker.io/"); ok && !strings.Contains(after, "/") {
		repo = "docker.io/library/" + after
	}
	return repo
}

// matches reports whether a pkg:oci purl names the image. The name must
// be one of the image's names; a version must be its manifest digest (or
// a repo digest); the qualifiers repository_url, tag, os and arch must
// agree with the image. Other qualifiers are not checked.
func (im *image) matches(p *packageurl.PackageURL) bool {
	if im == nil || !strings.EqualFold(p.Type, packageurl.TypeOCI) {
		return false
	}
	if !slices.Contains(im.names, strings.ToLower(p.Name)) {
		return false
	}
	if p.Version != "" && !slices.Contains(im.digests, strings.ToLower(p.Version)) {
		return false
	}
	for _, q := range p.Qualifiers {
		var ok bool
		switch q.Key {
		case "repository_url":
			ok = slices.Contains(im.repos, normalizeRepo(q.Value))
		case "tag":
			ok = slices.Contains(im.tags, q.Value)
		case "os":
			ok = im.os == q.Value
		case "arch":
			ok = im.arch == q.Value
		default:
			ok = true
		}
		if !ok {
			return false
		}
	}
	return true
}
