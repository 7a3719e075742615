package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/mamorisec/mamori/internal/inventory"
)

// SPDX constants mamori writes.
const (
	noAssertion     = "NOASSERTION"
	namespacePrefix = "https://mamori.dev/spdx/"
	imageSPDXID     = "Image"
)

// encodeSPDX writes r as an SPDX 2.3 JSON document.
func encodeSPDX(w io.Writer, r *inventory.Report, opts Options) error {
	doc, _ := SPDXDocument(r, opts)
	return WriteSPDX(w, doc)
}

// WriteSPDX encodes a document as indented JSON, as mamori writes every
// SPDX document.
func WriteSPDX(w io.Writer, doc *spdx.Document) error {
	return spdxjson.Write(doc, w, spdxjson.Indent("  "), spdxjson.EscapeHTML(false))
}

// SPDXDocument builds the SPDX 2.3 document of r. The document DESCRIBES the
// image package, which CONTAINS the OS package and every package; a language
// package owned by an OS package is also CONTAINed by that package.
// License values that are not SPDX expressions become LicenseRef-...
// identifiers declared in hasExtractedLicensingInfos, so the document stays
// valid. pkgs maps each package's inventory.Package.Key to its SPDX package,
// for documents that add to it.
func SPDXDocument(r *inventory.Report, opts Options) (doc *spdx.Document, pkgs map[string]*spdx.Package) {
	created := opts.created()
	name := imageName(r.Image)
	nsName, _ := idString(name, 64)
	doc = &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      name,
		DocumentNamespace: namespacePrefix + nsName + "-" + documentHash(opts.identity(r, created))[:32],
		CreationInfo: &spdx.CreationInfo{
			LicenseListVersion: licenseListVersion(),
			Creators:           []common.Creator{{CreatorType: "Tool", Creator: "mamori-" + opts.toolVersion()}},
			Created:            created.Format("2006-01-02T15:04:05Z"),
		},
	}

	image := &spdx.Package{
		PackageName:             name,
		PackageSPDXIdentifier:   imageSPDXID,
		PackageVersion:          imageVersion(r.Image),
		PackageDownloadLocation: noAssertion,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
		PackageCopyrightText:    noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
	}
	if purl := imagePURL(r.Image); purl != "" {
		image.PackageExternalReferences = []*spdx.PackageExternalReference{purlRef(purl)}
	}
	doc.Packages = append(doc.Packages, image)
	doc.Relationships = append(doc.Relationships, relationship("DOCUMENT", imageSPDXID, common.TypeRelationshipDescribe))

	ids := map[common.ElementID]struct{}{"DOCUMENT": {}, imageSPDXID: {}}
	if r.OS != nil {
		p := &spdx.Package{
			PackageName:             r.OS.ID,
			PackageSPDXIdentifier:   uniqueID(ids, "OperatingSystem-"+elementID(r.OS.ID, r.OS.ID+"|"+r.OS.VersionID)),
			PackageVersion:          r.OS.VersionID,
			PackageDownloadLocation: noAssertion,
			PackageLicenseConcluded: noAssertion,
			PackageLicenseDeclared:  noAssertion,
			PackageCopyrightText:    noAssertion,
			PackageDescription:      r.OS.PrettyName,
			PrimaryPackagePurpose:   "OPERATING_SYSTEM",
		}
		if r.OS.Source != "" {
			p.PackageSourceInfo = "found in " + r.OS.Source
		}
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, relationship(imageSPDXID, p.PackageSPDXIdentifier, common.TypeRelationshipContains))
	}

	lic := spdxLicenses{classifier: make(licenseClassifier), refs: make(map[string]string)}
	unique := uniquePackages(r, comparePackages)
	owners := make(map[string]common.ElementID)
	pkgIDs := make([]common.ElementID, len(unique))
	pkgs = make(map[string]*spdx.Package, len(unique))
	for i, p := range unique {
		sp := spdxPackage(p, &lic)
		sp.PackageSPDXIdentifier = uniqueID(ids, string(sp.PackageSPDXIdentifier))
		pkgIDs[i] = sp.PackageSPDXIdentifier
		pkgs[p.Key()] = sp
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, relationship(imageSPDXID, sp.PackageSPDXIdentifier, common.TypeRelationshipContains))
		if owner := p.Type + ":" + p.Name; p.OwnedBy == "" {
			if _, ok := owners[owner]; !ok {
				owners[owner] = sp.PackageSPDXIdentifier
			}
		}
	}
	for i, p := range unique {
		if owner, ok := owners[p.OwnedBy]; ok && p.OwnedBy != "" && owner != pkgIDs[i] {
			doc.Relationships = append(doc.Relationships, relationship(owner, pkgIDs[i], common.TypeRelationshipContains))
		}
	}
	doc.OtherLicenses = lic.extracted()
	return doc, pkgs
}

