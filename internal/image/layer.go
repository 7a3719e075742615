package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// blobLayer is a layer stored as a (possibly compressed) tar blob.
type blobLayer struct {
	diffID    string
	digest    string
	size      int64
	createdBy string
	// open returns the stored blob.
	open func(ctx context.Context) (io.ReadCloser, error)
}

func (l *blobLayer) DiffID() string    { return l.diffID }
func (l *blobLayer) Digest() string    { return l.digest }
func (l *blobLayer) Size() int64       { return l.size }
func (l *blobLayer) CreatedBy() string { return l.createdBy }

// Open streams the layer, decompressing gzip and zstd blobs.
func (l *blobLayer) Open(ctx context.Context) (Stream, error) {
	rc, err := l.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening layer %s: %w", l.diffID, err)
	}
	dec, _, err := Decompress(ctx, rc)
	if err != nil {
		return nil, fmt.Errorf("opening layer %s: %w", l.diffID, err)
	}
	return &tarStream{Reader: tar.NewReader(dec), Closer: dec}, nil
}

// tarStream is a Stream over a tar reader.
type tarStream struct {
	*tar.Reader
	io.Closer
}

// layerBlob describes one stored layer blob before it is matched with the
// config.
type layerBlob struct {
	digest string
	size   int64
	open   func(ctx context.Context) (io.ReadCloser, error)
}

// buildLayers pairs the stored blobs with the config's diff IDs and history.
func buildLayers(cfg *v1.ConfigFile, blobs []layerBlob) ([]Layer, error) {
	if len(cfg.RootFS.DiffIDs) != len(blobs) {
		return nil, fmt.Errorf("config lists %d layer diff IDs but the manifest has %d layers", len(cfg.RootFS.DiffIDs), len(blobs))
	}
	var createdBy []string
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			createdBy = append(createdBy, h.CreatedBy)
		}
	}
	layers := make([]Layer, len(blobs))
	for i, b := range blobs {
		diffID := cfg.RootFS.DiffIDs[i].String()
		if err := checkDigest(diffID); err != nil {
			return nil, fmt.Errorf("config diff ID %d: %w", i, err)
		}
		l := &blobLayer{diffID: diffID, digest: b.digest, size: b.size, open: b.open}
		if i < len(createdBy) {
			l.createdBy = createdBy[i]
		}
		layers[i] = l
	}
	return layers, nil
}

// parseConfig parses an image config and checks what the layers need.
func parseConfig(data []byte) (*v1.ConfigFile, error) {
	cfg, err := v1.ParseConfigFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("bad image config JSON: %w", err)
	}
	return cfg, nil
}

// configPlatform formats the platform recorded in an image config.
func configPlatform(cfg *v1.ConfigFile) string {
	if cfg == nil || cfg.OS == "" {
		return ""
	}
	p := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	return p.String()
}
