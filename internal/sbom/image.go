package sbom

import (
	"path"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/mamorisec/mamori/internal/inventory"
)

// imageRepository returns the repository ("docker.io/library/debian") and tag
// of the image, when the report knows a registry name for it: from its repo
// tags, its name for registry and Docker Engine sources (other sources name
// a file or directory), or its repo digests.
func imageRepository(im inventory.ImageInfo) (repo, tag string) {
	var ref string
	switch {
	case len(im.RepoTags) > 0:
		ref = im.RepoTags[0]
	case (im.Source == "registry" || im.Source == "docker") && im.Name != "":
		ref = im.Name
	case len(im.RepoDigests) > 0:
		ref = im.RepoDigests[0]
	default:
		return "", ""
	}
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref, tag = ref[:i], ref[i+1:]
	}
	return ref, tag
}

// imagePURL returns the pkg:oci package URL of the image, or "" when the
// manifest digest is unknown (the digest is the version of an OCI purl). The
// purl's name is the last element of the repository, or of the image name
// (a file or directory) when there is no repository, lowercased as the purl
// spec requires.
func imagePURL(im inventory.ImageInfo) string {
	if im.Digest == "" {
		return ""
	}
	repo, tag := imageRepository(im)
	base := repo
	if base == "" && im.Name != "" {
		base = path.Base(strings.TrimRight(im.Name, "/"))
		base = strings.TrimSuffix(base, path.Ext(base))
		if i := strings.IndexAny(base, ":@"); i > 0 {
			base = base[:i]
		}
	}
	name := strings.ToLower(path.Base(base))
	if name == "" || name == "." || name == "/" {
		name = "image"
	}
	var q packageurl.Qualifiers
	if repo != "" {
		q = append(q, packageurl.Qualifier{Key: "repository_url", Value: repo})
	}
	if tag != "" {
		q = append(q, packageurl.Qualifier{Key: "tag", Value: tag})
	}
	return packageurl.NewPackageURL(packageurl.TypeOCI, "", name, im.Digest, q, "").ToString()
}

// imageVersion is the version reports give the image: its manifest digest,
// else its ID (config digest).
func imageVersion(im inventory.ImageInfo) string {
	if im.Digest != "" {
		return im.Digest
	}
	return im.ID
}