// spdxPackage describes one package; its SPDXID still has to be made unique.
func spdxPackage(p *inventory.Package, lic *spdxLicenses) *spdx.Package {
	sp := &spdx.Package{
		PackageName:             p.Name,
		PackageSPDXIdentifier:   common.ElementID("Package-" + elementID(p.Name, p.Key())),
		PackageVersion:          p.Version,
		PackageDownloadLocation: noAssertion,
		PackageSourceInfo:       sourceInfo(p),
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  lic.declared(p.Licenses),
		PackageCopyrightText:    noAssertion,
	}
	if p.PURL != "" {
		sp.PackageExternalReferences = []*spdx.PackageExternalReference{purlRef(p.PURL)}
	}
	return sp
}

// sourceInfo tells where mamori found the package: the file, the layer, and
// the source package it was built from.
func sourceInfo(p *inventory.Package) string {
	var b strings.Builder
	b.WriteString("found in ")
	b.WriteString(p.Path)
	b.WriteString(" in layer ")
	b.WriteString(strconv.Itoa(p.Layer.Index))
	if p.Layer.DiffID != "" {
		b.WriteString(" (" + p.Layer.DiffID + ")")
	}
	if p.SourceName != "" {
		b.WriteString("; built from source package " + p.SourceName)
		if p.SourceVersion != "" {
			b.WriteString(" " + p.SourceVersion)
		}
	}
	if p.OwnedBy != "" {
		b.WriteString("; installed by " + p.OwnedBy)
	}
	return b.String()
}

// elementID builds the variable part of an SPDX element ID from a readable
// name and a hash of key, the package's identity: "<sanitized>-<hash>".
func elementID(name, key string) string {
	s, _ := idString(name, 48)
	if s = strings.Trim(s, "-"); s == "" {
		s = "unnamed"
	}
	sum := sha256.Sum256([]byte(key))
	return s + "-" + hex.EncodeToString(sum[:8])
}

// uniqueID returns id, or id with "-N" appended when it is taken, and records
// it as taken.
func uniqueID(taken map[common.ElementID]struct{}, id string) common.ElementID {
	out := common.ElementID(id)
	for n := 2; ; n++ {
		if _, dup := taken[out]; !dup {
			taken[out] = struct{}{}
			return out
		}
		out = common.ElementID(id + "-" + strconv.Itoa(n))
	}
}

func relationship(a, b common.ElementID, typ string) *spdx.Relationship {
	return &spdx.Relationship{
		RefA:         common.DocElementID{ElementRefID: a},
		RefB:         common.DocElementID{ElementRefID: b},
		Relationship: typ,
	}
}

func purlRef(purl string) *spdx.PackageExternalReference {
	return &spdx.PackageExternalReference{
		Category: common.CategoryPackageManager,
		RefType:  common.TypePackageManagerPURL,
		Locator:  purl,
	}
}

// spdxLicenses turns declared license values into SPDX license expressions
// and remembers the LicenseRefs it used.
type spdxLicenses struct {
	classifier licenseClassifier
	// refs maps each LicenseRef used to the text it stands for.
	refs map[string]string
}

// declared returns the licenseDeclared expression for the values: their AND,
// or NOASSERTION when there are none.
func (s *spdxLicenses) declared(values []string) string {
	var terms []string
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		l := s.classifier.classify(v)
		term := l.value
		if l.kind == licenseName {
			term = licenseRef(l.value)
			s.refs[term] = l.value
		} else {
			for _, ref := range licenseRefs(term) {
				if _, ok := s.refs[ref]; !ok {
					s.refs[ref] = ref
				}
			}
		}
		if !slices.Contains(terms, term) {
			terms = append(terms, term)
		}
	}
	if len(terms) == 0 {
		return noAssertion
	}
	return joinAND(terms)
}

// extracted lists the LicenseRefs used, sorted, as SPDX extracted licensing
// infos whose text is the license value as found.
func (s *spdxLicenses) extracted() []*spdx.OtherLicense {
	ids := make([]string, 0, len(s.refs))
	for id := range s.refs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]*spdx.OtherLicense, len(ids))
	for i, id := range ids {
		text := s.refs[id]
		out[i] = &spdx.OtherLicense{
			LicenseIdentifier: id,
			ExtractedText:     text,
			LicenseName:       text,
			LicenseComment:    fmt.Sprintf("license declared as %q in package metadata; no license text was extracted", text),
		}
	}
	return out
}
