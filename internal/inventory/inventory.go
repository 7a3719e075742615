// Package inventory defines what mamori knows about the contents of an image:
// installed packages, the operating system they belong to, and the extractor
// plug-in interface that turns a single file into packages.
//
// One filesystem walk (package walk) owns all I/O. It asks every registered
// Extractor whether it needs a path (a cheap predicate on the path and file
// metadata) and, if so, hands it the file's contents once. Adding a format means
// adding one sub-package with an Extractor and its test.
package inventory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
)

// Package types, used in Package.Type and as PURL types where they coincide.
const (
	TypeDeb      = "deb"
	TypeAPK      = "apk"
	TypeRPM      = "rpm"
	TypeNPM      = "npm"
	TypePyPI     = "pypi"
	TypeGolang   = "golang"
	TypeMaven    = "maven"
	TypeGem      = "gem"
	TypeComposer = "composer"
	TypeCargo    = "cargo"
	TypeNuGet    = "nuget"
)

// Layer identifies the image layer a package or file came from.
type Layer struct {
	// Index is the position of the layer in the image, 0 for the base layer.
	Index int `json:"index"`
	// DiffID is the digest of the uncompressed layer tar.
	DiffID string `json:"diffID,omitempty"`
	// CreatedBy is the build history entry (e.g. the Dockerfile RUN line) that
	// produced the layer, when the image config records it.
	CreatedBy string `json:"createdBy,omitempty"`
}

// Package is one installed piece of software found in an image.
type Package struct {
	// Name is the package name in its ecosystem's own spelling. For Maven it is
	// "groupId:artifactId"; for Go modules the module path.
	Name string `json:"name"`
	// Version is the installed version, verbatim.
	Version string `json:"version"`
	// Type is the package type (TypeDeb, TypeNPM, ...).
	Type string `json:"type"`
	// PURL is the package URL (https://github.com/package-url/purl-spec).
	PURL string `json:"purl"`
	// Licenses are the declared licenses, as found (SPDX IDs where the source
	// already uses them).
	Licenses []string `json:"licenses,omitempty"`
	// Arch is the architecture for OS packages.
	Arch string `json:"arch,omitempty"`
	// SourceName and SourceVersion name the source package that a binary OS
	// package was built from; vulnerability data for distributions is keyed by
	// them.
	SourceName    string `json:"sourceName,omitempty"`
	SourceVersion string `json:"sourceVersion,omitempty"`
	// Epoch is the RPM epoch, when set.
	Epoch *int `json:"epoch,omitempty"`
	// Path is the file in the image that the package was read from (a package
	// database, a manifest, a lock file, a binary), absolute with a leading "/".
	Path string `json:"path"`
	// Layer is the layer that introduced this package (set by the walk).
	Layer Layer `json:"layer"`
	// OwnedBy names the OS package ("deb:python3-six") whose files contain this
	// package, for language packages installed by the distribution. Matchers
	// use the distribution's data for such packages instead of reporting them
	// twice.
	OwnedBy string `json:"ownedBy,omitempty"`
	// Dev marks development-only dependencies from lock files.
	Dev bool `json:"dev,omitempty"`
	// Metadata holds format-specific facts that are useful in reports (for
	// example "goVersion" for Go binaries, "mainModule" for a Go main module).
	Metadata map[string]string `json:"metadata,omitempty"`
	// Files lists the files an OS package installed (absolute paths). It is
	// used to find language packages owned by OS packages and is not part of
	// any output.
	Files []string `json:"-"`
	// Symbols, for a Go module found in a binary, are the functions and
	// methods of the module's packages that the binary contains, as
	// "importpath.Func" and "importpath.Type.Method". They decide whether
	// a vulnerable symbol is reachable. Sorted. Nil when the binary has no symbol
	// information or the package did not come from a binary.
	Symbols []string `json:"-"`
}

// Key returns a string that identifies the package within one image.
func (p *Package) Key() string {
	return p.Type + "|" + p.Name + "|" + p.Version + "|" + p.Path
}

// OS describes the operating system of an image.
type OS struct {
	// ID is the os-release ID ("debian", "alpine", "rhel", "ubuntu", ...).
	ID string `json:"id"`
	// VersionID is the os-release VERSION_ID ("12", "3.20.1", "9.4").
	VersionID string `json:"versionID,omitempty"`
	// Codename is VERSION_CODENAME where present ("bookworm").
	Codename string `json:"codename,omitempty"`
	// PrettyName is a human-readable name.
	PrettyName string `json:"prettyName,omitempty"`
	// IDLike lists the ID_LIKE families.
	IDLike []string `json:"idLike,omitempty"`
	// Source names the file the data came from.
	Source string `json:"source,omitempty"`
}

