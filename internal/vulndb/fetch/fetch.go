// Package fetch downloads the source files of the vulnerability database (OSV
// exports, Alpine secdb files) into a cache directory.
//
// Every download is conditional (If-None-Match, If-Modified-Since) on the
// metadata kept next to the cached file, is checked (size limit, checksum,
// format) before it is renamed into place, and is written atomically: a failed
// or interrupted download leaves the previous file and its metadata intact.
package fetch

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mamorisec/mamori/internal/atomicfile"
	"github.com/mamorisec/mamori/internal/inventory"
)

// Source formats.
const (
	// FormatOSVZip is a zip archive of OSV JSON records, as in the OSV
	// export's <Ecosystem>/all.zip.
	FormatOSVZip = "osv-zip"
	// FormatOSVJSON is one JSON document: an OSV record or an array of them.
	FormatOSVJSON = "osv-json"
	// FormatAlpineSecDB is an Alpine secdb file (secdb.alpinelinux.org).
	FormatAlpineSecDB = "alpine-secdb"
)

// DefaultMaxSize is the largest file Fetch accepts when Source.MaxSize is 0.
const DefaultMaxSize int64 = 1 << 30

// secdbMaxSize is the default limit for Alpine secdb files. They are parsed
// in memory to check them, so their limit is lower than DefaultMaxSize; real
// ones are a few MiB.
const secdbMaxSize int64 = 64 << 20

// UserAgent is sent with every request.
const UserAgent = "mamori-db-update"

