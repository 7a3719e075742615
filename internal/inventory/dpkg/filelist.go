package dpkg

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
)

type fileListExtractor struct{}

// NewFileList returns the extractor for dpkg's file lists:
// /var/lib/dpkg/info/NAME.list (absolute paths, one a line; multiarch
// packages are named "NAME:ARCH.list") and distroless's
// /var/lib/dpkg/status.d/NAME.md5sums ("MD5  relative/path" lines). It
// reports Result.Files[NAME].
func NewFileList() inventory.Extractor { return fileListExtractor{} }

func (fileListExtractor) Name() string { return "os/dpkg/filelist" }

func (fileListExtractor) Version() int { return 1 }

func (fileListExtractor) Required(fi inventory.FileInfo) bool {
	dir, name := path.Split(fi.Path)
	switch dir {
	case infoDir + "/":
		return strings.HasSuffix(name, ".list") && len(name) > len(".list")
	case statusDir + "/":
		return strings.HasSuffix(name, ".md5sums") && len(name) > len(".md5sums")
	}
	return false
}

func (fileListExtractor) Extract(_ context.Context, in *inventory.Input) (inventory.Result, error) {
	b, err := inventory.ReadAllLimited(in.Reader, inventory.MaxManifestSize)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	name := path.Base(in.Path)
	var files []string
	if n, ok := strings.CutSuffix(name, ".md5sums"); ok {
		name = n
		files, err = ParseMD5Sums(b)
	} else {
		name = strings.TrimSuffix(name, ".list")
		files, err = ParseList(b)
	}
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	name, _, _ = strings.Cut(name, ":")
	if len(files) == 0 {
		return inventory.Result{}, nil
	}
	return inventory.Result{Files: map[string][]string{name: files}}, nil
}

// ParseList reads a dpkg .list file: one absolute path a line. The root
// directory entry "/." is skipped.
func ParseList(b []byte) ([]string, error) {
	var files []string
	for i, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 || string(line) == "/." {
			continue
		}
		if line[0] != '/' {
			return nil, fmt.Errorf("line %d: %q is not an absolute path", i+1, truncate(line))
		}
		files = append(files, string(line))
	}
	return files, nil
}

// ParseMD5Sums reads an md5sums file ("<32 hex digits>  relative/path" a
// line) and returns the paths made absolute.
func ParseMD5Sums(b []byte) ([]string, error) {
	var files []string
	for i, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue
		}
		sum, p, ok := bytes.Cut(line, []byte(" "))
		p = bytes.TrimLeft(p, " *")
		if !ok || len(sum) != 32 || !isHex(sum) || len(p) == 0 {
			return nil, fmt.Errorf("line %d: expected \"MD5  path\", got %q", i+1, truncate(line))
		}
		files = append(files, "/"+strings.TrimPrefix(string(p), "/"))
	}
	return files, nil
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
