package container

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/testenv"
	"golang.org/x/sys/unix"
)

// layerTree builds an overlay layer directory from a spec: "path" a file,
// "path/" a directory, "path -> target" a symlink, "path (whiteout)" a
// whiteout and "path/ (opaque)" an opaque directory.
func layerTree(t *testing.T, dir string, spec ...string) {
	t.Helper()
	for _, s := range spec {
		p, target, link := strings.Cut(s, " -> ")
		full := filepath.Join(dir, strings.TrimSuffix(strings.Fields(p)[0], "/"))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case link:
			err = os.Symlink(target, full)
		case strings.HasSuffix(p, "(whiteout)"):
			err = unix.Mknod(full, unix.S_IFCHR, 0)
		case strings.HasSuffix(p, "(opaque)"):
			if err = os.MkdirAll(full, 0o755); err == nil {
				err = unix.Setxattr(full, "trusted.overlay.opaque", []byte("y"), 0)
			}
		case strings.HasSuffix(p, "/"):
			err = os.MkdirAll(full, 0o755)
		default:
			err = os.WriteFile(full, []byte(p), 0o644)
		}
		if err != nil {
			testenv.Missing(t, "cannot build overlay layer %s (needs root and trusted xattrs): %v", s, err)
		}
	}
}

func TestFromImageLayers(t *testing.T) {
	root := t.TempDir()
	upper, l1, l2 := filepath.Join(root, "upper"), filepath.Join(root, "l1"), filepath.Join(root, "l2")
	layerTree(t, l2,
		"bin/busybox", "bin/sh -> busybox", "etc/passwd", "etc/hosts", "data/old/x", "gone", "gonedir/f",
		"escape -> ../../../../../../etc/passwd", "abs -> /bin/busybox", "loop -> loop", "relbin -> ./bin/../bin/sh",
		"file", "empty/")
	layerTree(t, l1, "etc/passwd", "dir/a", "etc/group")
	layerTree(t, upper,
		"etc/passwd", "new", "gone (whiteout)", "gonedir (whiteout)", "data/old/ (opaque)", "data/old/y",
		"bin/", "lnk -> bin", "etc/group (whiteout)", "newdir/")
	c := &Container{ID: id1, UpperDir: upper, LowerDirs: []string{l1, l2}}

	tests := []struct {
		path    string
		want    bool
		wantErr error
		errText string
	}{
		{path: "/bin/busybox", want: true},
		{path: "/bin/sh", want: true},
		{path: "/bin", want: true},
		{path: "/", want: true},
		{path: "/etc/hosts", want: true},
		{path: "/dir/a", want: true},
		{path: "/abs", want: true},
		{path: "/relbin", want: true},
		{path: "/lnk/busybox", want: true},
		{path: "/bin/../bin/./busybox", want: true},
		{path: "/../../bin/busybox", want: true},
		{path: "/etc/passwd", want: false},
		{path: "/escape", want: false}, // the container's /etc/passwd, never the host's
		{path: "/new", want: false},
		{path: "/data/old/y", want: false},
		{path: "/data/old", want: false},
		{path: "/newdir", want: false},
		{path: "/gone", wantErr: fs.ErrNotExist},
		{path: "/gonedir/f", wantErr: fs.ErrNotExist},
		{path: "/etc/group", wantErr: fs.ErrNotExist},
		{path: "/data/old/x", wantErr: fs.ErrNotExist},
		{path: "/missing", wantErr: fs.ErrNotExist},
		{path: "/loop", errText: "too many levels"},
		{path: "/file/x", errText: "not a directory"},
		{path: "bin/busybox", errText: "not absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := FromImage(c, tt.path)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("FromImage(%q) error = %v, want %v", tt.path, err, tt.wantErr)
				}
			case tt.errText != "":
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("FromImage(%q) error = %v, want %q", tt.path, err, tt.errText)
				}
			case err != nil:
				t.Fatalf("FromImage(%q): %v", tt.path, err)
			case got != tt.want:
				t.Errorf("FromImage(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
	if _, err := FromImage(&Container{ID: id1}, "/bin/sh"); err == nil {
		t.Error("FromImage without an upper dir succeeded")
	}
}

func FuzzFromImage(f *testing.F) {
	root := f.TempDir()
	upper, lower := filepath.Join(root, "upper"), filepath.Join(root, "lower")
	for _, d := range []string{upper, filepath.Join(lower, "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "bin", "busybox"), nil, 0o755); err != nil {
		f.Fatal(err)
	}
	for _, l := range []struct{ name, target string }{{"up", "../../../.."}, {"loop", "loop"}, {"sh", "bin/busybox"}} {
		if err := os.Symlink(l.target, filepath.Join(lower, l.name)); err != nil {
			f.Fatal(err)
		}
	}
	c := &Container{ID: id1, UpperDir: upper, LowerDirs: []string{lower}}
	for _, s := range []string{"/bin/busybox", "/up/up/bin/busybox", "/loop", "/sh", "/../x", "//bin//", "rel"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		ok, err := FromImage(c, p)
		if err != nil && ok {
			t.Fatalf("FromImage(%q) = true with error %v", p, err)
		}
	})
}
