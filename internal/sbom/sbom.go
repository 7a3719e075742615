// Package sbom writes an inventory.Report in the formats mamori offers: a
// human table, mamori's native JSON (docs/native-json.md), CycloneDX 1.6 JSON
// and SPDX 2.3 JSON.
//
// Every encoder is deterministic: the same report and the same clock
// (Options.Now) give byte-identical output, so SBOMs can be diffed and
// golden-tested. Packages are written in a stable order, and packages that
// occur twice in a report (same type, name, version and path) are written once
// in the table, CycloneDX and SPDX outputs.
package sbom

import (
	"cmp"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
)

// Output formats accepted by Encode.
const (
	FormatTable     = "table"
	FormatJSON      = "json"
	FormatCycloneDX = "cyclonedx"
	FormatSPDX      = "spdx"
)

// Formats lists the formats Encode accepts, the default (table) first.
func Formats() []string {
	return []string{FormatTable, FormatJSON, FormatCycloneDX, FormatSPDX}
}

// Options controls the parts of the output that do not come from the report.
type Options struct {
	// Now is the clock for the document's creation time (CycloneDX
	// metadata.timestamp, SPDX creationInfo.created). Tests inject a fixed
	// clock for reproducible output. Nil means time.Now.
	Now func() time.Time
	// ToolVersion is mamori's version, recorded as the tool that made the
	// document ("dev" when empty).
	ToolVersion string
	// Seed, when set, replaces the image identity (digest, ID, name and
	// reference) in the derivation of the CycloneDX serial number and the
	// SPDX document namespace. Both are a hash of the seed and the creation
	// time, so the same report and clock always give the same identifiers.
	Seed string
	// Color turns on ANSI colors (a bold header and summary) in the table.
	// Set it only when the output is a terminal; when it is false, Encode
	// still colors output written straight to a terminal *os.File unless
	// NO_COLOR is set.
	Color bool
}

// Encode writes r to w in format, one of Formats().
func Encode(w io.Writer, r *inventory.Report, format string, opts Options) error {
	if r == nil {
		return fmt.Errorf("encoding %s: no report", format)
	}
	var err error
	switch format {
	case FormatTable:
		err = encodeTable(w, r, opts)
	case FormatJSON:
		err = encodeJSON(w, r)
	case FormatCycloneDX:
		err = encodeCycloneDX(w, r, opts)
	case FormatSPDX:
		err = encodeSPDX(w, r, opts)
	default:
		return fmt.Errorf("unknown output format %q (valid: %s)", format, strings.Join(Formats(), ", "))
	}
	if err != nil {
		return fmt.Errorf("encoding %s: %w", format, err)
	}
	return nil
}

// created returns the document creation time, in UTC and whole seconds (the
// precision both SBOM formats record).
func (o Options) created() time.Time {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	return now().UTC().Truncate(time.Second)
}

func (o Options) toolVersion() string {
	if o.ToolVersion == "" {
		return "dev"
	}
	return o.ToolVersion
}

// identity is the input of the document identifiers: the seed or the image's
// identity, and the creation time.
func (o Options) identity(r *inventory.Report, t time.Time) string {
	seed := o.Seed
	if seed == "" {
		im := r.Image
		seed = strings.Join([]string{im.Digest, im.ID, im.Name, im.Ref}, "\x00")
	}
	return seed + "\x00" + t.Format(time.RFC3339)
}

// documentHash is a hex SHA-256 of the document identity.
func documentHash(identity string) string {
	sum := sha256.Sum256([]byte(identity))
	return hex.EncodeToString(sum[:])
}

// uuidNamespace is the RFC 4122 namespace of mamori's name-based (version 5)
// UUIDs.
var uuidNamespace = [16]byte{0x6d, 0x61, 0x6d, 0x6f, 0x72, 0x69, 0x4e, 0x53, 0x9a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71}

// uuidV5 returns the RFC 4122 version 5 (SHA-1, name-based) UUID of name.
func uuidV5(name string) string {
	h := sha1.New()
	h.Write(uuidNamespace[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// comparePackages orders packages by type, name, version, path and layer.
func comparePackages(a, b *inventory.Package) int {
	return cmp.Or(
		cmp.Compare(a.Type, b.Type),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Version, b.Version),
		cmp.Compare(a.Path, b.Path),
		cmp.Compare(a.Layer.Index, b.Layer.Index),
	)
}

// uniquePackages returns pointers to r's packages in the order of cmpFn with
// exact duplicates (the same inventory.Package.Key) removed; the first in
// order is kept. cmpFn must order by all the fields of the key, so that
// duplicates end up next to each other. r is not modified.
func uniquePackages(r *inventory.Report, cmpFn func(a, b *inventory.Package) int) []*inventory.Package {
	ps := make([]*inventory.Package, len(r.Packages))
	for i := range r.Packages {
		ps[i] = &r.Packages[i]
	}
	slices.SortStableFunc(ps, cmpFn)
	return slices.CompactFunc(ps, func(a, b *inventory.Package) bool {
		return a.Type == b.Type && a.Name == b.Name && a.Version == b.Version && a.Path == b.Path
	})
}

// imageName is the name reports use for the image.
func imageName(im inventory.ImageInfo) string {
	switch {
	case im.Name != "":
		return im.Name
	case im.Ref != "":
		return im.Ref
	case im.Digest != "":
		return im.Digest
	case im.ID != "":
		return im.ID
	}
	return "unknown-image"
}

// idString maps s to the characters SPDX allows in identifiers ([A-Za-z0-9.-]),
// replacing every other byte by '-' and cutting the result to max bytes. It
// reports whether s was already made only of allowed characters and fit.
func idString(s string, max int) (string, bool) {
	lossless := len(s) <= max
	if len(s) > max {
		s = s[:max]
	}
	b := []byte(s)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			b[i] = '-'
			lossless = false
		}
	}
	return string(b), lossless
}
