// Package bundle moves the vulnerability database to air-gapped sites as one
// offline bundle file, and installs such a bundle only after verifying it.
//
// A bundle is a zstd-compressed tar archive (".tar.zst") with exactly two
// regular files: manifest.json first, then the database mamori.db. The
// manifest records the SHA-256 and size of the database, so Import can check
// it while streaming. zstd was chosen over gzip because it decompresses
// several times faster and compresses the database better, its frames carry
// a checksum, the decoder bounds its memory (the window size) on hostile
// input, and klauspost/compress is already a dependency; "tar --zstd -xf"
// unpacks a bundle by hand.
package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mamorisec/mamori/internal/atomicfile"
	"github.com/mamorisec/mamori/internal/inventory"
)

// SchemaVersion is the version of the bundle layout and manifest written by
// Export. Import rejects bundles with a newer version.
const SchemaVersion = 1

// Names of the entries of a bundle.
const (
	ManifestName = "manifest.json"
	DBName       = "mamori.db"
)

// Ext is the usual file name extension of a bundle.
const Ext = ".tar.zst"

// maxDBSize is the largest database a bundle may hold (a variable so that
// tests can lower it).
var maxDBSize int64 = 8 << 30

const (
	// maxManifestSize bounds manifest.json.
	maxManifestSize = 1 << 20
	// maxWindow bounds the zstd window, and so the decoder's memory.
	maxWindow = 64 << 20
	// maxTrailing bounds the padding read after the end of the tar archive.
	maxTrailing = 1 << 20
)

// Manifest describes a bundle.
type Manifest struct {
	// SchemaVersion is the bundle format version (SchemaVersion).
	SchemaVersion int `json:"schemaVersion"`
	// DBSchemaVersion is the schema version of the database file.
	DBSchemaVersion int `json:"dbSchemaVersion"`
	// Built is when the database was built.
	Built time.Time `json:"built"`
	// Created is when the bundle was written.
	Created time.Time `json:"created"`
	// Sources lists the source files the database was built from.
	Sources []SourceInfo `json:"sources"`
	// Files lists the files of the bundle other than the manifest.
	Files []FileInfo `json:"files"`
}

