package image

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestArchiveAndLayoutSources opens the same image (gzip, zstd and
// uncompressed layers) as a docker archive, an OCI layout and an OCI
// archive, with explicit prefixes and by sniffing the path.
func TestArchiveAndLayoutSources(t *testing.T) {
	dir := t.TempDir()
	img := makeImage(t, "linux/amd64", standardLayers...)

	dockerTar := filepath.Join(dir, "docker.tar")
	tag, err := name.NewTag("example.com/mamori/test:v1")
	must(t, err)
	must(t, tarball.WriteToFile(dockerTar, tag, img))

	layoutDir := filepath.Join(dir, "layout")
	writeLayout(t, layoutDir, map[string]v1.Image{"": img})
	ociTar := filepath.Join(dir, "oci.tar")
	tarDir(t, layoutDir, ociTar)

	digest, err := img.Digest()
	must(t, err)
	tests := []struct {
		ref, source, name, digest string
	}{
		{"docker-archive:" + dockerTar, SourceDockerArchive, "example.com/mamori/test:v1", ""},
		{"docker-archive:" + dockerTar + ":example.com/mamori/test:v1", SourceDockerArchive, "example.com/mamori/test:v1", ""},
		{dockerTar, SourceDockerArchive, "example.com/mamori/test:v1", ""},
		{"oci-layout:" + layoutDir, SourceOCILayout, layoutDir, digest.String()},
		{"oci-layout:" + layoutDir + "@" + digest.String(), SourceOCILayout, layoutDir + "@" + digest.String(), digest.String()},
		{layoutDir, SourceOCILayout, layoutDir, digest.String()},
		{"oci-archive:" + ociTar, SourceOCIArchive, ociTar, digest.String()},
		{ociTar, SourceOCIArchive, ociTar, digest.String()},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := Open(context.Background(), tt.ref, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if got.Source != tt.source || got.Name != tt.name || got.Digest != tt.digest || got.Ref != tt.ref {
				t.Errorf("Source, Name, Digest, Ref = %q, %q, %q, %q; want %q, %q, %q, %q",
					got.Source, got.Name, got.Digest, got.Ref, tt.source, tt.name, tt.digest, tt.ref)
			}
			if got.Platform != "linux/amd64" {
				t.Errorf("Platform = %q", got.Platform)
			}
			checkImage(t, got, img, standardLayers)
			for i, l := range got.Layers {
				if l.Size() <= 0 {
					t.Errorf("layer %d Size = %d", i, l.Size())
				}
				if tt.source != SourceDockerArchive {
					want, err := img.Layers()
					must(t, err)
					d, _ := want[i].Digest()
					if l.Digest() != d.String() {
						t.Errorf("layer %d Digest = %s, want %s", i, l.Digest(), d)
					}
				}
			}
		})
	}
}

// TestDockerArchiveTags covers archives holding several images.
func TestDockerArchiveTags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "multi.tar")
	a := makeImage(t, "linux/amd64", standardLayers[0])
	b := makeImage(t, "linux/amd64", standardLayers[1], standardLayers[2])
	ta, err := name.NewTag("mamori/a:1")
	must(t, err)
	tb, err := name.NewTag("mamori/b:2")
	must(t, err)
	must(t, tarball.MultiWriteToFile(file, map[name.Tag]v1.Image{ta: a, tb: b}))

	_, err = Open(context.Background(), "docker-archive:"+file, Options{})
	if err == nil || !strings.Contains(err.Error(), "holds 2 images") || !strings.Contains(err.Error(), "mamori/a:1") || !strings.Contains(err.Error(), "mamori/b:2") {
		t.Errorf("ambiguous archive: err = %v", err)
	}
	_, err = Open(context.Background(), "docker-archive:"+file+":mamori/c:3", Options{})
	if err == nil || !strings.Contains(err.Error(), `no image tagged "mamori/c:3"`) {
		t.Errorf("unknown tag: err = %v", err)
	}
	for _, tt := range []struct {
		tag    string
		want   v1.Image
		layers []testLayer
	}{
		{"mamori/a:1", a, standardLayers[:1]},
		{"index.docker.io/mamori/b:2", b, standardLayers[1:]},
	} {
		got, err := Open(context.Background(), "docker-archive:"+file+":"+tt.tag, Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, got, tt.want, tt.layers)
		must(t, got.Close())
	}
}

// multiArchIndex returns an index of an amd64 and an arm64 image.
func multiArchIndex(t testing.TB) (v1.ImageIndex, v1.Image, v1.Image) {
	t.Helper()
	amd := makeImage(t, "linux/amd64", standardLayers[0])
	arm := makeImage(t, "linux/arm64/v8", standardLayers[1], standardLayers[2])
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	return idx, amd, arm
}

// TestOCILayoutPlatforms selects images from a multi-platform index nested
// in index.json, and images by tag.
func TestOCILayoutPlatforms(t *testing.T) {
	dir := t.TempDir()
	idx, amd, arm := multiArchIndex(t)
	p, err := layout.Write(dir, empty.Index)
	must(t, err)
	must(t, p.AppendIndex(idx, layout.WithAnnotations(map[string]string{annotationRefName: "multi"})))
	single := makeImage(t, "linux/amd64", standardLayers[2])
	must(t, p.AppendImage(single, layout.WithAnnotations(map[string]string{annotationRefName: "single"})))

	tests := []struct {
		ref, platform string
		want          v1.Image
		layers        []testLayer
		err           string
	}{
		{ref: dir + ":multi", platform: "linux/amd64", want: amd, layers: standardLayers[:1]},
		{ref: dir + ":multi", platform: "linux/arm64", want: arm, layers: standardLayers[1:]},
		{ref: dir + ":multi", platform: "linux/arm64/v8", want: arm, layers: standardLayers[1:]},
		{ref: dir + ":single", platform: "linux/arm64", want: single, layers: standardLayers[2:]},
		{ref: dir + ":multi", platform: "linux/s390x", err: "no image for platform linux/s390x; available: linux/amd64, linux/arm64/v8"},
		{ref: dir + ":multi", platform: "linux/arm64/v7", err: "available: linux/amd64, linux/arm64/v8"},
		{ref: dir, platform: "linux/amd64", err: "choose one by tag (multi, single)"},
		{ref: dir + ":nope", platform: "linux/amd64", err: `no image tagged "nope"; tags: multi, single`},
	}
	for _, tt := range tests {
		t.Run(tt.ref+"/"+tt.platform, func(t *testing.T) {
			got, err := Open(context.Background(), "oci-layout:"+tt.ref, Options{Platform: tt.platform})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			checkImage(t, got, tt.want, tt.layers)
			cfg, _ := tt.want.ConfigFile()
			if got.Platform != configPlatform(cfg) {
				t.Errorf("Platform = %q, want %q", got.Platform, configPlatform(cfg))
			}
		})
	}
}
