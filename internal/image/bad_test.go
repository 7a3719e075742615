package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one file of a hand-made archive.
type entry struct {
	name string
	body []byte
}

// writeTar writes entries as a tar archive at file.
func writeTar(t testing.TB, file string, entries []entry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		must(t, tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.body))}))
		_, err := tw.Write(e.body)
		must(t, err)
	}
	must(t, tw.Close())
	must(t, os.WriteFile(file, buf.Bytes(), 0o600))
}

func jsonOf(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return b
}

// dockerArchive returns the entries of a valid one-layer docker archive;
// edit changes them first.
func dockerArchive(t testing.TB, edit func(manifest *[]map[string]any, config map[string]any, files map[string][]byte)) []entry {
	t.Helper()
	layer := layerTar(t, map[string]string{"etc/os-release": "ID=x\n"})
	config := map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{sha256Digest(layer)}},
		"history": []map[string]any{{"created_by": "ADD x /"}},
	}
	manifest := []map[string]any{{"Config": "config.json", "RepoTags": []string{"x:1"}, "Layers": []string{"l/layer.tar"}}}
	files := map[string][]byte{"l/layer.tar": layer}
	if edit != nil {
		edit(&manifest, config, files)
	}
	if _, ok := files["config.json"]; !ok {
		files["config.json"] = jsonOf(t, config)
	}
	if _, ok := files["manifest.json"]; !ok {
		files["manifest.json"] = jsonOf(t, manifest)
	}
	var entries []entry
	for _, n := range []string{"manifest.json", "config.json", "l/layer.tar"} {
		if b, ok := files[n]; ok && b != nil {
			entries = append(entries, entry{n, b})
		}
	}
	for n, b := range files {
		if n != "manifest.json" && n != "config.json" && n != "l/layer.tar" {
			entries = append(entries, entry{n, b})
		}
	}
	return entries
}