// SourceInfo describes one source file of the database.
type SourceInfo struct {
	Name    string `json:"name"`
	URL     string `json:"url,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	Records int    `json:"records"`
}

// FileInfo describes one file of a bundle.
type FileInfo struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Export writes a bundle of the database at dbPath to w. It sets
// m.SchemaVersion and m.Files, and m.Created to the current time when zero.
func Export(w io.Writer, dbPath string, m Manifest) error {
	if err := export(w, dbPath, m); err != nil {
		return fmt.Errorf("exporting %s: %w", dbPath, err)
	}
	return nil
}

// ExportFile writes a bundle of the database at dbPath to bundlePath
// atomically.
func ExportFile(bundlePath, dbPath string, m Manifest) error {
	return atomicfile.Write(bundlePath, 0o644, func(w io.Writer) error {
		return Export(w, dbPath, m)
	})
}

func export(w io.Writer, dbPath string, m Manifest) error {
	f, err := os.Open(dbPath)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	size := st.Size()
	if size > maxDBSize {
		return fmt.Errorf("database is %d bytes, over the bundle limit of %d bytes", size, maxDBSize)
	}
	sum, err := hashN(f, size)
	if err != nil {
		return err
	}
	m.SchemaVersion = SchemaVersion
	if m.Created.IsZero() {
		m.Created = time.Now().UTC()
	}
	m.Files = []FileInfo{{Name: DBName, Size: size, SHA256: sum}}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	manifest = append(manifest, '\n')

	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg, Name: ManifestName, Size: int64(len(manifest)),
		Mode: 0o644, ModTime: m.Created, Format: tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := tw.Write(manifest); err != nil {
		return err
	}
	hdr.Name, hdr.Size = DBName, size
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.CopyN(tw, io.TeeReader(f, h), size); err != nil {
		return fmt.Errorf("database changed while exporting: %w", err)
	}
	if hex.EncodeToString(h.Sum(nil)) != sum {
		return errors.New("database changed while exporting")
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// hashN returns the hex SHA-256 of the n bytes of r, failing when r holds
// another number of bytes.
func hashN(r io.Reader, n int64) (string, error) {
	h := sha256.New()
	got, err := io.Copy(h, r)
	if err != nil {
		return "", err
	}
	if got != n {
		return "", fmt.Errorf("read %d bytes, expected %d: file changed while reading", got, n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ImportFile imports the bundle at bundlePath like Import; errors name the
// bundle.
func ImportFile(bundlePath, destPath string, verify func(tmpDBPath string) error) (Manifest, error) {
	f, err := os.Open(bundlePath)
	if err != nil {
		return Manifest{}, err
	}
	defer f.Close()
	m, err := Import(f, destPath, verify)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", bundlePath, err)
	}
	return m, nil
}

// Import reads a bundle from r and installs its database at destPath.
//
// The database is extracted into a temporary file next to destPath and
// checked against the manifest (SHA-256 and size); entries other than
// exactly one manifest.json followed by one mamori.db, entries that are not
// regular files, unsafe paths and oversized files are rejected. verify, when
// not nil, is then called with the temporary file's path (to open the
// database and check its schema). Only when all of that succeeds is the file
// renamed over destPath; on any error destPath is left untouched and the
// temporary file is removed. Errors start with "invalid bundle" when the
// bundle is at fault; callers reading from a file should add its name, as
// ImportFile does.
func Import(r io.Reader, destPath string, verify func(tmpDBPath string) error) (Manifest, error) {
	dir := filepath.Dir(destPath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Manifest{}, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(destPath)+".import-*")
	if err != nil {
		return Manifest{}, err
	}
	installed := false
	defer func() {
		if !installed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	m, err := extract(r, tmp)
	if err != nil {
		return Manifest{}, fmt.Errorf("invalid bundle: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return Manifest{}, err
	}
	if err := tmp.Sync(); err != nil {
		return Manifest{}, err
	}
	if err := tmp.Close(); err != nil {
		return Manifest{}, err
	}
	if verify != nil {
		if err := verify(tmp.Name()); err != nil {
			return Manifest{}, fmt.Errorf("bundled database failed verification: %w", err)
		}
	}
	if err := os.Rename(tmp.Name(), destPath); err != nil {
		return Manifest{}, fmt.Errorf("installing database: %w", err)
	}
	installed = true
	if err := syncDir(dir); err != nil {
		return Manifest{}, err
	}
	return *m, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	gzipMagic = []byte{0x1f, 0x8b}
)

// extract reads the bundle from r, writes its database to db and returns the
// verified manifest.
func extract(r io.Reader, db *os.File) (*Manifest, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(len(zstdMagic))
	switch {
	case bytes.Equal(magic, zstdMagic):
	case bytes.HasPrefix(magic, gzipMagic):
		return nil, errors.New("gzip-compressed; a mamori bundle is a zstd-compressed tar archive (" + Ext + ")")
	case len(magic) == 0:
		return nil, errors.New("empty file")
	default:
		return nil, errors.New("not a mamori bundle (not zstd-compressed)")
	}
	zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderMaxMemory(maxWindow))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var m *Manifest
	var dbDone bool
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading entry %d: %w", i+1, readErr(err))
		}
		if err := checkHeader(hdr); err != nil {
			return nil, err
		}
		switch {
		case hdr.Name == ManifestName && m != nil, hdr.Name == DBName && dbDone:
			return nil, fmt.Errorf("duplicate entry %q", hdr.Name)
		case m == nil && hdr.Name != ManifestName:
			return nil, fmt.Errorf("missing %s: the first entry is %q", ManifestName, hdr.Name)
		case hdr.Name == ManifestName:
			if m, err = readManifest(tr, hdr.Size); err != nil {
				return nil, err
			}
		default:
			if err := copyDB(db, tr, hdr.Size, m.Files[0]); err != nil {
				return nil, err
			}
			dbDone = true
		}
	}
	if m == nil {
		return nil, fmt.Errorf("missing %s: the archive is empty", ManifestName)
	}
	if !dbDone {
		return nil, fmt.Errorf("missing %s", DBName)
	}
	return m, checkTrailing(zr)
}

// readErr turns the errors of a truncated stream into a clear message.
func readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated: %w", err)
	}
	return err
}

// checkHeader accepts only the two regular files of a bundle.
func checkHeader(hdr *tar.Header) error {
	name := hdr.Name
	if strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || strings.Contains(name, "\x00") ||
		strings.Contains(name, "..") {
		return fmt.Errorf("entry %q: unsafe path", name)
	}
	if name != ManifestName && name != DBName {
		return fmt.Errorf("unknown entry %q (a bundle holds only %s and %s)", name, ManifestName, DBName)
	}
	if hdr.Typeflag != tar.TypeReg {
		return fmt.Errorf("entry %q is a %s, not a regular file", name, typeName(hdr.Typeflag))
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("entry %q is a sparse file, not a regular file", name)
		}
	}
	return nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeDir:
		return "directory"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "FIFO"
	}
	return fmt.Sprintf("special entry (type %q)", t)
}

func readManifest(r io.Reader, size int64) (*Manifest, error) {
	if size > maxManifestSize {
		return nil, fmt.Errorf("%s is %d bytes, over the limit of %d bytes", ManifestName, size, maxManifestSize)
	}
	b, err := inventory.ReadAllLimited(r, maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ManifestName, readErr(err))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: unexpected data after the JSON object", ManifestName)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	return &m, nil
}

// check validates a manifest read from a bundle.
func (m *Manifest) check() error {
	switch {
	case m.SchemaVersion <= 0:
		return fmt.Errorf("invalid schemaVersion %d", m.SchemaVersion)
	case m.SchemaVersion > SchemaVersion:
		return fmt.Errorf("bundle format version %d is newer than this mamori supports (%d); upgrade mamori", m.SchemaVersion, SchemaVersion)
	case m.Built.IsZero():
		return errors.New("no built time")
	case len(m.Files) != 1:
		return fmt.Errorf("files must list exactly %s, found %d entries", DBName, len(m.Files))
	case m.Files[0].Name != DBName:
		return fmt.Errorf("files lists unknown file %q (want only %s)", m.Files[0].Name, DBName)
	}
	f := m.Files[0]
	if f.Size < 0 || f.Size > maxDBSize {
		return fmt.Errorf("%s size %d is outside the limit of 0 to %d bytes", DBName, f.Size, maxDBSize)
	}
	if d, err := hex.DecodeString(f.SHA256); err != nil || len(d) != sha256.Size || strings.ToLower(f.SHA256) != f.SHA256 {
		return fmt.Errorf("%s sha256 %.80q is not a lower-case hex SHA-256", DBName, f.SHA256)
	}
	return nil
}

// copyDB copies the database entry (size bytes of r) to db and checks it
// against the manifest's entry want.
func copyDB(db *os.File, r io.Reader, size int64, want FileInfo) error {
	if size != want.Size {
		return fmt.Errorf("%s is %d bytes, the manifest says %d", DBName, size, want.Size)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(db, h), r)
	if err != nil {
		return fmt.Errorf("extracting %s: %w", DBName, readErr(err))
	}
	if n != size {
		return fmt.Errorf("%s: read %d of %d bytes", DBName, n, size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != want.SHA256 {
		return fmt.Errorf("%s has sha256 %s, the manifest says %s (corrupt bundle)", DBName, sum, want.SHA256)
	}
	return nil
}

// checkTrailing reads the rest of the compressed stream after the end of the
// tar archive, so that the zstd checksum is verified and a truncated stream
// detected, and accepts only zero padding.
func checkTrailing(zr io.Reader) error {
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, err := zr.Read(buf)
		total += int64(n)
		for _, c := range buf[:n] {
			if c != 0 {
				return errors.New("unexpected data after the end of the archive")
			}
		}
		if total > maxTrailing {
			return errors.New("too much padding after the end of the archive")
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the end of the archive: %w", readErr(err))
		}
	}
}
