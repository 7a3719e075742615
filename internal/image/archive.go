package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// dockerManifestEntry is one image of a docker save archive's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// openArchive opens a tar archive (docker save or OCI archive) at path.
// kind is SourceDockerArchive, SourceOCIArchive or "" to detect it.
func openArchive(path, kind string, sel selection, platform string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	store, err := indexTar(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	if kind == "" {
		switch {
		case store.has("manifest.json"):
			kind = SourceDockerArchive
		case store.has("index.json") && store.has("oci-layout"):
			kind = SourceOCIArchive
		default:
			store.close()
			return nil, errors.New("not a docker archive or OCI archive: no manifest.json or index.json")
		}
	}
	var img *Image
	if kind == SourceDockerArchive {
		img, err = openDockerArchive(store, path, sel)
	} else {
		img, err = (&ociLayout{store: store}).open(path, sel, platform)
	}
	if err != nil {
		store.close()
		return nil, err
	}
	img.Source = kind
	img.AddCloser(store.close)
	return img, nil
}

// openDockerArchive reads the image sel selects from a docker save archive.
func openDockerArchive(store blobStore, path string, sel selection) (*Image, error) {
	data, err := readSmall(store, "manifest.json")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("not a docker archive: no manifest.json")
		}
		return nil, err
	}
	entries, err := parseDockerManifest(data)
	if err != nil {
		return nil, err
	}
	e, tag, err := selectDockerImage(entries, sel)
	if err != nil {
		return nil, err
	}
	cfgName, err := cleanEntryName(e.Config)
	if err != nil {
		return nil, fmt.Errorf("manifest.json config: %w", err)
	}
	cdata, err := readSmall(store, cfgName)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("missing config %s", e.Config)
		}
		return nil, err
	}
	if d := digestFromBlobName(cfgName); d != "" {
		if err := verifyDigest(d, cdata); err != nil {
			return nil, fmt.Errorf("config %s: %w", e.Config, err)
		}
	}
	cfg, err := parseConfig(cdata)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", e.Config, err)
	}
	blobs := make([]layerBlob, len(e.Layers))
	for i, l := range e.Layers {
		ln, err := cleanEntryName(l)
		if err != nil {
			return nil, fmt.Errorf("manifest.json layer %d: %w", i, err)
		}
		rc, size, err := store.open(ln)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("layer %d: missing %s", i, l)
			}
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		rc.Close()
		blobs[i] = layerBlob{digest: digestFromBlobName(ln), size: size, open: func(context.Context) (io.ReadCloser, error) {
			rc, _, err := store.open(ln)
			return rc, err
		}}
	}
	layers, err := buildLayers(cfg, blobs)
	if err != nil {
		return nil, err
	}
	img := &Image{
		Name:     path,
		ID:       sha256Digest(cdata),
		RepoTags: e.RepoTags,
		Platform: configPlatform(cfg),
		Config:   cfg,
		Layers:   layers,
	}
	if tag != "" {
		img.Name = tag
	}
	return img, nil
}

// parseDockerManifest parses a docker save manifest.json.
func parseDockerManifest(data []byte) ([]dockerManifestEntry, error) {
	var entries []dockerManifestEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("manifest.json: bad JSON: %w", err)
	}
	if len(entries) == 0 {
		return nil, errors.New("manifest.json lists no images")
	}
	for i, e := range entries {
		if e.Config == "" {
			return nil, fmt.Errorf("manifest.json: image %d has no Config", i)
		}
	}
	return entries, nil
}

// selectDockerImage picks the manifest.json entry for sel.tag, or the only
// one. It also returns the tag that names the image, if any.
func selectDockerImage(entries []dockerManifestEntry, sel selection) (dockerManifestEntry, string, error) {
	if sel.digest != "" {
		return dockerManifestEntry{}, "", errors.New("a docker archive selects images by tag, not by digest")
	}
	if sel.tag == "" {
		if len(entries) > 1 {
			return dockerManifestEntry{}, "", fmt.Errorf("archive holds %d images; choose one with docker-archive:PATH:TAG (tags: %s)", len(entries), dockerTags(entries))
		}
		var tag string
		if len(entries[0].RepoTags) == 1 {
			tag = entries[0].RepoTags[0]
		}
		return entries[0], tag, nil
	}
	want := normalizeTag(sel.tag)
	for _, e := range entries {
		for _, t := range e.RepoTags {
			if t == sel.tag || normalizeTag(t) == want {
				return e, t, nil
			}
		}
	}
	return dockerManifestEntry{}, "", fmt.Errorf("no image tagged %q in the archive (tags: %s)", sel.tag, dockerTags(entries))
}

// normalizeTag expands a tag to its canonical form
// ("alpine" -> "index.docker.io/library/alpine:latest").
func normalizeTag(t string) string {
	tag, err := name.NewTag(t)
	if err != nil {
		return t
	}
	return tag.Name()
}

func dockerTags(entries []dockerManifestEntry) string {
	var tags []string
	for _, e := range entries {
		tags = append(tags, e.RepoTags...)
	}
	if len(tags) == 0 {
		return "none"
	}
	return strings.Join(tags, ", ")
}

// digestFromBlobName returns the digest a content-addressed name
// ("blobs/sha256/<hex>") encodes, or "".
func digestFromBlobName(n string) string {
	rest, ok := strings.CutPrefix(n, "blobs/")
	if !ok {
		return ""
	}
	alg, hx, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	d := alg + ":" + hx
	if checkDigest(d) != nil {
		return ""
	}
	return d
}
