package image

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// archiveSeeds returns archives for the fuzz seeds: a valid docker archive,
// a valid OCI archive and broken variants.
func archiveSeeds(t testing.TB) [][]byte {
	dir := t.TempDir()
	var seeds [][]byte
	for i, entries := range [][]entry{
		dockerArchive(t, nil),
		ociArchive(t, nil),
		dockerArchive(t, func(m *[]map[string]any, _ map[string]any, _ map[string][]byte) {
			(*m)[0]["Layers"] = []string{"../x"}
		}),
		ociArchive(t, func(_, m map[string]any, _ map[string][]byte) { m["layers"] = nil }),
	} {
		file := filepath.Join(dir, "seed"+string(rune('a'+i))+".tar")
		writeTar(t, file, entries)
		b, err := os.ReadFile(file)
		must(t, err)
		seeds = append(seeds, b, b[:len(b)/2])
	}
	return seeds
}

// FuzzArchive feeds arbitrary bytes to the tar index and the docker/OCI
// archive readers, and reads every layer of what opens.
func FuzzArchive(f *testing.F) {
	for _, s := range archiveSeeds(f) {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		tmp, err := os.CreateTemp(dir, "fuzz-*.tar")
		if err != nil {
			t.Fatal(err)
		}
		file := tmp.Name()
		defer os.Remove(file)
		_, err = tmp.Write(data)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := indexTar(fh); err == nil {
			for name, e := range s.entries {
				if e.offset < 0 || e.size < 0 || e.offset+e.size > int64(len(data)) {
					t.Fatalf("entry %q out of bounds: %+v", name, e)
				}
				if strings.HasPrefix(name, "/") || strings.Contains("/"+name+"/", "/../") {
					t.Fatalf("unsafe name indexed: %q", name)
				}
			}
			s.close()
		} else {
			fh.Close()
		}
		img, err := openArchive(file, "", selection{}, "linux/amd64")
		if err != nil {
			if img != nil {
				t.Fatal("image and error")
			}
			return
		}
		defer img.Close()
		if img.Config == nil || len(img.Config.RootFS.DiffIDs) != len(img.Layers) {
			t.Fatal("opened image without config or with mismatched diff IDs")
		}
		for _, l := range img.Layers {
			st, err := l.Open(context.Background())
			if err != nil {
				continue
			}
			for {
				if _, err := st.Next(); err != nil {
					break
				}
				if _, err := io.Copy(io.Discard, st); err != nil {
					break
				}
			}
			st.Close()
		}
	})
}

// FuzzMetadata feeds arbitrary bytes to the manifest, index and config
// parsers and to the entry name and digest checks.
func FuzzMetadata(f *testing.F) {
	for _, s := range archiveSeeds(f)[:4] {
		f.Add(s)
	}
	for _, s := range []string{
		`{"schemaVersion":2,"manifests":[{"digest":"sha256:` + strings.Repeat("a", 64) + `","platform":{"os":"linux","architecture":"arm64"}}]}`,
		`{"schemaVersion":2,"config":{"digest":"sha256:` + strings.Repeat("a", 64) + `"},"layers":[]}`,
		`[{"Config":"c.json","RepoTags":["a:1","b:2"],"Layers":["l/layer.tar"]}]`,
		`{"rootfs":{"diff_ids":["sha256:` + strings.Repeat("a", 64) + `"]},"history":[{"empty_layer":true}]}`,
		"blobs/sha256/" + strings.Repeat("a", 64), "../etc/passwd", "/abs", "a/./b/../c",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if idx, err := parseIndex(data); err == nil {
			if len(idx.Manifests) > 0 {
				_, _ = chooseDescriptor(idx.Manifests, "linux/arm64")
			}
			for _, d := range idx.Manifests {
				if _, err := blobPath(d.Digest.String()); err != nil {
					t.Fatalf("accepted index with bad digest %q", d.Digest)
				}
			}
		}
		if m, err := parseManifest(data); err == nil {
			for _, d := range m.Layers {
				if p, err := blobPath(d.Digest.String()); err != nil || strings.Contains(p, "..") {
					t.Fatalf("accepted manifest with bad layer digest %q", d.Digest)
				}
			}
		}
		if entries, err := parseDockerManifest(data); err == nil {
			_, _, _ = selectDockerImage(entries, selection{})
			_, _, _ = selectDockerImage(entries, selection{tag: "a:1"})
		}
		if cfg, err := parseConfig(data); err == nil {
			_, _ = buildLayers(cfg, make([]layerBlob, len(cfg.RootFS.DiffIDs)))
		}
		_ = isIndex("", data)
		s := string(data)
		if name, err := cleanEntryName(s); err == nil {
			if strings.HasPrefix(name, "/") || name == ".." || strings.HasPrefix(name, "../") {
				t.Fatalf("cleanEntryName(%q) = %q", s, name)
			}
		}
		if d := digestFromBlobName(s); d != "" && checkDigest(d) != nil {
			t.Fatalf("digestFromBlobName(%q) = %q", s, d)
		}
		if err := verifyDigest(s, data); err == nil && s != sha256Digest(data) && !strings.HasPrefix(s, "sha512:") {
			t.Fatalf("verifyDigest accepted %q", s)
		}
	})
}
