package image

import (
	"archive/tar"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

// Limits on the metadata read from an image. Layers are streamed and have no
// limit.
const (
	// maxMetadata bounds manifest.json, index.json, manifests and configs.
	maxMetadata = 32 << 20
	// maxTarEntries bounds the index of an archive's entries.
	maxTarEntries = 1 << 20
)

// blobStore is a read-only set of named files: the entries of an archive or
// the files of an OCI layout directory. Names are slash-separated and
// relative ("blobs/sha256/...", "manifest.json").
type blobStore interface {
	// open returns the named file and its size. A missing file gives an
	// error wrapping fs.ErrNotExist.
	open(name string) (io.ReadCloser, int64, error)
	// close releases the store.
	close() error
}

// cleanEntryName turns an entry name into the form used as a store key, or
// reports that it is unsafe (absolute, or with a ".." component).
func cleanEntryName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty entry name")
	}
	if strings.HasPrefix(name, "/") || strings.Contains(name, "\\") {
		return "", fmt.Errorf("unsafe entry name %q: absolute or with a backslash", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("unsafe entry name %q: contains \"..\"", name)
		}
	}
	return path.Clean(name), nil
}

// tarEntry locates one regular file inside a tar archive.
type tarEntry struct {
	offset, size int64
}

// tarStore serves the regular files of an uncompressed tar archive as
// sections of the archive file, without copying them.
type tarStore struct {
	f       *os.File
	entries map[string]tarEntry
}

// indexTar reads the headers of the tar archive f once and records where each
// regular file's data lives. f is owned by the returned store.
func indexTar(f *os.File) (*tarStore, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	total := fi.Size()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	s := &tarStore{f: f, entries: map[string]tarEntry{}}
	tr := tar.NewReader(f)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return nil, errors.New("not a tar archive: empty")
			}
			if err := checkEndMarker(f); err != nil {
				return nil, err
			}
			return s, nil
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, errors.New("truncated tar archive")
			}
			return nil, fmt.Errorf("not a valid tar archive: %w", err)
		}
		if n >= maxTarEntries {
			return nil, fmt.Errorf("tar archive has more than %d entries", maxTarEntries)
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		for k := range hdr.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return nil, fmt.Errorf("entry %q: sparse files are not supported", hdr.Name)
			}
		}
		// archive/tar does not buffer: after Next the file offset is at
		// the entry's data.
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		if hdr.Size < 0 || off+hdr.Size > total {
			return nil, fmt.Errorf("truncated tar archive: entry %q extends past the end", hdr.Name)
		}
		s.entries[name] = tarEntry{offset: off, size: hdr.Size}
	}
}

// checkEndMarker checks that the archive, read up to the end, ended with
// the two zero blocks of a tar end-of-archive marker. archive/tar accepts a
// file that simply stops between entries, which is how a truncated download
// or copy often looks.
func checkEndMarker(f *os.File) error {
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	var marker [1024]byte
	if pos < int64(len(marker)) {
		return errors.New("truncated tar archive: no end-of-archive marker")
	}
	if _, err := f.ReadAt(marker[:], pos-int64(len(marker))); err != nil {
		return fmt.Errorf("reading tar archive: %w", err)
	}
	for _, b := range marker {
		if b != 0 {
			return errors.New("truncated tar archive: no end-of-archive marker")
		}
	}
	return nil
}

func (s *tarStore) open(name string) (io.ReadCloser, int64, error) {
	e, ok := s.entries[path.Clean(name)]
	if !ok {
		return nil, 0, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return sectionBlob{io.NewSectionReader(s.f, e.offset, e.size)}, e.size, nil
}

// sectionBlob is a blob read in place from an archive. It keeps Seek, so a
// tar reader over an uncompressed layer skips file contents it does not
// need instead of reading them.
type sectionBlob struct{ *io.SectionReader }

func (sectionBlob) Close() error { return nil }

func (s *tarStore) has(name string) bool {
	_, ok := s.entries[path.Clean(name)]
	return ok
}

func (s *tarStore) close() error { return s.f.Close() }

// dirStore serves the files of a directory (an OCI image layout). os.Root
// keeps every access inside the directory.
type dirStore struct {
	root *os.Root
}

func (s *dirStore) open(name string) (io.ReadCloser, int64, error) {
	f, err := s.root.Open(name)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: not a regular file", name)
	}
	return f, fi.Size(), nil
}

func (s *dirStore) close() error { return s.root.Close() }

// readSmall reads a whole metadata file from the store.
func readSmall(s blobStore, name string) ([]byte, error) {
	rc, _, err := s.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := inventory.ReadAllLimited(rc, maxMetadata)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return b, nil
}

var digestRE = regexp.MustCompile(`^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)

// checkDigest reports whether d is a well-formed sha256 or sha512 digest.
func checkDigest(d string) error {
	if !digestRE.MatchString(d) {
		return fmt.Errorf("malformed digest %q", d)
	}
	return nil
}

// blobPath returns the OCI layout path of a blob ("blobs/sha256/<hex>").
func blobPath(d string) (string, error) {
	if err := checkDigest(d); err != nil {
		return "", err
	}
	alg, hx, _ := strings.Cut(d, ":")
	return "blobs/" + alg + "/" + hx, nil
}

// verifyDigest checks that data has the well-formed digest d.
func verifyDigest(d string, data []byte) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	alg, want, _ := strings.Cut(d, ":")
	var h hash.Hash = sha256.New()
	if alg == "sha512" {
		h = sha512.New()
	}
	h.Write(data)
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("content does not match digest %s (it is %s:%s)", d, alg, got)
	}
	return nil
}

// sha256Digest returns the sha256 digest of data in "sha256:<hex>" form.
func sha256Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}
