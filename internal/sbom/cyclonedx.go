package sbom

import (
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/mamorisec/mamori/internal/inventory"
)

const (
	// propertyPrefix starts the names of the CycloneDX properties mamori
	// writes.
	propertyPrefix = "mamori:"
	// cdxSchema16 is the $schema of CycloneDX 1.6 JSON documents.
	cdxSchema16 = "http://cyclonedx.org/schema/bom-1.6.schema.json"
)

// encodeCycloneDX writes r as a CycloneDX 1.6 JSON BOM.
func encodeCycloneDX(w io.Writer, r *inventory.Report, opts Options) error {
	bom, _ := CycloneDXBOM(r, opts)
	return WriteCycloneDX(w, bom)
}

// WriteCycloneDX encodes a BOM as indented JSON, as mamori writes every
// CycloneDX document.
func WriteCycloneDX(w io.Writer, bom *cdx.BOM) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	enc.SetEscapeHTML(false)
	return enc.Encode(bom)
}

// CycloneDXBOM builds the CycloneDX 1.6 BOM of r: the image is
// metadata.component, the OS and every package are components, and the image
// depends on all of them. refs maps each package's inventory.Package.Key to
// the bom-ref of its component, for documents that add to the BOM.
func CycloneDXBOM(r *inventory.Report, opts Options) (bom *cdx.BOM, refs map[string]string) {
	created := opts.created()
	// The BOM is built with CycloneDX 1.6 fields only, so it is encoded as
	// is: EncodeVersion would deep-copy it (through gob) to strip newer ones.
	bom = &cdx.BOM{
		JSONSchema:   cdxSchema16,
		BOMFormat:    cdx.BOMFormat,
		SpecVersion:  cdx.SpecVersion1_6,
		SerialNumber: "urn:uuid:" + uuidV5(opts.identity(r, created)),
		Version:      1,
	}

	image := imageComponent(r.Image)
	bom.Metadata = &cdx.Metadata{
		Timestamp: created.Format("2006-01-02T15:04:05Z"),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type:    cdx.ComponentTypeApplication,
			Name:    "mamori",
			Version: cdxVersion(opts.toolVersion()),
		}}},
		Component: &image,
	}

	pkgs := uniquePackages(r, comparePackages)
	components := make([]cdx.Component, 0, len(pkgs)+1)
	taken := make(map[string]struct{}, len(pkgs)+2)
	taken[image.BOMRef] = struct{}{}
	if r.OS != nil {
		c := osComponent(r.OS)
		c.BOMRef = uniqueRef(taken, c.BOMRef)
		components = append(components, c)
	}
	licenses := make(licenseClassifier)
	refs = make(map[string]string, len(pkgs))
	for _, p := range pkgs {
		c := packageComponent(p, licenses)
		c.BOMRef = uniqueRef(taken, c.BOMRef)
		refs[p.Key()] = c.BOMRef
		components = append(components, c)
	}
	if len(components) > 0 {
		bom.Components = &components
		dependsOn := make([]string, len(components))
		for i := range components {
			dependsOn[i] = components[i].BOMRef
		}
		bom.Dependencies = &[]cdx.Dependency{{Ref: image.BOMRef, Dependencies: &dependsOn}}
	}
	return bom, refs
}

// uniqueRef returns ref, or ref with "#N" appended when ref is taken, and
// records it as taken.
func uniqueRef(taken map[string]struct{}, ref string) string {
	ref = asJSON(ref)
	out := ref
	for n := 2; ; n++ {
		if _, dup := taken[out]; !dup {
			taken[out] = struct{}{}
			return out
		}
		out = ref + "#" + strconv.Itoa(n)
	}
}

