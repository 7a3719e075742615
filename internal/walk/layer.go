// Package walk is the single pass over an image's layers. It reads every
// layer's tar stream once, records the layer's file list, whiteouts and opaque
// directories, and hands each file that some extractor needs to those
// extractors. Per-layer results are cached by diffID, and Merge applies the
// layers in order (whiteouts, opaque directories, overwrites) to produce the
// image's inventory.
//
// Nothing is ever written to disk from a layer except into a private temp
// directory (for files too large to buffer in memory), and link targets are
// resolved only inside the image's own file index, so hostile layers cannot
// reach outside the image root.
package walk

import (
	"archive/tar"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/mamorisec/mamori/internal/image"
	"github.com/mamorisec/mamori/internal/inventory"
)

// Entry types recorded in a layer's file list.
const (
	TypeFile     = 'f'
	TypeDir      = 'd'
	TypeSymlink  = 'l'
	TypeHardlink = 'h'
	TypeOther    = 'o'
)

// Entry is one path in a layer.
type Entry struct {
	Path string
	Type byte
	// Link is the symlink or hard link target.
	Link string
	Mode fs.FileMode
	Size int64
}

// Entries is a layer's file list. It has a compact binary encoding for the
// layer cache: decoding shares one string for all names instead of
// allocating each, which keeps rescans of cached layers fast.
type Entries []Entry

// GobEncode implements gob.GobEncoder.
func (es Entries) GobEncode() ([]byte, error) {
	n := 0
	for _, e := range es {
		n += len(e.Path) + len(e.Link) + 16
	}
	b := make([]byte, 0, n+binary.MaxVarintLen64)
	b = binary.AppendUvarint(b, uint64(len(es)))
	for _, e := range es {
		b = append(b, e.Type)
		b = binary.AppendUvarint(b, uint64(e.Mode))
		b = binary.AppendVarint(b, e.Size)
		b = binary.AppendUvarint(b, uint64(len(e.Path)))
		b = append(b, e.Path...)
		b = binary.AppendUvarint(b, uint64(len(e.Link)))
		b = append(b, e.Link...)
	}
	return b, nil
}

// GobDecode implements gob.GobDecoder.
func (es *Entries) GobDecode(b []byte) error {
	d := decoder{b: b, all: string(b)}
	count, ok := d.uvarint()
	if !ok || count > uint64(len(b)) {
		return errCorruptCache
	}
	out := make(Entries, 0, count)
	for range count {
		if d.off >= len(b) {
			return errCorruptCache
		}
		e := Entry{Type: b[d.off]}
		d.off++
		mode, ok := d.uvarint()
		if !ok {
			return errCorruptCache
		}
		e.Mode = fs.FileMode(mode)
		size, n := binary.Varint(b[d.off:])
		if n <= 0 {
			return errCorruptCache
		}
		d.off += n
		e.Size = size
		if e.Path, ok = d.str(); !ok {
			return errCorruptCache
		}
		if e.Link, ok = d.str(); !ok {
			return errCorruptCache
		}
		out = append(out, e)
	}
	*es = out
	return nil
}

// FileLists maps an OS package name to the files it installed. Like
// Entries, it has a compact cache encoding whose decoding shares one string.
type FileLists map[string][]string

// GobEncode implements gob.GobEncoder.
func (fl FileLists) GobEncode() ([]byte, error) {
	names := make([]string, 0, len(fl))
	for k := range fl {
		names = append(names, k)
	}
	slices.Sort(names)
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(fl[k])))
		for _, f := range fl[k] {
			b = binary.AppendUvarint(b, uint64(len(f)))
			b = append(b, f...)
		}
	}
	return b, nil
}

