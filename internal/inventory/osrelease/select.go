package osrelease

import (
	"slices"
	"strconv"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/package-url/packageurl-go"
)

// Select chooses the image's OS from the release files that survive in the
// final image, keyed by path. /etc/os-release wins, then
// /usr/lib/os-release, then the distribution-specific files. A
// distribution-specific file with the same ID fills in a missing VERSION_ID
// (Debian testing has none in os-release); /etc/alpine-release always gives
// Alpine's full version. Select returns nil when found is empty and never
// modifies found.
func Select(found map[string]*inventory.OS) *inventory.OS {
	var base *inventory.OS
	for _, p := range append([]string{etcOSRelease, usrLibOSRelease}, distroFiles...) {
		if o := found[p]; o != nil && o.ID != "" {
			c := *o
			c.IDLike = slices.Clone(o.IDLike)
			base = &c
			break
		}
	}
	if base == nil {
		return nil
	}
	if a := found[alpineRelease]; base.ID == "alpine" && a != nil && a.VersionID != "" {
		base.VersionID = a.VersionID
	}
	for _, p := range distroFiles {
		o := found[p]
		if o == nil || o.ID != base.ID {
			continue
		}
		if base.VersionID == "" {
			base.VersionID = o.VersionID
		}
		if base.Codename == "" {
			base.Codename = o.Codename
		}
	}
	return base
}

// namespaces maps os-release IDs to PURL namespaces where they differ.
var namespaces = map[string]string{
	"rhel":                "redhat",
	"amzn":                "amazon",
	"ol":                  "oracle",
	"opensuse-leap":       "opensuse",
	"opensuse-tumbleweed": "opensuse",
	"opensuse-microos":    "opensuse",
}

// defaultNamespaces gives a namespace by package type when the OS is unknown.
var defaultNamespaces = map[string]string{
	inventory.TypeDeb: "debian",
	inventory.TypeAPK: "alpine",
	inventory.TypeRPM: "redhat",
}

// PURL builds the package URL of an OS package (types deb, apk and rpm; it
// returns "" for other types). The namespace comes from the OS ID ("rhel"
// becomes "redhat", "amzn" "amazon", "ol" "oracle", openSUSE variants
// "opensuse", other IDs are used as they are). Qualifiers: arch,
// distro=<ID>-<VERSION_ID>, epoch for RPMs with an epoch, and upstream=<source
// name> for deb and rpm packages built from a differently named source. With
// a nil osInfo the namespace is a guess from the package type and there is no
// distro qualifier.
func PURL(p *inventory.Package, osInfo *inventory.OS) string {
	ns, ok := defaultNamespaces[p.Type]
	if !ok || p.Name == "" {
		return ""
	}
	q := map[string]string{}
	if osInfo != nil && osInfo.ID != "" {
		id := strings.ToLower(osInfo.ID)
		ns = id
		if n, ok := namespaces[id]; ok {
			ns = n
		}
		q["distro"] = id
		if osInfo.VersionID != "" {
			q["distro"] = id + "-" + osInfo.VersionID
		}
	}
	if p.Arch != "" {
		q["arch"] = p.Arch
	}
	if p.Type == inventory.TypeRPM && p.Epoch != nil {
		q["epoch"] = strconv.Itoa(*p.Epoch)
	}
	if p.Type != inventory.TypeAPK && p.SourceName != "" && p.SourceName != p.Name {
		q["upstream"] = p.SourceName
	}
	u := packageurl.NewPackageURL(p.Type, ns, p.Name, p.Version, packageurl.QualifiersFromMap(q), "")
	return u.ToString()
}
