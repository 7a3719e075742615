package secret

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

// extractorVersion changes whenever the built-in rules or the matching
// change.
const extractorVersion = 1

// allowedTrees are directories whose files are documentation or reference
// material that no program reads credentials from; key material there is a
// published example (e.g. /usr/share/doc/*/examples/server_key.pem).
var allowedTrees = []string{
	"/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/locale/",
	"/usr/share/help/", "/usr/share/gtk-doc/", "/usr/include/", "/proc/", "/sys/",
}

// allowedDirs are path segments that name a test tree. Packages ship their
// test suites with test keys and tokens (Python's test/, Go's testdata/,
// npm packages' __tests__/); an application's own test fixtures are not
// the credentials it runs with.
var allowedDirs = map[string]bool{
	"test": true, "tests": true, "testdata": true, "testing": true, "fixtures": true,
	"__tests__": true, "__fixtures__": true, "test-fixtures": true, "test_data": true,
	"spec": true, "__mocks__": true,
}

// allowedExts are documentation formats: they hold examples of
// credentials, not credentials a program uses.
var allowedExts = map[string]bool{".md": true, ".markdown": true, ".rst": true, ".adoc": true}

// binaryExts are file types that never hold a text credential; skipping
// them saves reading the file. Key stores (.p12, .pfx, .jks, .key, .pem)
// are not listed.
var binaryExts = map[string]bool{
	".so": true, ".a": true, ".o": true, ".ko": true, ".png": true, ".jpg": true, ".jpeg": true,
	".gif": true, ".ico": true, ".bmp": true, ".webp": true, ".svgz": true, ".gz": true, ".xz": true,
	".bz2": true, ".zst": true, ".lz4": true, ".zip": true, ".jar": true, ".war": true, ".ear": true,
	".whl": true, ".egg": true, ".deb": true, ".rpm": true, ".apk": true, ".pyc": true, ".pyo": true,
	".mo": true, ".ttf": true, ".otf": true, ".woff": true, ".woff2": true, ".pdf": true, ".mp3": true,
	".mp4": true, ".wav": true, ".ogg": true, ".class": true, ".dll": true, ".exe": true, ".db": true,
	".sqlite": true, ".wasm": true, ".node": true, ".tar": true, ".tgz": true, ".7z": true,
	".pf2": true, ".bin": true,
}

// allowedPath reports whether path is in an allowlisted tree.
func (s *Scanner) allowedPath(p string) bool {
	for _, t := range allowedTrees {
		if strings.HasPrefix(p, t) {
			return true
		}
	}
	if allowedExts[strings.ToLower(path.Ext(p))] {
		return true
	}
	for dir := path.Dir(p); dir != "/" && dir != "." && dir != ""; dir = path.Dir(dir) {
		if allowedDirs[path.Base(dir)] {
			return true
		}
	}
	for _, a := range s.allowPaths {
		if a.MatchString(p) {
			return true
		}
	}
	return false
}

// binaryExt reports whether p has a binary file extension, including
// versioned shared libraries (libfoo.so.1.2).
func binaryExt(p string) bool {
	b := path.Base(p)
	if binaryExts[strings.ToLower(path.Ext(b))] {
		return true
	}
	return strings.Contains(b, ".so.")
}

// Extractor returns the scanner as an inventory.Extractor for the walk.
func (s *Scanner) Extractor() inventory.Extractor { return extractor{s} }

// extractor adapts a Scanner to inventory.Extractor and
// inventory.Configured.
type extractor struct{ s *Scanner }

// Name implements inventory.Extractor.
func (extractor) Name() string { return "secret" }

// Version implements inventory.Extractor.
func (extractor) Version() int { return extractorVersion }

// ConfigDigest implements inventory.Configured.
func (e extractor) ConfigDigest() string { return e.s.digest }

// Required implements inventory.Extractor: regular, non-empty files up to
// the size limit, outside allowlisted trees, without a binary extension.
func (e extractor) Required(fi inventory.FileInfo) bool {
	return fi.Mode.IsRegular() && fi.Size > 0 && fi.Size <= e.s.maxSize &&
		!binaryExt(fi.Path) && !e.s.allowedPath(fi.Path)
}

// Extract implements inventory.Extractor.
func (e extractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	if b := in.Bytes(); b != nil && int64(len(b)) <= e.s.maxSize {
		return inventory.Result{Findings: e.s.ScanBytes(in.Path, b)}, nil
	}
	data, err := inventory.ReadAllLimited(in.Reader, e.s.maxSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("reading %s for secrets: %w", in.Path, err)
	}
	return inventory.Result{Findings: e.s.ScanBytes(in.Path, data)}, nil
}

// PKCS#12 (RFC 7292) structure markers: PFX version 3 followed by a
// pkcs7-data ContentInfo, and the OIDs of the bags that hold private keys.
var (
	pfxVersion   = []byte{0x02, 0x01, 0x03, 0x30}
	oidPKCS7Data = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}
	oidKeyBag    = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x01}
	oidShrouded  = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02}
)

// pkcs12Finding reports a PKCS#12 key store. A file whose structure shows
// a key bag holds a private key (HIGH). A .p12 or .pfx file without a
// visible key bag may still hold one in an encrypted container (MEDIUM).
// Trust stores (Java's cacerts) have certificate bags only and no such
// extension, and are not reported.
func pkcs12Finding(p string, data []byte) (inventory.Finding, bool) {
	head := data[:min(len(data), 40)]
	if len(data) < 2 || data[0] != 0x30 {
		return inventory.Finding{}, false
	}
	i := bytes.Index(head, pfxVersion)
	if i < 0 || i > 6 || !bytes.Contains(head, oidPKCS7Data) {
		return inventory.Finding{}, false
	}
	f := inventory.Finding{
		Kind: inventory.KindSecret, RuleID: "pkcs12-key-store", Category: "PrivateKey",
		Source: inventory.SourceFile, Path: p, Engine: "builtin",
	}
	switch ext := strings.ToLower(path.Ext(p)); {
	case bytes.Contains(data, oidKeyBag) || bytes.Contains(data, oidShrouded):
		f.Title, f.Severity = "PKCS#12 key store with a private key", SeverityHigh
		f.Match = "PKCS#12 file with a private key bag (binary, not shown)"
	case ext == ".p12" || ext == ".pfx":
		f.Title, f.Severity = "PKCS#12 key store", SeverityMedium
		f.Match = "PKCS#12 file with encrypted contents (binary, not shown)"
	default:
		return inventory.Finding{}, false
	}
	return f, true
}
