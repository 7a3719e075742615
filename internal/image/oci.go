package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// OCI annotations that name an image in an index.
const (
	annotationRefName  = "org.opencontainers.image.ref.name"
	annotationImageRef = "io.containerd.image.name"
)

// maxIndexDepth bounds nested indexes.
const maxIndexDepth = 4

// selection picks one image of a multi-image source: by tag, by digest, or
// (when both are empty) the only image or the one for the platform.
type selection struct {
	tag    string
	digest string
}

// ociLayout is an OCI image layout read through a blob store.
type ociLayout struct {
	store blobStore
}

// readBlob reads a metadata blob and checks its size and digest.
func (o *ociLayout) readBlob(desc v1.Descriptor) ([]byte, error) {
	p, err := blobPath(desc.Digest.String())
	if err != nil {
		return nil, err
	}
	data, err := readSmall(o.store, p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("missing blob %s", desc.Digest)
		}
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	if desc.Size > 0 && int64(len(data)) != desc.Size {
		return nil, fmt.Errorf("blob %s has %d bytes, its descriptor says %d", desc.Digest, len(data), desc.Size)
	}
	if err := verifyDigest(desc.Digest.String(), data); err != nil {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	return data, nil
}

// readIndexJSON reads and checks oci-layout and index.json.
func (o *ociLayout) readIndexJSON() (*v1.IndexManifest, error) {
	layout, err := readSmall(o.store, "oci-layout")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("not an OCI layout: no oci-layout file")
		}
		return nil, err
	}
	var lv struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(layout, &lv); err != nil || lv.Version == "" {
		return nil, errors.New("not an OCI layout: oci-layout has no imageLayoutVersion")
	}
	data, err := readSmall(o.store, "index.json")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("not an OCI layout: no index.json")
		}
		return nil, err
	}
	idx, err := parseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	return idx, nil
}

// parseIndex parses an image index and checks its descriptors.
func parseIndex(data []byte) (*v1.IndexManifest, error) {
	var idx v1.IndexManifest
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	for i, d := range idx.Manifests {
		if err := checkDigest(d.Digest.String()); err != nil {
			return nil, fmt.Errorf("manifest %d: %w", i, err)
		}
	}
	return &idx, nil
}

// parseManifest parses an image manifest and checks its descriptors.
func parseManifest(data []byte) (*v1.Manifest, error) {
	var m v1.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	if m.SchemaVersion == 1 || m.MediaType.IsSchema1() {
		return nil, errors.New("schema 1 (Docker v2.1) manifests are not supported")
	}
	if err := checkDigest(m.Config.Digest.String()); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	for i, l := range m.Layers {
		if err := checkDigest(l.Digest.String()); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return &m, nil
}

// isIndex tells an index from a manifest, by media type or by content.
func isIndex(mt types.MediaType, data []byte) bool {
	switch {
	case mt.IsIndex():
		return true
	case mt.IsImage():
		return false
	}
	var probe struct {
		Manifests json.RawMessage `json:"manifests"`
	}
	return json.Unmarshal(data, &probe) == nil && probe.Manifests != nil
}

// open resolves sel (and platform) to one image.
func (o *ociLayout) open(where string, sel selection, platform string) (*Image, error) {
	var descs []v1.Descriptor
	if sel.digest != "" {
		if err := checkDigest(sel.digest); err != nil {
			return nil, err
		}
		h, _ := v1.NewHash(sel.digest)
		descs = []v1.Descriptor{{Digest: h}}
	} else {
		idx, err := o.readIndexJSON()
		if err != nil {
			return nil, err
		}
		descs = idx.Manifests
		if sel.tag != "" {
			descs = slices.DeleteFunc(slices.Clone(descs), func(d v1.Descriptor) bool { return !matchTag(d, sel.tag) })
			if len(descs) == 0 {
				return nil, fmt.Errorf("no image tagged %q; tags: %s", sel.tag, listTags(idx.Manifests))
			}
		}
	}
	img := &Image{}
	for depth := 0; ; depth++ {
		if depth > maxIndexDepth {
			return nil, fmt.Errorf("image indexes nested more than %d deep", maxIndexDepth)
		}
		desc, err := chooseDescriptor(descs, platform)
		if err != nil {
			return nil, err
		}
		if len(descs) == 1 && depth == 0 {
			img.RepoTags = repoTags(desc)
		}
		data, err := o.readBlob(desc)
		if err != nil {
			return nil, err
		}
		if isIndex(desc.MediaType, data) {
			idx, err := parseIndex(data)
			if err != nil {
				return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
			}
			descs = idx.Manifests
			continue
		}
		m, err := parseManifest(data)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		if err := o.fill(img, m); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		img.Digest = desc.Digest.String()
		img.Name = where
		if sel.tag != "" {
			img.Name += ":" + sel.tag
		} else if sel.digest != "" {
			img.Name += "@" + sel.digest
		}
		return img, nil
	}
}

// fill reads the config of manifest m and sets up the layers.
func (o *ociLayout) fill(img *Image, m *v1.Manifest) error {
	cdata, err := o.readBlob(m.Config)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cfg, err := parseConfig(cdata)
	if err != nil {
		return err
	}
	blobs := make([]layerBlob, len(m.Layers))
	for i, d := range m.Layers {
		p, _ := blobPath(d.Digest.String()) // checked by parseManifest
		rc, size, err := o.store.open(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("layer %d: missing blob %s", i, d.Digest)
			}
			return fmt.Errorf("layer %d: %w", i, err)
		}
		rc.Close()
		if d.Size > 0 && size != d.Size {
			return fmt.Errorf("layer %d: blob %s has %d bytes, its descriptor says %d", i, d.Digest, size, d.Size)
		}
		blobs[i] = layerBlob{digest: d.Digest.String(), size: size, open: func(context.Context) (io.ReadCloser, error) {
			rc, _, err := o.store.open(p)
			return rc, err
		}}
	}
	layers, err := buildLayers(cfg, blobs)
	if err != nil {
		return err
	}
	img.Config = cfg
	img.ID = m.Config.Digest.String()
	img.Platform = configPlatform(cfg)
	img.Layers = layers
	return nil
}

