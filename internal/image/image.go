// Package image opens container images from every source mamori supports and
// presents them through one interface: an ordered list of layers, each an
// uncompressed tar stream, plus the image config.
//
// Sources: Docker archives (docker save), OCI image layouts and OCI archives,
// registries, a local Docker Engine (through its API socket), and a plain root
// filesystem directory. See Open for how a reference is resolved.
package image

import (
	"archive/tar"
	"context"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Source kinds, reported in Image.Source and accepted as reference prefixes
// ("docker-archive:img.tar").
const (
	SourceDockerArchive = "docker-archive"
	SourceOCILayout     = "oci-layout"
	SourceOCIArchive    = "oci-archive"
	SourceRegistry      = "registry"
	SourceDocker        = "docker"
	SourceDir           = "dir"
)

// Image is an opened image. Close releases temp files and connections.
type Image struct {
	// Ref is the reference the user gave.
	Ref string
	// Source is one of the Source* constants.
	Source string
	// Name is the resolved repository:tag or path, for reports.
	Name string
	// Digest is the manifest digest, when the source has one.
	Digest string
	// ID is the config digest (the image ID), when the source has one.
	ID string
	// RepoTags and RepoDigests as far as the source knows them.
	RepoTags    []string
	RepoDigests []string
	// Platform is the selected platform ("linux/amd64").
	Platform string
	// Config is the image configuration; nil for a directory.
	Config *v1.ConfigFile
	// Layers, base first.
	Layers []Layer

	closers []func() error
}

// Close releases resources (temp files, open archives).
func (img *Image) Close() error {
	var first error
	for i := len(img.closers) - 1; i >= 0; i-- {
		if err := img.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	img.closers = nil
	return first
}

// AddCloser registers a cleanup function run by Close.
func (img *Image) AddCloser(f func() error) { img.closers = append(img.closers, f) }

// Layer is one filesystem layer.
type Layer interface {
	// DiffID is the digest of the uncompressed tar ("sha256:..."). For a
	// directory source it is a synthetic, stable "dir:" identifier and the
	// layer is never cached.
	DiffID() string
	// Digest is the digest of the blob as stored (compressed), when known.
	Digest() string
	// Size is the stored (compressed) size in bytes, or -1 when unknown.
	Size() int64
	// CreatedBy is the history entry that produced the layer, if recorded.
	CreatedBy() string
	// Open returns the layer's entries as a tar stream. Compressed layers
	// (gzip, zstd) are decompressed transparently.
	Open(ctx context.Context) (Stream, error)
}

// Stream is a tar stream of one layer. Next and Read follow archive/tar.
type Stream interface {
	Next() (*tar.Header, error)
	io.Reader
	io.Closer
}
