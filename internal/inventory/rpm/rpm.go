// Package rpm reads RPM databases in all three formats rpm has used:
// Berkeley DB (Packages), NDB (Packages.db, SUSE) and SQLite (rpmdb.sqlite),
// under /var/lib/rpm/ or /usr/lib/sysimage/rpm/.
//
// The databases are decoded by github.com/knqyf263/go-rpmdb, which opens a
// path: the file is copied, up to MaxDBSize, into a private temporary
// directory that is removed afterwards. go-rpmdb decodes Berkeley DB and NDB
// pages in a goroutine of its own, where a panic could not be recovered, and
// trusts lengths it reads from the file. So each database is first checked
// here (validate): every page, slot and blob the library will touch must lie
// inside the file, overflow page chains must be well formed and acyclic, and
// every package header must fit in its blob. Panics in the part of the library
// that runs on the caller's goroutine are turned into errors naming the file.
//
// Packages: Version is "version-release", Epoch is set when the header has
// one, SourceName and SourceVersion come from the source RPM file name
// ("bash-5.1.8-6.el9.src.rpm" gives "bash" and "5.1.8-6.el9"), Files are the
// installed paths. gpg-pubkey entries (imported signing keys) are skipped.
package rpm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
	"github.com/mamorisec/mamori/internal/inventory"
	_ "modernc.org/sqlite" // the pure Go "sqlite" database/sql driver go-rpmdb opens SQLite databases with
)

// MaxDBSize is the largest rpm database read.
const MaxDBSize = 1 << 30

var dbDirs = []string{"/var/lib/rpm/", "/usr/lib/sysimage/rpm/"}

var dbNames = []string{"Packages", "Packages.db", "rpmdb.sqlite"}

type extractor struct{}

// New returns the rpm database extractor.
func New() inventory.Extractor { return extractor{} }

func (extractor) Name() string { return "os/rpm" }

func (extractor) Version() int { return 1 }

func (extractor) Required(fi inventory.FileInfo) bool {
	dir, name := path.Split(fi.Path)
	if dir != dbDirs[0] && dir != dbDirs[1] {
		return false
	}
	for _, n := range dbNames {
		if name == n {
			return true
		}
	}
	return false
}

func (extractor) Extract(ctx context.Context, in *inventory.Input) (inventory.Result, error) {
	tmp, err := os.MkdirTemp("", "mamori-rpmdb-")
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: creating a temporary directory: %w", in.Path, err)
	}
	defer os.RemoveAll(tmp)
	file := filepath.Join(tmp, path.Base(in.Path))
	if err := copyLimited(file, in.Reader, MaxDBSize); err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	if err := ctx.Err(); err != nil {
		return inventory.Result{}, err
	}
	pkgs, err := ReadFile(file)
	if err != nil {
		return inventory.Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return inventory.Result{Packages: pkgs}, nil
}

// copyLimited writes r to a new file name (mode 0600), failing when r holds
// more than limit bytes.
func copyLimited(name string, r io.Reader, limit int64) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("copying the database: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copying the database: %w", err)
	}
	if n > limit {
		return &inventory.TooLargeError{Limit: limit}
	}
	return nil
}

// ReadFile reads the packages of the rpm database at name, in any of the
// three formats.
func ReadFile(name string) ([]inventory.Package, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	err = validate(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	infos, err := list(name)
	if err != nil {
		return nil, err
	}
	var pkgs []inventory.Package
	for _, pi := range infos {
		if pi.Name == "gpg-pubkey" {
			continue
		}
		if pi.Name == "" || pi.Version == "" {
			return nil, fmt.Errorf("package header without name or version (name %q)", pi.Name)
		}
		pkgs = append(pkgs, convert(pi))
	}
	return pkgs, nil
}

// list runs go-rpmdb, turning a panic into an error.
func list(name string) (infos []*rpmdb.PackageInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			infos, err = nil, fmt.Errorf("corrupt rpm database: the decoder failed: %v", r)
		}
	}()
	db, err := rpmdb.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening rpm database: %w", err)
	}
	defer db.Close()
	infos, err = db.ListPackages()
	if err != nil {
		return nil, fmt.Errorf("corrupt rpm database: %w", err)
	}
	return infos, nil
}

func convert(pi *rpmdb.PackageInfo) inventory.Package {
	p := inventory.Package{
		Name:    pi.Name,
		Version: pi.Version,
		Type:    inventory.TypeRPM,
		Arch:    pi.Arch,
		Files:   installedFiles(pi),
	}
	if pi.Release != "" {
		p.Version += "-" + pi.Release
	}
	if pi.Epoch != nil {
		e := *pi.Epoch
		p.Epoch = &e
	}
	if pi.License != "" {
		p.Licenses = []string{pi.License}
	}
	p.SourceName, p.SourceVersion = ParseSourceRPM(pi.SourceRpm)
	if p.SourceName == "" {
		p.SourceName, p.SourceVersion = p.Name, p.Version
	}
	if pi.Modularitylabel != "" {
		p.Metadata = map[string]string{"modularityLabel": pi.Modularitylabel}
	}
	return p
}

// installedFiles joins the directory and base names of the files a package
// installed, skipping entries whose directory index is out of range.
func installedFiles(pi *rpmdb.PackageInfo) []string {
	var files []string
	for i, base := range pi.BaseNames {
		if i >= len(pi.DirIndexes) {
			break
		}
		d := int(pi.DirIndexes[i])
		if d < 0 || d >= len(pi.DirNames) {
			continue
		}
		files = append(files, path.Join(pi.DirNames[d], base))
	}
	return files
}

// ParseSourceRPM splits a source RPM file name into the source package name
// and "version-release": "bash-5.1.8-6.el9.src.rpm" gives "bash" and
// "5.1.8-6.el9". It returns empty strings for names that do not have that
// shape.
func ParseSourceRPM(s string) (name, version string) {
	s, ok := strings.CutSuffix(s, ".rpm")
	i := strings.LastIndexByte(s, '.')
	if !ok || i < 0 || strings.Contains(s[i:], "-") {
		return "", ""
	}
	s = s[:i] // the architecture: src or nosrc
	rel := strings.LastIndexByte(s, '-')
	if rel <= 0 {
		return "", ""
	}
	ver := strings.LastIndexByte(s[:rel], '-')
	if ver <= 0 || ver+1 == rel || rel+1 == len(s) {
		return "", ""
	}
	return s[:ver], s[ver+1:]
}