// asJSON returns s as encoding/json will write it: each byte of invalid
// UTF-8 becomes U+FFFD. References are compared in this form, since two
// that differ only in invalid bytes are equal in the output.
func asJSON(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// imageComponent describes the scanned image.
func imageComponent(im inventory.ImageInfo) cdx.Component {
	c := cdx.Component{
		BOMRef:     "image:" + imageName(im),
		Type:       cdx.ComponentTypeContainer,
		Name:       imageName(im),
		Version:    cdxVersion(imageVersion(im)),
		PackageURL: imagePURL(im),
	}
	if c.PackageURL != "" {
		c.BOMRef = c.PackageURL
	}
	props := properties{}
	if c.Version != imageVersion(im) {
		props.add("image:version", imageVersion(im))
	}
	props.add("image:ref", im.Ref)
	props.add("image:source", im.Source)
	props.add("image:id", im.ID)
	props.add("image:platform", im.Platform)
	for _, t := range im.RepoTags {
		props.add("image:repoTag", t)
	}
	for _, d := range im.RepoDigests {
		props.add("image:repoDigest", d)
	}
	c.Properties = props.list()
	return c
}

// osComponent describes the operating system as its own component.
func osComponent(o *inventory.OS) cdx.Component {
	c := cdx.Component{
		BOMRef:      "os:" + o.ID + "@" + o.VersionID,
		Type:        cdx.ComponentTypeOS,
		Name:        o.ID,
		Version:     cdxVersion(o.VersionID),
		Description: o.PrettyName,
	}
	props := properties{}
	if c.Version != o.VersionID {
		props.add("os:versionID", o.VersionID)
	}
	props.add("os:codename", o.Codename)
	for _, l := range o.IDLike {
		props.add("os:idLike", l)
	}
	props.add("os:source", o.Source)
	c.Properties = props.list()
	return c
}

// packageComponent describes one package. Maven group IDs and npm scopes go
// into the component's group, as CycloneDX recommends.
func packageComponent(p *inventory.Package, licenses licenseClassifier) cdx.Component {
	c := cdx.Component{
		BOMRef:     packageRef(p),
		Type:       cdx.ComponentTypeLibrary,
		Name:       p.Name,
		Version:    cdxVersion(p.Version),
		PackageURL: p.PURL,
		Licenses:   cdxLicenses(p.Licenses, licenses),
	}
	switch p.Type {
	case inventory.TypeMaven:
		if g, a, ok := strings.Cut(p.Name, ":"); ok && g != "" && a != "" {
			c.Group, c.Name = g, a
		}
	case inventory.TypeNPM:
		if s, n, ok := strings.Cut(p.Name, "/"); ok && strings.HasPrefix(s, "@") && n != "" {
			c.Group, c.Name = s, n
		}
	}
	props := properties{}
	if c.Version != p.Version {
		props.add("version", p.Version)
	}
	props.add("path", p.Path)
	props.add("layer:diffID", p.Layer.DiffID)
	props.add("layer:index", strconv.Itoa(p.Layer.Index))
	props.add("arch", p.Arch)
	if p.Epoch != nil {
		props.add("epoch", strconv.Itoa(*p.Epoch))
	}
	props.add("source:name", p.SourceName)
	props.add("source:version", p.SourceVersion)
	props.add("ownedBy", p.OwnedBy)
	if p.Dev {
		props.add("dev", "true")
	}
	keys := make([]string, 0, len(p.Metadata))
	for k := range p.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		props.add("metadata:"+k, p.Metadata[k])
	}
	c.Properties = props.list()
	return c
}

// maxVersion is the longest version, in characters, CycloneDX 1.6 allows.
const maxVersion = 1024

// cdxVersion cuts a version to the length CycloneDX allows. Callers keep a
// cut version whole in a property. Each invalid UTF-8 byte counts as one
// character, as it is written as U+FFFD.
func cdxVersion(v string) string {
	if len(v) <= maxVersion {
		return v
	}
	n := 0
	for i := range v {
		if n == maxVersion {
			return v[:i]
		}
		n++
	}
	return v
}

// packageRef is the bom-ref of a package before deduplication: its purl (or
// type, name and version when it has none) and the file it was found in, so
// that the same package found in two places keeps two stable references.
func packageRef(p *inventory.Package) string {
	ref := p.PURL
	if ref == "" {
		ref = p.Type + ":" + p.Name + "@" + p.Version
	}
	return ref + "#" + p.Path
}

// cdxLicenses maps declared license values to a CycloneDX license choice:
// SPDX identifiers as license.id, other names as license.name, and a single
// SPDX expression as expression. CycloneDX allows an expression only alone,
// so when an expression comes with other values they are all joined with AND
// into one expression, names becoming LicenseRef-... identifiers.
func cdxLicenses(values []string, classifier licenseClassifier) *cdx.Licenses {
	var ls []license
	hasExpr := false
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		l := classifier.classify(v)
		if slices.Contains(ls, l) {
			continue
		}
		ls = append(ls, l)
		hasExpr = hasExpr || l.kind == licenseExpression
	}
	if len(ls) == 0 {
		return nil
	}
	if hasExpr {
		terms := make([]string, len(ls))
		for i, l := range ls {
			terms[i] = l.value
			if l.kind == licenseName {
				terms[i] = licenseRef(l.value)
			}
		}
		return &cdx.Licenses{{Expression: joinAND(terms)}}
	}
	out := make(cdx.Licenses, len(ls))
	for i, l := range ls {
		if l.kind == licenseID {
			out[i] = cdx.LicenseChoice{License: &cdx.License{ID: l.value}}
		} else {
			out[i] = cdx.LicenseChoice{License: &cdx.License{Name: l.value}}
		}
	}
	return &out
}

// properties collects mamori: properties, skipping empty values.
type properties []cdx.Property

func (ps *properties) add(name, value string) {
	if value != "" {
		*ps = append(*ps, cdx.Property{Name: propertyPrefix + name, Value: value})
	}
}

func (ps properties) list() *[]cdx.Property {
	if len(ps) == 0 {
		return nil
	}
	l := []cdx.Property(ps)
	return &l
}