// chooseDescriptor picks the only descriptor, or the one for platform.
func chooseDescriptor(descs []v1.Descriptor, platform string) (v1.Descriptor, error) {
	switch {
	case len(descs) == 0:
		return v1.Descriptor{}, errors.New("the index lists no manifests")
	case len(descs) == 1:
		return descs[0], nil
	}
	withPlatform := 0
	for _, d := range descs {
		if d.Platform != nil {
			withPlatform++
		}
	}
	if withPlatform == 0 {
		return v1.Descriptor{}, fmt.Errorf("the index lists %d images and no platforms; choose one by tag (%s) or @digest", len(descs), listTags(descs))
	}
	return pickPlatform(descs, platform)
}

// pickPlatform selects the descriptor for platform ("os/arch[/variant]").
// Without a requested variant the first matching one wins.
func pickPlatform(descs []v1.Descriptor, platform string) (v1.Descriptor, error) {
	want, err := v1.ParsePlatform(platform)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("bad platform %q: %w", platform, err)
	}
	var avail []string
	for _, d := range descs {
		p := d.Platform
		if p == nil || p.OS == "unknown" {
			continue // attestations and other non-images
		}
		avail = append(avail, p.String())
		if p.OS == want.OS && p.Architecture == want.Architecture &&
			(want.Variant == "" || p.Variant == want.Variant) &&
			(want.OSVersion == "" || p.OSVersion == want.OSVersion) {
			return d, nil
		}
	}
	if len(avail) == 0 {
		return v1.Descriptor{}, errors.New("the index lists no platform images")
	}
	return v1.Descriptor{}, fmt.Errorf("no image for platform %s; available: %s", platform, strings.Join(avail, ", "))
}

// matchTag reports whether an index descriptor carries tag.
func matchTag(d v1.Descriptor, tag string) bool {
	if d.Annotations[annotationRefName] == tag {
		return true
	}
	full := d.Annotations[annotationImageRef]
	return full != "" && (full == tag || strings.HasSuffix(full, "/"+tag) || strings.HasSuffix(full, ":"+tag))
}

// listTags names the tags of index descriptors, for error messages.
func listTags(descs []v1.Descriptor) string {
	var tags []string
	for _, d := range descs {
		if t := d.Annotations[annotationRefName]; t != "" {
			tags = append(tags, t)
		} else if t := d.Annotations[annotationImageRef]; t != "" {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		return "none"
	}
	return strings.Join(tags, ", ")
}

// repoTags returns the full image name an index descriptor records.
func repoTags(d v1.Descriptor) []string {
	if t := d.Annotations[annotationImageRef]; t != "" {
		return []string{t}
	}
	return nil
}
