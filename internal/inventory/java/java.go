// Package java finds Maven artifacts in Java archives (.jar, .war, .ear,
// .par, .sar, .jpi, .hpi, .kar, .nar; the extension is matched
// case-insensitively).
//
// Each archive is read as a zip file. Its packages come from, in order of
// preference:
//
//  1. every META-INF/maven/<groupId>/<artifactId>/pom.properties entry (a
//     shaded or fat jar holds one per bundled artifact, and each is a
//     package);
//  2. otherwise META-INF/MANIFEST.MF: the version from Implementation-Version,
//     Bundle-Version or Specification-Version, the groupId from
//     Implementation-Vendor-Id, and the artifactId from the archive's file
//     name, Bundle-SymbolicName, Implementation-Title or Specification-Title;
//  3. otherwise the file name ("commons-io-2.11.0.jar" is artifact
//     "commons-io", version "2.11.0").
//
// Archives from which no version can be learnt are not reported. Metadata
// "source" says which of "pom.properties", "manifest" or "filename" the
// package came from.
//
// When the groupId is unknown (cases 2 and 3 without Implementation-Vendor-Id)
// Package.Name is the bare artifactId without a colon, the PURL has no
// namespace ("pkg:maven/commons-io@2.11.0") and Metadata "groupIdUnknown" is
// "true", so that matchers can tell a guess from a coordinate.
//
// Licenses come from the manifest's Bundle-License header. pom.properties
// files carry none; a manifest license is attached to a pom.properties
// package only when the archive holds exactly one.
//
// Archives nested in archives (WEB-INF/lib/*.jar in a war, BOOT-INF/lib/*.jar
// in a Spring Boot jar, lib/*.jar and modules in an ear, or any other entry
// with a Java archive extension) are read recursively. Packages found in a
// nested archive have Package.Path set to the outer path, "!/", and the entry
// name, repeated for each level: "/app/outer.war!/WEB-INF/lib/inner.jar".
// A nested entry that is not a valid zip file is reported from its file name.
//
// Decompression bombs are stopped: nesting is limited to MaxDepth levels, a
// buffered entry to MaxEntrySize uncompressed bytes and MaxRatio times its
// compressed size, and one outer archive to MaxTotalSize uncompressed bytes
// read and MaxEntries zip entries in all; crossing a limit fails the archive with an error naming the
// archive and entry. Stored (uncompressed) nested archives, as in Spring Boot
// jars, are read in place without copying.
package java

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/package-url/packageurl-go"
)

// Limits against decompression bombs.
const (
	// MaxDepth is the deepest archive nesting read (the outer archive is
	// depth 0).
	MaxDepth = 8
	// MaxEntrySize bounds one decompressed nested archive.
	MaxEntrySize = 128 << 20
	// MaxRatio bounds the compression ratio of entries over 1 MiB.
	MaxRatio = 100
	// MaxTotalSize bounds the bytes decompressed for one outer archive.
	MaxTotalSize = 512 << 20
	// MaxEntries bounds the zip entries listed in one outer archive and
	// everything nested in it (which also bounds work on zips whose entries
	// overlap to nest the same bytes again and again).
	MaxEntries = 1 << 20
	// maxSmallFile bounds pom.properties and MANIFEST.MF entries.
	maxSmallFile = 1 << 20
)

var archiveExts = []string{".jar", ".war", ".ear", ".par", ".sar", ".jpi", ".hpi", ".kar", ".nar"}

// isArchive reports whether a file name has a Java archive extension.
func isArchive(name string) bool {
	if len(name) < 5 || name[len(name)-4] != '.' {
		return false
	}
	ext := name[len(name)-4:]
	for _, e := range archiveExts {
		if strings.EqualFold(ext, e) {
			return true
		}
	}
	return false
}

type extractor struct{}

// New returns the Java archive extractor.
func New() inventory.Extractor { return extractor{} }

// All returns every extractor of this package.
func All() []inventory.Extractor { return []inventory.Extractor{New()} }

func (extractor) Name() string { return "language/java/archive" }

func (extractor) Version() int { return 1 }

func (extractor) Required(fi inventory.FileInfo) bool { return isArchive(fi.Path) }

func (extractor) Extract(ctx context.Context, in *inventory.Input) (inventory.Result, error) {
	ra, err := in.ReaderAt()
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	w := &walker{ctx: ctx}
	pkgs, err := w.archive(ra, in.Size, in.Path, 0)
	if err != nil {
		return inventory.Result{}, err
	}
	// The walk fills in the outer archive's path.
	for i := range pkgs {
		if pkgs[i].Path == in.Path {
			pkgs[i].Path = ""
		}
	}
	return inventory.Result{Packages: pkgs}, nil
}

// walker reads one outer archive and everything nested in it.
type walker struct {
	ctx context.Context
	// total counts the bytes decompressed so far.
	total int64
	// entries counts the zip entries listed so far.
	entries int
}