// Source is one file the vulnerability database is built from.
type Source struct {
	// Name identifies the source and names its cached file; it may contain
	// letters, digits, '.', '_' and '-'.
	Name string `json:"name"`
	// URL is the http or https URL of the file.
	URL string `json:"url"`
	// Format is FormatOSVZip, FormatOSVJSON or FormatAlpineSecDB.
	Format string `json:"format"`
	// SHA256URL, when set, is a URL whose body is the hex SHA-256 of the file
	// (optionally followed by a file name, as sha256sum prints it).
	SHA256URL string `json:"sha256URL,omitempty"`
	// MaxSize is the largest accepted file in bytes; 0 means DefaultMaxSize
	// (64 MiB for FormatAlpineSecDB).
	MaxSize int64 `json:"maxSize,omitempty"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Validate reports what is wrong with s, if anything.
func (s Source) Validate() error {
	if s.Name == "" {
		return errors.New("source has no name")
	}
	if !nameRE.MatchString(s.Name) {
		return fmt.Errorf("invalid source name %q: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", s.Name)
	}
	if err := checkURL(s.URL); err != nil {
		return fmt.Errorf("source %s: url: %w", s.Name, err)
	}
	if s.SHA256URL != "" {
		if err := checkURL(s.SHA256URL); err != nil {
			return fmt.Errorf("source %s: sha256 url: %w", s.Name, err)
		}
	}
	if s.Format == "" {
		return fmt.Errorf("source %s: missing format (want %s, %s or %s)", s.Name, FormatOSVZip, FormatOSVJSON, FormatAlpineSecDB)
	}
	if ext(s.Format) == "" {
		return fmt.Errorf("source %s: unknown format %q (want %s, %s or %s)", s.Name, s.Format, FormatOSVZip, FormatOSVJSON, FormatAlpineSecDB)
	}
	if s.MaxSize < 0 {
		return fmt.Errorf("source %s: negative max size %d", s.Name, s.MaxSize)
	}
	return nil
}

func checkURL(raw string) error {
	if raw == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http or https URL", redact(raw))
	}
	return nil
}

// FileName is the name of the source's cached file.
func (s Source) FileName() string { return s.Name + ext(s.Format) }

func (s Source) maxSize() int64 {
	switch {
	case s.MaxSize > 0:
		return s.MaxSize
	case s.Format == FormatAlpineSecDB:
		return secdbMaxSize
	}
	return DefaultMaxSize
}

func ext(format string) string {
	switch format {
	case FormatOSVZip:
		return ".zip"
	case FormatOSVJSON:
		return ".json"
	case FormatAlpineSecDB:
		return ".yaml"
	}
	return ""
}

// Result describes the cached file of one source after Fetch.
type Result struct {
	Source Source
	// Path is the cached file.
	Path string
	// ETag and LastModified are the server's validators for the file.
	ETag, LastModified string
	// SHA256 is the hex SHA-256 of the cached file, computed by Fetch.
	SHA256 string
	// Size is the cached file's size in bytes.
	Size int64
	// NotModified is true when the cached file was already current and
	// nothing was downloaded.
	NotModified bool
	// Fetched is when the server last confirmed the file is current (the
	// time of this Fetch).
	Fetched time.Time
}

// meta is the metadata kept next to a cached file.
type meta struct {
	URL          string    `json:"url"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"lastModified,omitempty"`
	SHA256       string    `json:"sha256"`
	Size         int64     `json:"size"`
	Fetched      time.Time `json:"fetched"`
}

func metaPath(path string) string { return path + ".meta" }

// loadMeta returns the metadata of the cached file at path, or nil when there
// is none that matches the file and the source's URL (then the file is
// downloaded unconditionally).
func loadMeta(path, srcURL string) *meta {
	f, err := os.Open(metaPath(path))
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := inventory.ReadAllLimited(f, 64<<10)
	if err != nil {
		return nil
	}
	var m meta
	if json.Unmarshal(b, &m) != nil || m.URL != srcURL {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Size() != m.Size {
		return nil
	}
	return &m
}

func writeMeta(path string, m *meta) error {
	return atomicfile.Write(metaPath(path), 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	})
}

func (m *meta) result(src Source, path string, notModified bool) Result {
	return Result{
		Source: src, Path: path, ETag: m.ETag, LastModified: m.LastModified,
		SHA256: m.SHA256, Size: m.Size, NotModified: notModified, Fetched: m.Fetched,
	}
}

// Fetch downloads src into dir (created if missing) as dir/src.FileName().
// A nil client means http.DefaultClient; ctx bounds the whole download.
//
// The request is conditional on the previous download's ETag and
// Last-Modified; when the server answers 304 Not Modified, or src.SHA256URL
// names the checksum of the cached file, nothing is downloaded. Otherwise the
// body is written to a temporary file in dir, limited to the source's max
// size, checked against src.SHA256URL when set, checked to be a readable file
// of src.Format, synced and renamed into place. On error the previous file
// and metadata are left as they were.
func Fetch(ctx context.Context, c *http.Client, src Source, dir string) (Result, error) {
	res, err := fetch(ctx, c, src, dir)
	if err != nil {
		return Result{Source: src}, fmt.Errorf("fetching %s from %s: %w", src.Name, redact(src.URL), err)
	}
	return res, nil
}

func fetch(ctx context.Context, c *http.Client, src Source, dir string) (Result, error) {
	if err := src.Validate(); err != nil {
		return Result{}, err
	}
	if c == nil {
		c = http.DefaultClient
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, err
	}
	path := filepath.Join(dir, src.FileName())
	prev := loadMeta(path, src.URL)

	var want string
	if src.SHA256URL != "" {
		var err error
		if want, err = fetchChecksum(ctx, c, src.SHA256URL); err != nil {
			return Result{}, err
		}
		if prev != nil && prev.SHA256 == want {
			prev.Fetched = time.Now().UTC()
			if err := writeMeta(path, prev); err != nil {
				return Result{}, err
			}
			return prev.result(src, path, true), nil
		}
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("User-Agent", UserAgent)
	if prev != nil {
		if prev.ETag != "" {
			req.Header.Set("If-None-Match", prev.ETag)
		}
		if prev.LastModified != "" {
			req.Header.Set("If-Modified-Since", prev.LastModified)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return Result{}, err
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		if prev == nil {
			return Result{}, errors.New("server answered 304 Not Modified to an unconditional request")
		}
		if v := resp.Header.Get("ETag"); v != "" {
			prev.ETag = v
		}
		if v := resp.Header.Get("Last-Modified"); v != "" {
			prev.LastModified = v
		}
		prev.Fetched = time.Now().UTC()
		if err := writeMeta(path, prev); err != nil {
			return Result{}, err
		}
		return prev.result(src, path, true), nil
	default:
		return Result{}, fmt.Errorf("server answered %s", resp.Status)
	}

	m, err := download(resp, src, path, want)
	if err != nil {
		return Result{}, err
	}
	return m.result(src, path, false), nil
}

// download writes the body of resp to path through a verified temporary
// file and records the new metadata.
func download(resp *http.Response, src Source, path, want string) (m *meta, err error) {
	limit := src.maxSize()
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("file is %d bytes, larger than the limit of %d bytes", resp.ContentLength, limit)
	}
	dir := filepath.Dir(path)
	removeStale(dir, filepath.Base(path))
	tmp, err := os.CreateTemp(dir, tmpPrefix(filepath.Base(path))+"*")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("download interrupted after %d bytes: %w", n, err)
	}
	if n > limit {
		return nil, fmt.Errorf("file is larger than the limit of %d bytes", limit)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return nil, fmt.Errorf("download truncated: got %d of %d bytes", n, resp.ContentLength)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want != "" && sum != want {
		return nil, fmt.Errorf("checksum mismatch: file has sha256 %s, %s says %s (the file may have changed during the download; try again)", sum, redact(src.SHA256URL), want)
	}
	if err := checkFormat(src.Format, tmp, n); err != nil {
		return nil, fmt.Errorf("downloaded file is not a valid %s file: %w", src.Format, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	// The old metadata goes first: a crash before the new metadata is written
	// then leaves a file without metadata (downloaded again next time), never
	// metadata that describes another file.
	if err := os.Remove(metaPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	m = &meta{
		URL: src.URL, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"),
		SHA256: sum, Size: n, Fetched: time.Now().UTC(),
	}
	if err := writeMeta(path, m); err != nil {
		return nil, err
	}
	return m, nil
}

func tmpPrefix(base string) string { return "." + base + ".tmp-" }

// staleAge is how long a temporary file must have been left unchanged to be
// taken as left behind by an interrupted run (a running download writes to
// its file continually).
const staleAge = time.Hour

// removeStale removes temporary files of base left behind in dir by
// interrupted runs.
func removeStale(dir, base string) {
	matches, _ := filepath.Glob(filepath.Join(dir, tmpPrefix(base)+"*"))
	for _, p := range matches {
		if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() && time.Since(st.ModTime()) > staleAge {
			os.Remove(p)
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// fetchChecksum returns the lower-case hex SHA-256 that the body of u names.
func fetchChecksum(ctx context.Context, c *http.Client, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", UserAgent)
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetching checksum: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetching checksum from %s: server answered %s", redact(u), resp.Status)
	}
	b, err := inventory.ReadAllLimited(resp.Body, 4<<10)
	if err != nil {
		return "", fmt.Errorf("reading checksum from %s: %w", redact(u), err)
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return "", fmt.Errorf("checksum from %s is empty", redact(u))
	}
	sum := strings.ToLower(fields[0])
	if d, err := hex.DecodeString(sum); err != nil || len(d) != sha256.Size {
		return "", fmt.Errorf("checksum from %s is not a hex SHA-256: %.80q", redact(u), fields[0])
	}
	return sum, nil
}

// checkFormat checks that the n bytes of f are a readable file of format, so
// that an error page or a truncated file never replaces a good one.
func checkFormat(format string, f *os.File, n int64) error {
	r := io.NewSectionReader(f, 0, n)
	switch format {
	case FormatOSVZip:
		_, err := zip.NewReader(r, n)
		return err
	case FormatOSVJSON:
		return checkJSON(bufio.NewReader(r))
	case FormatAlpineSecDB:
		return checkSecDB(r)
	}
	return fmt.Errorf("unknown format %q", format)
}

// checkJSON checks that r holds exactly one JSON object or array, streaming
// its tokens so that memory stays bounded by the longest string.
func checkJSON(r io.Reader) error {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || (d != '{' && d != '[') {
		return fmt.Errorf("want a JSON object or array, found %v", tok)
	}
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("unexpected data after the JSON document (offset %d)", dec.InputOffset())
	}
	return nil
}

// checkSecDB checks that r parses as an Alpine secdb document.
func checkSecDB(r io.Reader) error {
	var doc struct {
		DistroVersion string `yaml:"distroversion"`
		Packages      []struct {
			Pkg struct {
				Name string `yaml:"name"`
			} `yaml:"pkg"`
		} `yaml:"packages"`
	}
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil {
		return err
	}
	if doc.DistroVersion == "" {
		return errors.New("no distroversion")
	}
	if doc.Packages == nil {
		return errors.New("no packages")
	}
	for i, p := range doc.Packages {
		if p.Pkg.Name == "" {
			return fmt.Errorf("packages[%d]: no pkg.name", i)
		}
	}
	return nil
}

// redact hides the password of a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}

// FailedError is returned by FetchAll when sources failed.
type FailedError struct {
	// Failed names the sources that failed, in the order given.
	Failed []string
	// Errs holds one error per failed source.
	Errs []error
	// Total is the number of sources FetchAll was given.
	Total int
}

func (e *FailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d sources failed (%s)", len(e.Failed), e.Total, strings.Join(e.Failed, ", "))
	for _, err := range e.Errs {
		b.WriteString("\n  ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns the errors of the failed sources.
func (e *FailedError) Unwrap() []error { return e.Errs }

// FetchAll fetches srcs into dir with at most concurrency downloads at once
// (at least one). It returns one Result per source, in order. When any
// source fails it returns a *FailedError naming every failed source; the
// sources that succeeded stay cached, so the caller can decide not to build
// from a partial set and retry later.
func FetchAll(ctx context.Context, c *http.Client, srcs []Source, dir string, concurrency int) ([]Result, error) {
	seen := make(map[string]bool, len(srcs))
	for _, s := range srcs {
		if seen[s.Name] {
			return nil, fmt.Errorf("source %q is listed twice", s.Name)
		}
		seen[s.Name] = true
	}
	concurrency = max(concurrency, 1)
	results := make([]Result, len(srcs))
	errs := make([]error, len(srcs))
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = Fetch(ctx, c, s, dir)
		})
	}
	wg.Wait()
	fe := &FailedError{Total: len(srcs)}
	for i, err := range errs {
		if err != nil {
			fe.Failed = append(fe.Failed, srcs[i].Name)
			fe.Errs = append(fe.Errs, err)
		}
	}
	if len(fe.Errs) > 0 {
		return results, fe
	}
	return results, nil
}