// Result is what an extractor finds in one file.
type Result struct {
	// Packages found in the file. Path and Layer are filled in by the walk.
	Packages []Package
	// OS is set by OS release extractors.
	OS *OS
	// Files maps an OS package name to the files it installed, for package
	// databases that keep file lists outside the main database (dpkg's
	// info/*.list). The walk uses it to find language packages owned by OS
	// packages. Databases with inline file lists set Package.Files instead.
	Files map[string][]string
	// Licenses maps an OS package name to licenses found in a separate file
	// (dpkg's /usr/share/doc/NAME/copyright). The walk attaches them to the
	// package of that type and name.
	Licenses map[string][]string
	// LicenseType is the package type that Licenses applies to.
	LicenseType string
	// Findings are secrets, malware, license texts or misconfigurations
	// found in the file. Path and Layer are filled in by the walk.
	Findings []Finding
}

// FileInfo is the metadata the walk knows about a file before reading it.
type FileInfo struct {
	// Path is absolute, cleaned, with a leading "/".
	Path string
	// Size in bytes.
	Size int64
	// Mode holds the permission bits and type.
	Mode fs.FileMode
}

// Input is a file handed to an extractor.
type Input struct {
	FileInfo
	// Reader streams the file's contents. Extractors that read it must not
	// call ReaderAt as well.
	Reader io.Reader
	// readerAt lazily buffers the file for random access.
	readerAt func() (io.ReaderAt, error)
	// data is the whole file when the walk holds it in memory or has
	// mapped it.
	data []byte
}

// NewBufferedInput builds an Input over a file the walk holds in memory
// (or has mapped read-only): content analyzers that need every byte use
// Bytes instead of copying the file.
func NewBufferedInput(fi FileInfo, data []byte) *Input {
	in := NewInput(fi, bytesReader(data), nil)
	in.data = data
	return in
}

// Bytes returns the file's whole contents when the walk has them in memory
// or mapped, and nil otherwise. The slice is shared: callers must not
// modify it or keep it after Extract returns.
func (in *Input) Bytes() []byte {
	if in.data != nil && int64(len(in.data)) == in.Size {
		return in.data
	}
	return nil
}

// bytesReader reads data; it implements io.ReaderAt as well.
func bytesReader(data []byte) *bytes.Reader { return bytes.NewReader(data) }

// NewInput builds an Input. readerAt, when non-nil, provides random access to
// the same contents (the walk buffers the file once for all extractors).
func NewInput(fi FileInfo, r io.Reader, readerAt func() (io.ReaderAt, error)) *Input {
	return &Input{FileInfo: fi, Reader: r, readerAt: readerAt}
}

// ReaderAt gives random access to the file (needed for binaries and zip
// archives). The returned reader covers Size bytes.
func (in *Input) ReaderAt() (io.ReaderAt, error) {
	if in.readerAt != nil {
		return in.readerAt()
	}
	if ra, ok := in.Reader.(io.ReaderAt); ok {
		return ra, nil
	}
	b, err := io.ReadAll(io.LimitReader(in.Reader, in.Size))
	if err != nil {
		return nil, err
	}
	ra := bytesReaderAt(b)
	in.readerAt = func() (io.ReaderAt, error) { return ra, nil }
	return ra, nil
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fs.ErrInvalid
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

// Extractor reads one file format.
type Extractor interface {
	// Name is a short unique identifier ("os/dpkg", "language/npm/lockfile").
	Name() string
	// Version changes whenever the extractor's output for the same input can
	// change; it is part of the per-layer cache key.
	Version() int
	// Required reports whether the extractor needs the file. It must be cheap:
	// it is called for every regular file of every layer and must not do I/O.
	Required(fi FileInfo) bool
	// Extract reads the file. An error means the file is corrupt or
	// unsupported; the walk records it with the image, layer and path and goes
	// on with other files.
	Extract(ctx context.Context, in *Input) (Result, error)
}

// MaxManifestSize is the largest text manifest (lock file, package database,
// metadata file) extractors read into memory. Larger files are reported as
// errors instead of exhausting memory.
const MaxManifestSize = 256 << 20

// ReadAllLimited reads r up to limit bytes and fails with a clear error when
// the input is larger.
func ReadAllLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{Limit: limit}
	}
	return b, nil
}

// TooLargeError reports an input larger than an extractor accepts.
type TooLargeError struct{ Limit int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("file is larger than the %d MiB limit", e.Limit>>20)
}