// LimitError reports an archive that crosses a decompression limit.
type LimitError struct {
	// Archive is the (possibly nested, "!/"-joined) archive path.
	Archive string
	// Entry is the entry being read.
	Entry string
	// Reason says which limit was crossed.
	Reason string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: entry %q: %s (possible decompression bomb)", e.Archive, e.Entry, e.Reason)
}

// archive returns the packages in the zip archive r of the given size,
// displayed as name.
func (w *walker) archive(r io.ReaderAt, size int64, name string, depth int) ([]inventory.Package, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, &notZipError{name, err}
	}
	if w.entries += len(zr.File); w.entries > MaxEntries {
		return nil, &LimitError{name, zr.File[len(zr.File)-1].Name, fmt.Sprintf("archives list more than %d entries in all", MaxEntries)}
	}
	var poms []inventory.Package
	var manifest map[string]string
	var nested []inventory.Package
	for _, f := range zr.File {
		if err := w.ctx.Err(); err != nil {
			return nil, err
		}
		switch {
		case f.Name == "META-INF/MANIFEST.MF" && manifest == nil:
			b, err := w.readSmall(f, name)
			if err != nil {
				return nil, err
			}
			manifest = ParseManifest(b)
		case strings.HasPrefix(f.Name, "META-INF/maven/") && strings.HasSuffix(f.Name, "/pom.properties"):
			b, err := w.readSmall(f, name)
			if err != nil {
				return nil, err
			}
			if p, ok := pomPackage(ParseProperties(b), f.Name); ok {
				poms = append(poms, p)
			}
		case isArchive(f.Name) && !f.Mode().IsDir():
			pkgs, err := w.nested(r, f, name, depth)
			if err != nil {
				return nil, err
			}
			nested = append(nested, pkgs...)
		}
	}
	own := ownPackages(poms, manifest, path.Base(name))
	for i := range own {
		own[i].Path = name
	}
	return dedupe(append(own, nested...)), nil
}

// notZipError reports an archive that is not a readable zip file.
type notZipError struct {
	name string
	err  error
}

func (e *notZipError) Error() string {
	return fmt.Sprintf("%s: not a valid zip archive: %v", e.name, e.err)
}
func (e *notZipError) Unwrap() error { return e.err }

// nested reads an archive inside an archive.
func (w *walker) nested(parent io.ReaderAt, f *zip.File, outer string, depth int) ([]inventory.Package, error) {
	name := outer + "!/" + f.Name
	if depth+1 > MaxDepth {
		return nil, &LimitError{outer, f.Name, fmt.Sprintf("archives nested more than %d levels deep", MaxDepth)}
	}
	var r io.ReaderAt
	var size int64
	if off, err := f.DataOffset(); err == nil && f.Method == zip.Store &&
		f.CompressedSize64 == f.UncompressedSize64 && f.CompressedSize64 <= uint64(1<<62) {
		// Stored: read in place.
		r, size = io.NewSectionReader(parent, off, int64(f.CompressedSize64)), int64(f.CompressedSize64)
	} else {
		b, err := w.read(f, outer, MaxEntrySize)
		if err != nil {
			var le *LimitError
			if errors.As(err, &le) {
				return nil, err
			}
			// An unreadable entry still tells its name.
			return fileNamePackages(name), nil
		}
		r, size = bytesReaderAt(b), int64(len(b))
	}
	pkgs, err := w.archive(r, size, name, depth+1)
	var nz *notZipError
	if errors.As(err, &nz) && nz.name == name {
		return fileNamePackages(name), nil
	}
	return pkgs, err
}

func fileNamePackages(name string) []inventory.Package {
	pkgs := ownPackages(nil, nil, path.Base(name))
	for i := range pkgs {
		pkgs[i].Path = name
	}
	return pkgs
}

// readSmall reads a manifest or properties entry.
func (w *walker) readSmall(f *zip.File, archive string) ([]byte, error) {
	return w.read(f, archive, maxSmallFile)
}

