package walk

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/mamorisec/mamori/internal/image"
	"github.com/mamorisec/mamori/internal/inventory"
)

// Version is the walk's own output version, part of the cache key.
const Version = 2

// Progress receives progress reports. Methods may be called concurrently.
type Progress interface {
	// LayerStart is called when layer index (of total) starts; cached
	// reports whether its result came from the cache.
	LayerStart(index, total int, diffID string, cached bool)
	// Entries reports n more tar entries read in layer index.
	Entries(index int, n int)
	// LayerDone is called when a layer is finished.
	LayerDone(index int)
}

// Options configure a walk over a whole image.
type Options struct {
	Extractors []inventory.Extractor
	// Cache, when non-nil, stores and reuses per-layer results.
	Cache *Cache
	// Limits bound memory use; zero means DefaultLimits.
	Limits Limits
	// TempDir is the parent of the walk's private temp directory.
	TempDir string
	// Progress, when non-nil, receives progress reports.
	Progress Progress
	// Merge supplies OS-specific merge hooks.
	Merge MergeOptions
}

// Image walks every layer of img (concurrently, reusing cached layer
// results) and merges them into the image's inventory.
func Image(ctx context.Context, img *image.Image, opts Options) (*Merged, error) {
	// An image seen before with the same extractors has a cached report:
	// the same config digest means the same layers and history.
	reportKey := ""
	if opts.Cache != nil && !opts.Merge.KeepFS && strings.HasPrefix(img.ID, "sha256:") {
		reportKey = imageKey(img, opts.Extractors)
		if rep, ok := opts.Cache.getReport(reportKey); ok {
			rep.Image = imageInfo(img)
			if opts.Progress != nil {
				for i, l := range img.Layers {
					opts.Progress.LayerStart(i, len(img.Layers), l.DiffID(), true)
					opts.Progress.LayerDone(i)
				}
			}
			return &Merged{Report: rep}, nil
		}
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "mamori-walk-")
	if err != nil {
		return nil, fmt.Errorf("creating private temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	if opts.Limits == (Limits{}) {
		opts.Limits = DefaultLimits
	}
	mem := newBudget(opts.Limits.MemBudget)
	n := len(img.Layers)
	results := make([]*LayerResult, n)
	meta := make([]inventory.Layer, n)
	errs := make([]error, n)
	workers := min(runtime.GOMAXPROCS(0), max(n, 1))
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, l := range img.Layers {
		meta[i] = inventory.Layer{Index: i, DiffID: l.DiffID(), CreatedBy: l.CreatedBy()}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := scanCached(ctx, i, n, l, opts, tmp, mem)
			if err != nil {
				errs[i] = fmt.Errorf("image %s: %w", img.Ref, err)
				cancel()
				return
			}
			results[i] = res
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	m := Merge(results, meta, opts.Merge)
	uncacheable := false
	for _, r := range results {
		uncacheable = uncacheable || r.uncacheable
	}
	if reportKey != "" && !uncacheable && imageKey(img, opts.Extractors) == reportKey {
		// A cache that cannot be written only costs speed on the next scan.
		_ = opts.Cache.putReport(reportKey, m.Report)
	}
	m.Report.Image = imageInfo(img)
	return m, nil
}

func imageInfo(img *image.Image) inventory.ImageInfo {
	return inventory.ImageInfo{
		Ref: img.Ref, Source: img.Source, Name: img.Name, Digest: img.Digest, ID: img.ID,
		Platform: img.Platform, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests,
	}
}

// imageKey identifies an image's merged report: its config digest, its
// layers and the extractors.
func imageKey(img *image.Image, exts []inventory.Extractor) string {
	h := sha256.New()
	fmt.Fprintf(h, "image %s\n", img.ID)
	for _, l := range img.Layers {
		fmt.Fprintf(h, "layer %s\n", l.DiffID())
	}
	return "image-" + cacheKey("sha256:"+hex.EncodeToString(h.Sum(nil)), exts)
}

func scanCached(ctx context.Context, i, n int, l image.Layer, opts Options, tmp string, b *budget) (*LayerResult, error) {
	key := ""
	cacheable := opts.Cache != nil && strings.HasPrefix(l.DiffID(), "sha256:")
	if cacheable {
		key = cacheKey(l.DiffID(), opts.Extractors)
		if res, ok := opts.Cache.get(key); ok {
			if opts.Progress != nil {
				opts.Progress.LayerStart(i, n, l.DiffID(), true)
				opts.Progress.LayerDone(i)
			}
			return res, nil
		}
	}
	if opts.Progress != nil {
		opts.Progress.LayerStart(i, n, l.DiffID(), false)
		defer opts.Progress.LayerDone(i)
	}
	lo := LayerOptions{Extractors: opts.Extractors, Limits: opts.Limits, TempDir: tmp, budget: b}
	if opts.Progress != nil {
		count := 0
		lo.OnEntry = func(*tar.Header) {
			count++
			if count == 256 {
				opts.Progress.Entries(i, count)
				count = 0
			}
		}
	}
	res, err := ScanLayer(ctx, l, lo)
	if err != nil {
		return nil, err
	}
	// An extractor whose configuration changed during the scan (an engine
	// that went away) may have seen part of the layer only.
	if cacheable && !res.uncacheable && cacheKey(l.DiffID(), opts.Extractors) == key {
		// A cache that cannot be written only costs speed on the next scan.
		_ = opts.Cache.put(key, res)
	}
	return res, nil
}

// cacheKey identifies a layer result: the layer content and every
// extractor's name, version and configuration digest.
func cacheKey(diffID string, exts []inventory.Extractor) string {
	h := sha256.New()
	fmt.Fprintf(h, "walk %d\n", Version)
	for _, e := range exts {
		fmt.Fprintf(h, "%s %d\n", e.Name(), e.Version())
		if c, ok := e.(inventory.Configured); ok {
			fmt.Fprintf(h, "config %q\n", c.ConfigDigest())
		}
	}
	algo, hexDigest, _ := strings.Cut(diffID, ":")
	return algo + "-" + hexDigest + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// Cache stores per-layer results on disk, keyed by layer diffID and the
// extractor set. Entries are written atomically; an unreadable entry is
// treated as a miss.
type Cache struct {
	// Dir is the cache directory.
	Dir string
}

// DefaultCacheDir is $MAMORI_CACHE_DIR, else the user cache dir's "mamori".
func DefaultCacheDir() string {
	if d := os.Getenv("MAMORI_CACHE_DIR"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "mamori-cache")
	}
	return filepath.Join(d, "mamori")
}

func (c *Cache) path(key string) string {
	return filepath.Join(c.dir(key), key+".gob")
}

// dir keeps image reports ("image-" keys) apart from layer results.
func (c *Cache) dir(key string) string {
	if strings.HasPrefix(key, "image-") {
		return filepath.Join(c.Dir, "images")
	}
	return filepath.Join(c.Dir, "layers")
}

// cachedLayer is the cache encoding of a LayerResult. The file list stays
// encoded until the merge needs it: the base layer's list, by far the
// largest, is not needed at all unless the merged file index is asked for.
type cachedLayer struct {
	DiffID    string
	EntryData []byte
	Whiteouts []string
	Opaque    []string
	Results   map[string]*FileResult
	Problems  []inventory.Problem
}

func (c *Cache) get(key string) (*LayerResult, bool) {
	var cl cachedLayer
	if !c.read(key, &cl) {
		return nil, false
	}
	res := &LayerResult{DiffID: cl.DiffID, Whiteouts: cl.Whiteouts, Opaque: cl.Opaque, Results: cl.Results, Problems: cl.Problems, entryData: cl.EntryData}
	if res.Results == nil {
		res.Results = map[string]*FileResult{}
	}
	return res, true
}

func (c *Cache) getReport(key string) (*inventory.Report, bool) {
	var rep inventory.Report
	if !c.read(key, &rep) {
		return nil, false
	}
	if rep.Packages == nil {
		rep.Packages = []inventory.Package{}
	}
	return &rep, true
}

// read decodes one cache entry into v; a missing or unreadable entry is a
// miss.
func (c *Cache) read(key string, v any) bool {
	b, err := os.ReadFile(c.path(key))
	if err != nil {
		return false
	}
	return gob.NewDecoder(bytes.NewReader(b)).Decode(v) == nil
}

func (c *Cache) putReport(key string, rep *inventory.Report) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(rep); err != nil {
		return err
	}
	return c.write(key, buf.Bytes())
}

func (c *Cache) put(key string, res *LayerResult) error {
	entries, err := res.Entries.GobEncode()
	if err != nil {
		return err
	}
	cl := cachedLayer{DiffID: res.DiffID, EntryData: entries, Whiteouts: res.Whiteouts, Opaque: res.Opaque, Results: res.Results, Problems: res.Problems}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(cl); err != nil {
		return err
	}
	return c.write(key, buf.Bytes())
}

// write stores one cache entry atomically.
func (c *Cache) write(key string, data []byte) error {
	dir := c.dir(key)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "tmp-"+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), c.path(key))
}