// ociArchive returns the entries of a valid one-image OCI archive; edit may
// change the index, manifest and files.
func ociArchive(t testing.TB, edit func(index, manifest map[string]any, files map[string][]byte)) []entry {
	t.Helper()
	layer := layerTar(t, map[string]string{"etc/os-release": "ID=x\n"})
	config := jsonOf(t, map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{sha256Digest(layer)}},
	})
	files := map[string][]byte{
		"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"blobs/sha256/" + strings.TrimPrefix(sha256Digest(layer), "sha256:"):  layer,
		"blobs/sha256/" + strings.TrimPrefix(sha256Digest(config), "sha256:"): config,
	}
	manifest := map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256Digest(config), "size": len(config)},
		"layers": []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256Digest(layer), "size": len(layer)}},
	}
	index := map[string]any{"schemaVersion": 2}
	if edit != nil {
		edit(index, manifest, files)
	}
	mb := jsonOf(t, manifest)
	md := sha256Digest(mb)
	if _, ok := index["manifests"]; !ok {
		index["manifests"] = []map[string]any{{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": len(mb)}}
	}
	if _, ok := files["manifest"]; !ok {
		files["blobs/sha256/"+strings.TrimPrefix(md, "sha256:")] = mb
	}
	delete(files, "manifest")
	if _, ok := files["index.json"]; !ok {
		files["index.json"] = jsonOf(t, index)
	}
	var entries []entry
	for n, b := range files {
		if b != nil {
			entries = append(entries, entry{n, b})
		}
	}
	return entries
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar")
	writeTar(t, good, dockerArchive(t, nil))
	goodBytes, err := os.ReadFile(good)
	must(t, err)

	tests := []struct {
		name    string
		content []byte  // raw file content, or
		entries []entry // archive entries
		prefix  string
		err     string
	}{
		{name: "truncated", content: goodBytes[:len(goodBytes)/2], err: "truncated tar archive"},
		{name: "truncated-in-header", content: goodBytes[:700], err: "truncated tar archive"},
		{name: "not-a-tar", content: []byte(strings.Repeat("hello world\n", 100)), err: "not a valid tar archive"},
		{name: "empty", content: []byte{}, err: "not a tar archive: empty"},
		{name: "no-manifest", entries: []entry{{"foo", []byte("x")}}, err: "not a docker archive or OCI archive: no manifest.json or index.json"},
		{name: "no-manifest-docker", entries: []entry{{"foo", []byte("x")}}, prefix: "docker-archive:", err: "not a docker archive: no manifest.json"},
		{name: "absolute-name", entries: []entry{{"/etc/passwd", []byte("x")}}, err: `unsafe entry name "/etc/passwd"`},
		{name: "dotdot-name", entries: []entry{{"a/../../x", []byte("x")}}, err: `unsafe entry name "a/../../x": contains ".."`},
		{name: "manifest-bad-json", entries: dockerArchive(t, func(_ *[]map[string]any, _ map[string]any, f map[string][]byte) {
			f["manifest.json"] = []byte("[{")
		}), err: "manifest.json: bad JSON"},
		{name: "manifest-empty", entries: dockerArchive(t, func(m *[]map[string]any, _ map[string]any, _ map[string][]byte) { *m = nil }), err: "manifest.json lists no images"},
		{name: "missing-config", entries: dockerArchive(t, func(_ *[]map[string]any, _ map[string]any, f map[string][]byte) {
			f["config.json"] = nil
		}), err: "missing config config.json"},
		{name: "config-bad-json", entries: dockerArchive(t, func(_ *[]map[string]any, _ map[string]any, f map[string][]byte) {
			f["config.json"] = []byte("{")
		}), err: "config config.json: bad image config JSON"},
		{name: "config-bad-diffid", entries: dockerArchive(t, func(_ *[]map[string]any, c map[string]any, _ map[string][]byte) {
			c["rootfs"] = map[string]any{"diff_ids": []string{"sha256:zz"}}
		}), err: "bad image config JSON"},
		{name: "missing-layer", entries: dockerArchive(t, func(_ *[]map[string]any, _ map[string]any, f map[string][]byte) {
			f["l/layer.tar"] = nil
		}), err: "layer 0: missing l/layer.tar"},
		{name: "diffid-count", entries: dockerArchive(t, func(_ *[]map[string]any, c map[string]any, _ map[string][]byte) {
			c["rootfs"] = map[string]any{"type": "layers", "diff_ids": []string{}}
		}), err: "config lists 0 layer diff IDs but the manifest has 1 layers"},
		{name: "layer-path-traversal", entries: dockerArchive(t, func(m *[]map[string]any, _ map[string]any, _ map[string][]byte) {
			(*m)[0]["Layers"] = []string{"../../etc/passwd"}
		}), err: `manifest.json layer 0: unsafe entry name "../../etc/passwd"`},
		{name: "config-digest-mismatch", entries: dockerArchive(t, func(m *[]map[string]any, _ map[string]any, f map[string][]byte) {
			name := "blobs/sha256/" + strings.Repeat("a", 64)
			(*m)[0]["Config"] = name
			f[name] = []byte(`{"rootfs":{"diff_ids":[]}}`)
		}), err: "content does not match digest"},
		{name: "oci-index-bad-json", entries: ociArchive(t, func(_, _ map[string]any, f map[string][]byte) {
			f["index.json"] = []byte("{nope")
		}), err: "index.json: bad JSON"},
		{name: "oci-malformed-digest", entries: ociArchive(t, func(i, _ map[string]any, _ map[string][]byte) {
			i["manifests"] = []map[string]any{{"digest": "sha256:../../etc", "size": 1}}
		}), err: "index.json: bad JSON: found non-hex character in hash"},
		{name: "oci-missing-manifest", entries: ociArchive(t, func(_, _ map[string]any, f map[string][]byte) {
			f["manifest"] = nil // keep the manifest blob out
		}), err: "missing blob sha256:"},
		{name: "oci-manifest-tampered", entries: ociArchive(t, func(i, _ map[string]any, f map[string][]byte) {
			d := "sha256:" + strings.Repeat("b", 64)
			i["manifests"] = []map[string]any{{"digest": d, "size": 2}}
			f["blobs/sha256/"+strings.Repeat("b", 64)] = []byte("{}")
		}), err: "content does not match digest"},
		{name: "oci-manifest-size", entries: ociArchive(t, func(i, _ map[string]any, f map[string][]byte) {
			i["manifests"] = []map[string]any{{"digest": sha256Digest([]byte("{}")), "size": 5}}
			f["blobs/sha256/"+strings.TrimPrefix(sha256Digest([]byte("{}")), "sha256:")] = []byte("{}")
		}), err: "has 2 bytes, its descriptor says 5"},
		{name: "oci-missing-layer", entries: ociArchive(t, func(_, m map[string]any, _ map[string][]byte) {
			m["layers"] = []map[string]any{{"digest": "sha256:" + strings.Repeat("c", 64), "size": 3}}
		}), err: "layer 0: missing blob sha256:cccc"},
		{name: "oci-no-layout-file", entries: ociArchive(t, func(_, _ map[string]any, f map[string][]byte) {
			f["oci-layout"] = nil
		}), prefix: "oci-archive:", err: "not an OCI layout: no oci-layout file"},
		{name: "oci-schema1", entries: ociArchive(t, func(_, m map[string]any, _ map[string][]byte) {
			m["schemaVersion"] = 1
		}), err: "manifests are not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, tt.name+".tar")
			if tt.entries != nil {
				writeTar(t, file, tt.entries)
			} else {
				must(t, os.WriteFile(file, tt.content, 0o600))
			}
			ref := tt.prefix + file
			img, err := Open(context.Background(), ref, Options{TempDir: dir})
			if err == nil {
				img.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), `open image "`+ref+`": `) {
				t.Errorf("err = %v\nwant it to name the ref and contain %q", err, tt.err)
			}
		})
	}

	for _, tt := range []struct{ ref, err string }{
		{"missing.tar", "missing.tar: file does not exist"},
		{"./missing", "./missing: file does not exist"},
		{"docker-archive:" + filepath.Join(dir, "none.tar"), "none.tar: file does not exist"},
		{"oci-layout:" + dir + "@sha256:short", `malformed digest "sha256:short"`},
		{"oci-layout:" + dir, "not an OCI layout: no oci-layout file"},
		{"dir:" + good, "is not a directory"},
		{"", "empty image reference"},
		{"Not A Ref!", "not an image reference"},
	} {
		if _, err := Open(context.Background(), tt.ref, Options{}); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Open(%q): err = %v, want %q", tt.ref, err, tt.err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "mamori-*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}

// TestLayerStreamErrors checks that a corrupt layer blob fails when read,
// not when the image is opened, with an error naming the layer.
func TestLayerStreamErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "corrupt.tar")
	writeTar(t, file, dockerArchive(t, func(_ *[]map[string]any, _ map[string]any, f map[string][]byte) {
		f["l/layer.tar"] = append([]byte{0x1f, 0x8b}, bytes.Repeat([]byte{0xff}, 100)...)
	}))
	img, err := Open(context.Background(), file, Options{})
	must(t, err)
	defer img.Close()
	st, err := img.Layers[0].Open(context.Background())
	if err == nil {
		_, err = st.Next()
		st.Close()
	}
	if err == nil {
		t.Fatal("corrupt gzip layer read without error")
	}
}