// read decompresses an entry within the limits.
func (w *walker) read(f *zip.File, archive string, limit int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, &LimitError{archive, f.Name, fmt.Sprintf("uncompressed size %d is over the %d byte limit", f.UncompressedSize64, limit)}
	}
	if f.CompressedSize64 > 0 && f.UncompressedSize64 > 1<<20 && f.UncompressedSize64/f.CompressedSize64 > MaxRatio {
		return nil, &LimitError{archive, f.Name, fmt.Sprintf("compression ratio %d:1 is over the %d:1 limit", f.UncompressedSize64/f.CompressedSize64, MaxRatio)}
	}
	if w.total+int64(f.UncompressedSize64) > MaxTotalSize {
		return nil, &LimitError{archive, f.Name, fmt.Sprintf("archive decompresses to more than %d bytes in all", MaxTotalSize)}
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: entry %q: %w", archive, f.Name, err)
	}
	defer rc.Close()
	// archive/zip fails reads past the declared size, so the declared size
	// (checked above) bounds what is read; the limit guards the buffer
	// anyway.
	b, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	w.total += int64(len(b))
	if err != nil {
		return nil, fmt.Errorf("%s: entry %q: %w", archive, f.Name, err)
	}
	return b, nil
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// pomPackage turns pom.properties into a package. Missing coordinates are
// taken from the entry path META-INF/maven/<groupId>/<artifactId>/.
func pomPackage(props map[string]string, entry string) (inventory.Package, bool) {
	g, a, v := props["groupId"], props["artifactId"], props["version"]
	if parts := strings.Split(entry, "/"); len(parts) == 5 {
		if g == "" {
			g = parts[2]
		}
		if a == "" {
			a = parts[3]
		}
	}
	if g == "" || a == "" || v == "" {
		return inventory.Package{}, false
	}
	return newPackage(g, a, v, "pom.properties"), true
}

// ownPackages picks the packages that describe the archive itself.
func ownPackages(poms []inventory.Package, manifest map[string]string, fileName string) []inventory.Package {
	fileArtifact, fileVersion := ParseFileName(fileName)
	var licenses []string
	if manifest != nil {
		licenses = bundleLicenses(manifest["Bundle-License"])
	}
	if len(poms) > 0 {
		if len(poms) == 1 {
			poms[0].Licenses = licenses
		}
		return poms
	}
	if manifest != nil {
		version := first(manifest["Implementation-Version"], manifest["Bundle-Version"], manifest["Specification-Version"], fileVersion)
		artifact := first(fileArtifact, symbolicName(manifest["Bundle-SymbolicName"]), manifest["Implementation-Title"], manifest["Specification-Title"])
		if version != "" && artifact != "" {
			p := newPackage(manifest["Implementation-Vendor-Id"], artifact, version, "manifest")
			p.Licenses = licenses
			return []inventory.Package{p}
		}
	}
	if fileArtifact != "" && fileVersion != "" {
		return []inventory.Package{newPackage("", fileArtifact, fileVersion, "filename")}
	}
	return nil
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// symbolicName drops the directives of a Bundle-SymbolicName
// ("org.foo.bar;singleton:=true").
func symbolicName(s string) string {
	name, _, _ := strings.Cut(s, ";")
	return strings.TrimSpace(name)
}

// bundleLicenses reads the license names of an OSGi Bundle-License header:
// comma-separated clauses, each a name or URL with optional
// ";key=value" attributes, values possibly quoted.
func bundleLicenses(s string) []string {
	var out []string
	var clause strings.Builder
	quoted := false
	flush := func() {
		name, _, _ := strings.Cut(clause.String(), ";")
		if name = strings.Trim(strings.TrimSpace(name), `"`); name != "" && name != "<<EXTERNAL>>" {
			out = append(out, name)
		}
		clause.Reset()
	}
	for _, c := range s {
		switch {
		case c == '"':
			quoted = !quoted
			clause.WriteRune(c)
		case c == ',' && !quoted:
			flush()
		default:
			clause.WriteRune(c)
		}
	}
	flush()
	return out
}

// ParseFileName splits an archive file name into artifactId and version at
// the last "-" that is followed by a digit: "commons-io-2.11.0.jar" ->
// ("commons-io", "2.11.0"), "log4j-1.2-api-2.17.1.jar" -> ("log4j-1.2-api",
// "2.17.1"). Without such a "-" the version is empty.
func ParseFileName(name string) (artifact, version string) {
	base := path.Base(name)
	if isArchive(base) {
		base = base[:len(base)-4]
	}
	for i := len(base) - 2; i > 0; i-- {
		if base[i] == '-' && base[i+1] >= '0' && base[i+1] <= '9' {
			return base[:i], base[i+1:]
		}
	}
	return base, ""
}

func newPackage(group, artifact, version, source string) inventory.Package {
	meta := map[string]string{"source": source}
	name := artifact
	if group == "" {
		meta["groupIdUnknown"] = "true"
	} else {
		name = group + ":" + artifact
	}
	return inventory.Package{
		Name:     name,
		Version:  version,
		Type:     inventory.TypeMaven,
		PURL:     packageurl.NewPackageURL(packageurl.TypeMaven, group, artifact, version, nil, "").ToString(),
		Metadata: meta,
	}
}

// dedupe drops repeated packages (the same artifact listed twice in one
// archive), keeping the first.
func dedupe(pkgs []inventory.Package) []inventory.Package {
	seen := make(map[string]bool, len(pkgs))
	out := pkgs[:0]
	for _, p := range pkgs {
		if k := p.Key(); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}