// GobDecode implements gob.GobDecoder.
func (fl *FileLists) GobDecode(b []byte) error {
	d := decoder{b: b, all: string(b)}
	n, ok := d.uvarint()
	if !ok || n > uint64(len(b)) {
		return errCorruptCache
	}
	out := make(FileLists, n)
	for range n {
		name, ok := d.str()
		if !ok {
			return errCorruptCache
		}
		count, ok := d.uvarint()
		if !ok || count > uint64(len(b)) {
			return errCorruptCache
		}
		files := make([]string, 0, count)
		for range count {
			f, ok := d.str()
			if !ok {
				return errCorruptCache
			}
			files = append(files, f)
		}
		out[name] = files
	}
	*fl = out
	return nil
}

var errCorruptCache = errors.New("corrupt layer cache entry")

// decoder reads the compact cache encodings; strings are slices of all.
type decoder struct {
	b   []byte
	all string
	off int
}

func (d *decoder) uvarint() (uint64, bool) {
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		return 0, false
	}
	d.off += n
	return v, true
}

func (d *decoder) str() (string, bool) {
	l, ok := d.uvarint()
	if !ok || l > uint64(len(d.b)-d.off) {
		return "", false
	}
	s := d.all[d.off : d.off+int(l)]
	d.off += int(l)
	return s, true
}

// FileResult is what the extractors found in one file.
type FileResult struct {
	Packages    []inventory.Package
	OS          *inventory.OS
	Files       FileLists
	Licenses    map[string][]string
	LicenseType string
	Findings    []inventory.Finding
	Problems    []inventory.Problem
}

// LayerResult is everything the merge needs to know about one layer.
type LayerResult struct {
	DiffID    string
	Entries   Entries
	Whiteouts []string
	Opaque    []string
	// Results maps a file path to what the extractors found in it. Every
	// path that some extractor required appears, even with an empty result,
	// so that an upper layer replacing a package database with garbage
	// replaces the lower layer's packages too.
	Results map[string]*FileResult
	// Problems are layer-level problems (unsafe entry names, unreadable
	// hard links).
	Problems []inventory.Problem

	// entryData is the still-encoded file list of a layer read from the
	// cache; files decodes it on first use.
	entryData []byte
	// uncacheable is set when an extractor failed for a reason that says
	// nothing about the layer (inventory.ErrUncacheable).
	uncacheable bool
}

// files returns the layer's file list, decoding it from the cache encoding
// on first use.
func (lr *LayerResult) files() (Entries, error) {
	if lr.entryData != nil {
		var es Entries
		if err := es.GobDecode(lr.entryData); err != nil {
			return nil, fmt.Errorf("layer %s: cached file list: %w", lr.DiffID, err)
		}
		lr.Entries, lr.entryData = es, nil
	}
	return lr.Entries, nil
}

// Limits bound what the walk reads into memory.
type Limits struct {
	// MemFile is the largest file buffered in memory; larger files that an
	// extractor needs are spooled to the private temp directory.
	MemFile int64
	// MemBudget bounds the bytes of all files buffered in memory at once,
	// across layers scanned concurrently.
	MemBudget int64
	// MaxFile is the largest file handed to extractors at all.
	MaxFile int64
}

// maxLinkedFile is the largest hard-linked file the second pass reads.
const maxLinkedFile = 256 << 20

// DefaultLimits are used when Options.Limits is zero.
var DefaultLimits = Limits{MemFile: 16 << 20, MemBudget: 48 << 20, MaxFile: 1 << 30}

// LayerOptions configure the walk of one layer.
type LayerOptions struct {
	Extractors []inventory.Extractor
	Limits     Limits
	// TempDir is a private directory for spooled files.
	TempDir string
	// Workers is the number of goroutines running extractors.
	Workers int
	// OnEntry, if set, is called for every tar entry (progress).
	OnEntry func(hdr *tar.Header)
	// budget is shared by the layers of one image walk.
	budget *budget
}

// budget is a counting semaphore over bytes held in memory.
type budget struct {
	mu   sync.Mutex
	cond *sync.Cond
	free int64
}

