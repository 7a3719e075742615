// Package scanner ties the image sources, the layer walk and the extractors
// together: it turns an image reference into an inventory.Report.
package scanner

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

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
	// Analyzers are content analyzers (secrets, malware, license texts,
	// misconfigured files) that run in the same walk as the extractors:
	// their findings land in Report.Findings.
	Analyzers []inventory.Extractor
}

// Result is an inventoried image.
type Result struct {
	// Report is the inventory, with the analyzers' findings.
	Report *inventory.Report
	// Config is the image configuration; nil for a root filesystem
	// directory, which has none.
	Config *v1.ConfigFile
}

// Scan opens the image named by ref, inventories it and runs the
// analyzers.
func Scan(ctx context.Context, ref string, opts Options) (*Result, error) {
	if opts.Image.TempDir == "" {
		opts.Image.TempDir = opts.TempDir
	}
	img, err := image.Open(ctx, ref, opts.Image)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	rep, err := InventoryImage(ctx, img, opts)
	if err != nil {
		return nil, err
	}
	return &Result{Report: rep, Config: img.Config}, nil
}

// Inventory opens the image named by ref and lists everything installed in
// it.
func Inventory(ctx context.Context, ref string, opts Options) (*inventory.Report, error) {
	res, err := Scan(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	return res.Report, nil
}

// InventoryImage lists everything installed in an opened image.
func InventoryImage(ctx context.Context, img *image.Image, opts Options) (*inventory.Report, error) {
	exts := opts.Extractors
	if exts == nil {
		exts = all.Extractors()
	}
	exts = append(exts[:len(exts):len(exts)], opts.Analyzers...)
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
