// Package scanner ties the image sources, the layer walk and the extractors
// together: it turns an image reference into an inventory.Report.
package scanner

import (
	"context"
	"fmt"

	"github.com/mamorisec/mamori/internal/image"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/inventory/all"
	"github.com/mamorisec/mamori/internal/inventory/osrelease"
	"github.com/mamorisec/mamori/internal/walk"
)

// Options configure an inventory run.
type Options struct {
	// Image configures how the image is opened (platform, credentials).
	Image image.Options
	// CacheDir holds per-layer results; empty means walk.DefaultCacheDir().
	CacheDir string
	// NoCache disables the per-layer cache.
	NoCache bool
	// TempDir is the parent for private temp directories.
	TempDir string
	// Progress, when non-nil, receives progress reports.
	Progress walk.Progress
	// Extractors overrides the default extractor set.
	Extractors []inventory.Extractor
}

// Inventory opens the image named by ref and lists everything installed in
// it.
func Inventory(ctx context.Context, ref string, opts Options) (*inventory.Report, error) {
	if opts.Image.TempDir == "" {
		opts.Image.TempDir = opts.TempDir
	}
	img, err := image.Open(ctx, ref, opts.Image)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	return InventoryImage(ctx, img, opts)
}

// InventoryImage lists everything installed in an opened image.
func InventoryImage(ctx context.Context, img *image.Image, opts Options) (*inventory.Report, error) {
	exts := opts.Extractors
	if exts == nil {
		exts = all.Extractors()
	}
	wo := walk.Options{
		Extractors: exts,
		TempDir:    opts.TempDir,
		Progress:   opts.Progress,
		Merge:      walk.MergeOptions{SelectOS: osrelease.Select, OSPURL: osrelease.PURL},
	}
	if !opts.NoCache {
		dir := opts.CacheDir
		if dir == "" {
			dir = walk.DefaultCacheDir()
		}
		wo.Cache = &walk.Cache{Dir: dir}
	}
	m, err := walk.Image(ctx, img, wo)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return m.Report, nil
}