func newBudget(n int64) *budget {
	b := &budget{free: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *budget) acquire(n int64) {
	b.mu.Lock()
	for b.free < n {
		b.cond.Wait()
	}
	b.free -= n
	b.mu.Unlock()
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

type job struct {
	fi   inventory.FileInfo
	data []byte
	file *os.File
	exts []inventory.Extractor
	// held is the budget this job's buffer holds, released when it is done.
	held   int64
	budget *budget
}

// ScanLayer reads one layer and runs the extractors on the files they need.
func ScanLayer(ctx context.Context, l image.Layer, opts LayerOptions) (*LayerResult, error) {
	if opts.Limits == (Limits{}) {
		opts.Limits = DefaultLimits
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.budget == nil {
		opts.budget = newBudget(opts.Limits.MemBudget)
	}
	res := &LayerResult{DiffID: l.DiffID(), Results: map[string]*FileResult{}}
	pendingLinks, err := scanPass(ctx, l, opts, res, nil)
	if err != nil {
		return nil, err
	}
	if len(pendingLinks) > 0 {
		// Hard links whose target an extractor did not need on the first
		// pass: read the targets in a second pass.
		if _, err := scanPass(ctx, l, opts, res, pendingLinks); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// scanPass reads the layer once. With linkTargets == nil it is the main pass
// and returns hard links whose content is still needed (target path -> link
// paths). With linkTargets set it only reads those targets.
func scanPass(ctx context.Context, l image.Layer, opts LayerOptions, res *LayerResult, linkTargets map[string][]string) (map[string][]string, error) {
	st, err := l.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", l.DiffID(), err)
	}
	defer st.Close()

	jobs := make(chan *job, opts.Workers)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				runJob(ctx, j, &mu, res)
			}
		}()
	}
	var mainErr error
	pending := map[string][]string{}
	wanted := map[string][]inventory.Extractor{} // regular files extractors wanted (main pass)
	seen := map[string]bool{}
	mainPass := linkTargets == nil

	for {
		if err := ctx.Err(); err != nil {
			mainErr = err
			break
		}
		hdr, err := st.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			mainErr = fmt.Errorf("layer %s: reading tar: %w", l.DiffID(), err)
			break
		}
		if opts.OnEntry != nil && mainPass {
			opts.OnEntry(hdr)
		}
		p, ok := cleanName(hdr.Name)
		if !ok {
			if mainPass {
				res.Problems = append(res.Problems, inventory.Problem{Path: hdr.Name, Layer: l.DiffID(), Message: "tar entry name escapes the image root; entry ignored"})
			}
			continue
		}
		if !mainPass {
			links, ok := linkTargets[p]
			if !ok || hdr.Typeflag != tar.TypeReg {
				continue
			}
			fi := inventory.FileInfo{Path: p, Size: hdr.Size, Mode: fs.FileMode(hdr.Mode).Perm() | modeBits(hdr.Mode)}
			if hdr.Size > maxLinkedFile || hdr.Size > opts.Limits.MaxFile {
				for _, link := range links {
					recordProblem(&mu, res, link, l.DiffID(), "", fmt.Errorf("hard link to a %d byte file is not analysed (limit %d)", hdr.Size, min(maxLinkedFile, opts.Limits.MaxFile)))
				}
				continue
			}
			// One buffer serves every link to the target; it is read in
			// memory whatever MemFile says, so the links can share it.
			lo := opts
			lo.Limits.MemFile, lo.Limits.MemBudget = maxLinkedFile, maxLinkedFile
			first, err := readJob(st, fi, nil, lo)
			if err != nil {
				mainErr = fmt.Errorf("layer %s: reading %s: %w", l.DiffID(), p, err)
				break
			}
			for _, link := range links {
				lfi := fi
				lfi.Path = link
				jobs <- &job{fi: lfi, data: first.data, exts: required(opts.Extractors, lfi)}
			}
			continue
		}
		base := path.Base(p)
		if strings.HasPrefix(base, ".wh.") {
			dir := path.Dir(p)
			if base == ".wh..wh..opq" {
				res.Opaque = append(res.Opaque, dir)
			} else {
				res.Whiteouts = append(res.Whiteouts, path.Join(dir, base[len(".wh."):]))
			}
			continue
		}
		e := Entry{Path: p, Mode: fs.FileMode(hdr.Mode).Perm() | modeBits(hdr.Mode), Size: hdr.Size}
		if seen[p] {
			// A later entry for the same path in one tar replaces the earlier.
			delete(res.Results, p)
		}
		seen[p] = true
		switch hdr.Typeflag {
		case tar.TypeReg: // archive/tar reports old-style TypeRegA entries as TypeReg
			e.Type = TypeFile
			fi := inventory.FileInfo{Path: p, Size: hdr.Size, Mode: e.Mode}
			exts := required(opts.Extractors, fi)
			if len(exts) == 0 {
				break
			}
			wanted[p] = exts
			if hdr.Size > opts.Limits.MaxFile {
				recordProblem(&mu, res, p, l.DiffID(), "", fmt.Errorf("file is %d bytes, over the %d byte limit; not analysed", hdr.Size, opts.Limits.MaxFile))
				break
			}
			j, err := readJob(st, fi, exts, opts)
			var se *streamError
			switch {
			case errors.As(err, &se):
				mainErr = fmt.Errorf("layer %s: reading %s: %w", l.DiffID(), p, se.err)
			case err != nil:
				recordProblem(&mu, res, p, l.DiffID(), "", err)
			default:
				jobs <- j
			}
		case tar.TypeDir:
			e.Type = TypeDir
		case tar.TypeSymlink:
			e.Type = TypeSymlink
			e.Link = hdr.Linkname
		case tar.TypeLink:
			e.Type = TypeHardlink
			target, ok := cleanName(hdr.Linkname)
			if !ok {
				res.Problems = append(res.Problems, inventory.Problem{Path: p, Layer: l.DiffID(), Message: fmt.Sprintf("hard link target %q escapes the image root; ignored", hdr.Linkname)})
				break
			}
			e.Link = target
			fi := inventory.FileInfo{Path: p, Size: hdr.Size, Mode: e.Mode}
			if exts := required(opts.Extractors, fi); len(exts) > 0 {
				pending[target] = append(pending[target], p)
				mu.Lock()
				res.Results[p] = ensure(res.Results[p])
				mu.Unlock()
			}
		default:
			e.Type = TypeOther
		}
		if mainErr != nil {
			break
		}
		res.Entries = append(res.Entries, e)
	}
	close(jobs)
	wg.Wait()
	if mainErr != nil {
		return nil, mainErr
	}
	return pending, nil
}

