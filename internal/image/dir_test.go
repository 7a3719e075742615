package image

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestDirSource(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	must(t, os.WriteFile(outside, []byte("outside"), 0o600))
	must(t, os.MkdirAll(filepath.Join(root, "etc/apt"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=dir\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), []byte("deb x"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "usr/lib/z"), nil, 0o644))
	must(t, os.Symlink(outside, filepath.Join(root, "etc/abs-link")))
	must(t, os.Symlink("../../../../secret", filepath.Join(root, "usr/rel-link")))
	must(t, os.Symlink("/", filepath.Join(root, "usr/lib/rootlink")))

	for _, ref := range []string{"dir:" + root, root} {
		t.Run(ref, func(t *testing.T) {
			img, err := Open(context.Background(), ref, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if img.Source != SourceDir || img.Name != root || img.Config != nil || len(img.Layers) != 1 {
				t.Fatalf("Source, Name, Config, layers = %q, %q, %v, %d", img.Source, img.Name, img.Config, len(img.Layers))
			}
			l := img.Layers[0]
			if l.DiffID() != "dir:"+root || l.Size() != -1 {
				t.Errorf("DiffID, Size = %q, %d", l.DiffID(), l.Size())
			}
			files, names := readLayer(t, l)
			want := []string{"etc/", "etc/abs-link", "etc/apt/", "etc/apt/sources.list", "etc/os-release",
				"usr/", "usr/lib/", "usr/lib/rootlink", "usr/lib/z", "usr/rel-link"}
			if !slices.Equal(names, want) {
				t.Errorf("entries = %q, want %q", names, want)
			}
			if files["etc/os-release"] != "ID=dir\n" || files["etc/apt/sources.list"] != "deb x" || len(files) != 3 {
				t.Errorf("files = %q", files)
			}
			links := map[string]string{}
			st, err := l.Open(context.Background())
			must(t, err)
			defer st.Close()
			for {
				hdr, err := st.Next()
				if err != nil {
					break
				}
				if hdr.Typeflag == tar.TypeSymlink {
					links[hdr.Name] = hdr.Linkname
				}
			}
			if links["etc/abs-link"] != outside || links["usr/rel-link"] != "../../../../secret" || links["usr/lib/rootlink"] != "/" {
				t.Errorf("links = %q", links)
			}
		})
	}
}

func TestDirSourceCancel(t *testing.T) {
	root := t.TempDir()
	must(t, os.WriteFile(filepath.Join(root, "a"), []byte("a"), 0o644))
	img, err := Open(context.Background(), "dir:"+root, Options{})
	must(t, err)
	defer img.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st, err := img.Layers[0].Open(ctx)
	must(t, err)
	defer st.Close()
	if _, err := st.Next(); err != context.Canceled {
		t.Errorf("Next after cancel: err = %v", err)
	}
}
