package audit

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mamorisec/mamori/internal/inventory"
)

// LoadOrCreateKey returns the HMAC key stored in path, creating it with
// MinKeySize random bytes (hex, file mode 0600) when it does not exist; created
// reports whether it did. An existing key file readable or writable by
// group or others, malformed, or shorter than MinKeySize is an error: the
// key is what stops someone with database access from rewriting the chain.
func LoadOrCreateKey(path string) (key []byte, created bool, err error) {
	key, err = createKey(path)
	if err == nil {
		return key, true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, err
	}
	r, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("reading audit key %s: %w", path, err)
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("reading audit key %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, false, fmt.Errorf("audit key %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("audit key %s has mode %04o: other users may access it; run chmod 600", path, st.Mode().Perm())
	}
	data, err := inventory.ReadAllLimited(r, 1024)
	if err != nil {
		return nil, false, fmt.Errorf("reading audit key %s: %w", path, err)
	}
	key, err = hex.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil {
		return nil, false, fmt.Errorf("audit key %s: not hexadecimal: %w", path, err)
	}
	if len(key) < MinKeySize {
		return nil, false, fmt.Errorf("audit key %s: %d bytes, want at least %d", path, len(key), MinKeySize)
	}
	return key, false, nil
}

// createKey writes a new key to a temporary file and hard-links it to
// path, so a concurrent reader never sees a partial key. It returns an
// error wrapping fs.ErrExist when path exists.
func createKey(path string) ([]byte, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fs.ErrExist
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".audit-key-*")
	if err != nil {
		return nil, fmt.Errorf("creating audit key %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	key := make([]byte, MinKeySize)
	rand.Read(key)
	_, werr := tmp.WriteString(hex.EncodeToString(key) + "\n")
	if err := errors.Join(werr, tmp.Chmod(0o600), tmp.Sync(), tmp.Close()); err != nil {
		return nil, fmt.Errorf("writing audit key %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fs.ErrExist
		}
		return nil, fmt.Errorf("creating audit key %s: %w", path, err)
	}
	return key, nil
}