// streamError is a failure to read the layer's tar stream itself (a
// truncated or corrupt layer), as opposed to a failure to spool one file.
type streamError struct{ err error }

func (e *streamError) Error() string { return e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

func ensure(fr *FileResult) *FileResult {
	if fr == nil {
		return &FileResult{}
	}
	return fr
}

func modeBits(m int64) fs.FileMode {
	var fm fs.FileMode
	if m&04000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&02000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&01000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}

func required(exts []inventory.Extractor, fi inventory.FileInfo) []inventory.Extractor {
	var out []inventory.Extractor
	for _, e := range exts {
		if e.Required(fi) {
			out = append(out, e)
		}
	}
	return out
}

// readJob reads a file's content from the tar stream into memory or a spool
// file.
func readJob(r io.Reader, fi inventory.FileInfo, exts []inventory.Extractor, opts LayerOptions) (*job, error) {
	j := &job{fi: fi, exts: exts, budget: opts.budget}
	if fi.Size <= opts.Limits.MemFile && fi.Size <= opts.Limits.MemBudget {
		if exts != nil {
			opts.budget.acquire(fi.Size)
			j.held = fi.Size
		}
		buf := make([]byte, fi.Size)
		if _, err := io.ReadFull(r, buf); err != nil {
			j.done()
			return nil, &streamError{fmt.Errorf("truncated file: %w", err)}
		}
		j.data = buf
		return j, nil
	}
	f, err := os.CreateTemp(opts.TempDir, "spool-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name()) // unlinked: vanishes when closed
	n, err := io.Copy(f, io.LimitReader(r, fi.Size))
	if err != nil {
		f.Close()
		// io.Copy reports write errors from the spool file as *fs.PathError.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, &streamError{err}
	}
	if n != fi.Size {
		f.Close()
		return nil, &streamError{fmt.Errorf("truncated file: read %d of %d bytes", n, fi.Size)}
	}
	j.file = f
	return j, nil
}

// done releases the job's buffer budget and spool file.
func (j *job) done() {
	if j.file != nil {
		j.file.Close()
	}
	if j.held > 0 {
		j.budget.release(j.held)
		j.held = 0
	}
}

func runJob(ctx context.Context, j *job, mu *sync.Mutex, res *LayerResult) {
	defer j.done()
	fr := &FileResult{}
	data := j.data
	if j.file != nil && j.fi.Size > 0 && int64(int(j.fi.Size)) == j.fi.Size {
		// A spooled file is mapped; if that fails, extractors read it.
		if m, unmap, err := mapFile(j.file, j.fi.Size); err == nil {
			data = m
			defer unmap()
		}
	}
	for _, ex := range j.exts {
		var in *inventory.Input
		if data != nil {
			in = inventory.NewBufferedInput(j.fi, data)
		} else {
			ra := j.file
			in = inventory.NewInput(j.fi, io.NewSectionReader(j.file, 0, j.fi.Size), func() (io.ReaderAt, error) { return ra, nil })
		}
		out, err := extract(ctx, ex, in)
		if err != nil {
			fr.Problems = append(fr.Problems, inventory.Problem{Path: j.fi.Path, Extractor: ex.Name(), Message: err.Error()})
			if errors.Is(err, inventory.ErrUncacheable) {
				mu.Lock()
				res.uncacheable = true
				mu.Unlock()
			}
			continue
		}
		fr.Packages = append(fr.Packages, out.Packages...)
		for _, f := range out.Findings {
			if f.Path == "" {
				f.Path = j.fi.Path
			}
			if f.Source == "" {
				f.Source = inventory.SourceFile
			}
			fr.Findings = append(fr.Findings, f)
		}
		if out.OS != nil {
			fr.OS = out.OS
		}
		if len(out.Files) > 0 {
			if fr.Files == nil {
				fr.Files = FileLists{}
			}
			for k, v := range out.Files {
				fr.Files[k] = append(fr.Files[k], v...)
			}
		}
		if len(out.Licenses) > 0 {
			if fr.Licenses == nil {
				fr.Licenses = map[string][]string{}
			}
			for k, v := range out.Licenses {
				fr.Licenses[k] = append(fr.Licenses[k], v...)
			}
			fr.LicenseType = out.LicenseType
		}
	}
	for i := range fr.Packages {
		if fr.Packages[i].Path == "" {
			fr.Packages[i].Path = j.fi.Path
		}
	}
	mu.Lock()
	res.Results[j.fi.Path] = fr
	mu.Unlock()
}

// extract runs one extractor, turning a panic in it into an error so that a
// bug triggered by hostile input costs one file, not the scan.
func extract(ctx context.Context, ex inventory.Extractor, in *inventory.Input) (res inventory.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("extractor %s failed: %v", ex.Name(), r)
		}
	}()
	return ex.Extract(ctx, in)
}

func recordProblem(mu *sync.Mutex, res *LayerResult, p, layer, ext string, err error) {
	mu.Lock()
	defer mu.Unlock()
	fr := ensure(res.Results[p])
	fr.Problems = append(fr.Problems, inventory.Problem{Path: p, Layer: layer, Extractor: ext, Message: err.Error()})
	res.Results[p] = fr
}

// cleanName turns a tar entry name into an absolute, clean path. It rejects
// names that climb above the root ("../x"); absolute names are taken relative
// to the image root, as container runtimes do.
func cleanName(name string) (string, bool) {
	rel := strings.TrimLeft(name, "/")
	if rel == "" || rel == "." || rel == "./" {
		return "/", true
	}
	c := path.Clean(rel)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	if c == "." {
		return "/", true
	}
	return "/" + c, true
}
