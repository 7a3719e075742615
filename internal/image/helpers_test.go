package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layerTar returns an uncompressed layer tar holding files (path ->
// content), with parent directories, in lexical order.
func layerTar(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, n := range names {
		parts := strings.Split(n, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if !dirs[d] {
				dirs[d] = true
				must(t, tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}))
			}
		}
		must(t, tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))}))
		_, err := tw.Write([]byte(files[n]))
		must(t, err)
	}
	must(t, tw.Close())
	return buf.Bytes()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testLayer is a layer of a test image: its files, how its blob is
// compressed and the history line that made it.
type testLayer struct {
	files     map[string]string
	comp      compression.Compression
	createdBy string
}

// makeLayer builds a go-containerregistry layer stored with comp.
func makeLayer(t testing.TB, tl testLayer) v1.Layer {
	t.Helper()
	data := layerTar(t, tl.files)
	if tl.comp == compression.None {
		return static.NewLayer(data, types.OCIUncompressedLayer)
	}
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	opts := []tarball.LayerOption{tarball.WithCompression(tl.comp)}
	if tl.comp == compression.ZStd {
		opts = append(opts, tarball.WithMediaType(types.OCILayerZStd))
	}
	l, err := tarball.LayerFromOpener(opener, opts...)
	must(t, err)
	return l
}

// makeImage builds an OCI image for platform ("linux/amd64") from layers,
// with an empty-layer history entry before the last layer so that the
// history to layer mapping is exercised.
func makeImage(t testing.TB, platform string, layers ...testLayer) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, tl := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: makeLayer(t, tl), History: v1.History{CreatedBy: tl.createdBy}})
		must(t, err)
	}
	cfg, err := img.ConfigFile()
	must(t, err)
	cfg = cfg.DeepCopy()
	p, err := v1.ParsePlatform(platform)
	must(t, err)
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	if n := len(cfg.History); n > 1 {
		empty := v1.History{CreatedBy: "ENV MAMORI=1", EmptyLayer: true}
		cfg.History = append(cfg.History[:n-1:n-1], empty, cfg.History[n-1])
	}
	img, err = mutate.ConfigFile(img, cfg)
	must(t, err)
	return img
}

// standardLayers are three layers: gzip, zstd and uncompressed.
var standardLayers = []testLayer{
	{files: map[string]string{"etc/os-release": "ID=mamori\n", "bin/a": "A"}, comp: compression.GZip, createdBy: "ADD base.tar /"},
	{files: map[string]string{"usr/share/b.txt": "zstd layer"}, comp: compression.ZStd, createdBy: "COPY b.txt /usr/share/"},
	{files: map[string]string{"opt/c/data": strings.Repeat("plain ", 1000)}, comp: compression.None, createdBy: "COPY c /opt/c"},
}

// writeLayout writes an OCI layout at dir holding img tagged tag (if not
// empty).
func writeLayout(t testing.TB, dir string, imgs map[string]v1.Image) layout.Path {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	must(t, err)
	var tags []string
	for tag := range imgs {
		tags = append(tags, tag)
	}
	sort.Strings(tags)
	for _, tag := range tags {
		var opts []layout.Option
		if tag != "" {
			opts = append(opts, layout.WithAnnotations(map[string]string{annotationRefName: tag}))
		}
		must(t, p.AppendImage(imgs[tag], opts...))
	}
	return p
}

// tarDir writes the files under dir into a tar at file (an OCI archive).
func tarDir(t testing.TB, dir, file string) {
	t.Helper()
	f, err := os.Create(file)
	must(t, err)
	defer f.Close()
	tw := tar.NewWriter(f)
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		return nil
	}))
	must(t, tw.Close())
}

// readLayer returns a layer's regular files (path -> content) and every
// entry name in order.
func readLayer(t testing.TB, l Layer) (map[string]string, []string) {
	t.Helper()
	st, err := l.Open(context.Background())
	must(t, err)
	defer st.Close()
	files := map[string]string{}
	var names []string
	for {
		hdr, err := st.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		must(t, err)
		names = append(names, hdr.Name)
		if hdr.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(st)
			must(t, err)
			files[hdr.Name] = string(b)
		}
	}
	return files, names
}

// checkImage compares an opened image with the go-containerregistry image
// it was made from: ID, diff IDs, history and every layer's files.
func checkImage(t *testing.T, got *Image, want v1.Image, layers []testLayer) {
	t.Helper()
	id, err := want.ConfigName()
	must(t, err)
	if got.ID != id.String() {
		t.Errorf("ID = %s, want %s", got.ID, id)
	}
	if got.Config == nil {
		t.Fatal("Config is nil")
	}
	wl, err := want.Layers()
	must(t, err)
	if len(got.Layers) != len(wl) {
		t.Fatalf("%d layers, want %d", len(got.Layers), len(wl))
	}
	for i, l := range got.Layers {
		diffID, err := wl[i].DiffID()
		must(t, err)
		if l.DiffID() != diffID.String() {
			t.Errorf("layer %d DiffID = %s, want %s", i, l.DiffID(), diffID)
		}
		if l.CreatedBy() != layers[i].createdBy {
			t.Errorf("layer %d CreatedBy = %q, want %q", i, l.CreatedBy(), layers[i].createdBy)
		}
		files, _ := readLayer(t, l)
		for name, content := range layers[i].files {
			if files[name] != content {
				t.Errorf("layer %d (%s): %s = %q, want %q", i, layers[i].comp, name, files[name], content)
			}
		}
		if len(files) != len(layers[i].files) {
			t.Errorf("layer %d: %d files, want %d", i, len(files), len(layers[i].files))
		}
	}
}
