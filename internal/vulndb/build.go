package vulndb

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/version"
)

// maxProblems bounds the reasons kept per source; the count stays exact.
const maxProblems = 20

// Builder collects records from sources and writes a database file.
// It is not safe for concurrent use.
type Builder struct {
	records  map[string]*Record
	affected map[string][]Affected
	sources  []*SourceInfo
	// Log, when set, receives one line per skipped record or entry.
	Log func(msg string)
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{records: map[string]*Record{}, affected: map[string][]Affected{}}
}

// AddPath imports a source from a file or a directory: OSV records in JSON
// or YAML, zip archives of them (the per-ecosystem all.zip exports), and
// Alpine secdb YAML files, all recognised by content. Directories are read
// recursively. name names the source in the database's info; origin is
// where it came from (a URL or the path).
func (b *Builder) AddPath(name, origin, path string) (*SourceInfo, error) {
	src := &SourceInfo{Name: name, Origin: origin}
	b.sources = append(b.sources, src)
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", name, err)
	}
	if !st.IsDir() {
		if err := b.addFile(src, path); err != nil {
			return nil, err
		}
		return src, nil
	}
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("source %s: %w", name, err)
		}
		if d.Type().IsRegular() && isDataFile(p) {
			return b.addFile(src, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return src, nil
}

func isDataFile(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".json", ".yaml", ".yml", ".zip":
		return true
	}
	return false
}

// addFile imports one file. Only I/O errors abort the import; a bad record
// is a counted skip.
func (b *Builder) addFile(src *SourceInfo, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("source %s: %w", src.Name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("source %s: %w", src.Name, err)
	}
	if strings.EqualFold(filepath.Ext(p), ".zip") {
		zr, err := zip.NewReader(f, st.Size())
		if err != nil {
			return fmt.Errorf("source %s: %s: not a readable zip archive: %w", src.Name, p, err)
		}
		return b.addZip(src, p, zr)
	}
	if st.Size() > maxSecDBSize {
		b.skip(src, fmt.Sprintf("%s: %d bytes is over the %d byte limit for one file", p, st.Size(), maxSecDBSize))
		return nil
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("source %s: reading %s: %w", src.Name, p, err)
	}
	b.addData(src, p, data)
	return nil
}

func (b *Builder) addZip(src *SourceInfo, p string, zr *zip.Reader) error {
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() || !isDataFile(zf.Name) {
			continue
		}
		name := p + "!" + zf.Name
		if zf.UncompressedSize64 > maxRecordSize {
			b.skip(src, fmt.Sprintf("%s: %d bytes is over the %d byte limit for one record", name, zf.UncompressedSize64, maxRecordSize))
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("source %s: %s: %w", src.Name, name, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, maxRecordSize+1))
		rc.Close()
		if err != nil {
			return fmt.Errorf("source %s: %s: corrupt zip entry: %w", src.Name, name, err)
		}
		b.addData(src, name, data)
	}
	return nil
}

func (b *Builder) addData(src *SourceInfo, name string, data []byte) {
	if isSecDB(data) {
		if err := b.addSecDB(src, name, data); err != nil {
			b.skip(src, err.Error())
		}
		return
	}
	r, err := ParseOSV(name, data)
	if err != nil {
		b.skip(src, err.Error())
		return
	}
	b.AddOSV(src, name, r)
}

func (b *Builder) skip(src *SourceInfo, msg string) {
	src.Skipped++
	if len(src.Problems) < maxProblems {
		src.Problems = append(src.Problems, msg)
	}
	if b.Log != nil {
		b.Log("skipped " + msg)
	}
}

// AddOSV adds one parsed record. Withdrawn records are counted and left
// out; affected entries with an unknown ecosystem or an unparsable version
// are skipped and counted, the rest of the record is kept.
func (b *Builder) AddOSV(src *SourceInfo, name string, r *OSV) {
	if r.Withdrawn != "" {
		src.Withdrawn++
		return
	}
	var entries []Affected
	for i, a := range r.Affected {
		e, err := convertAffected(r.ID, a)
		if err != nil {
			b.skip(src, fmt.Sprintf("%s: record %s: affected[%d]: %v", name, r.ID, i, err))
			continue
		}
		if e != nil {
			entries = append(entries, *e)
		}
	}
	if len(entries) == 0 {
		if len(r.Affected) == 0 {
			b.skip(src, fmt.Sprintf("%s: record %s lists no affected package", name, r.ID))
		}
		return
	}
	src.Records++
	b.putRecord(recordOf(r, src.Name))
	for _, e := range entries {
		k := string(key(Base(e.Ecosystem), e.Name))
		b.affected[k] = append(b.affected[k], e)
	}
}

// putRecord stores a record; when two sources carry the same ID the newer
// modification wins and aliases are merged.
func (b *Builder) putRecord(r *Record) {
	old, ok := b.records[r.ID]
	if !ok {
		b.records[r.ID] = r
		return
	}
	keep, other := old, r
	if r.Modified > old.Modified || (old.Summary == "" && r.Summary != "") {
		keep, other = r, old
	}
	for _, a := range other.Aliases {
		if !slices.Contains(keep.Aliases, a) {
			keep.Aliases = append(keep.Aliases, a)
		}
	}
	slices.Sort(keep.Aliases)
	b.records[r.ID] = keep
}

func recordOf(r *OSV, source string) *Record {
	rec := &Record{
		ID: r.ID, Summary: summaryOf(r), Severity: r.Severity,
		Published: r.Published, Modified: r.Modified, Source: source,
	}
	for _, a := range append(slices.Clone(r.Aliases), r.Upstream...) {
		if a != r.ID && !slices.Contains(rec.Aliases, a) {
			rec.Aliases = append(rec.Aliases, a)
		}
	}
	slices.Sort(rec.Aliases)
	var ds struct {
		Severity string `json:"severity"`
		URL      string `json:"url"`
	}
	if len(r.DatabaseSpecific) > 0 {
		_ = json.Unmarshal(r.DatabaseSpecific, &ds) // optional fields of free form
	}
	rec.DBSeverity, rec.URL = ds.Severity, ds.URL
	for _, ref := range r.References {
		if ref.Type == "ADVISORY" && rec.URL == "" {
			rec.URL = ref.URL
		}
		if len(rec.References) < 10 && !slices.Contains(rec.References, ref.URL) {
			rec.References = append(rec.References, ref.URL)
		}
	}
	if rec.URL == "" && len(rec.References) > 0 {
		rec.URL = rec.References[0]
	}
	return rec
}

// summaryOf returns the summary, or the first line of the details cut to
// a length a table can show.
func summaryOf(r *OSV) string {
	s := r.Summary
	if s == "" {
		s, _, _ = strings.Cut(strings.TrimSpace(r.Details), "\n")
	}
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}

// convertAffected validates one affected entry. It returns nil, nil for
// entries that cannot be matched by version (only GIT ranges).
func convertAffected(id string, a OSVAffected) (*Affected, error) {
	if !Known(a.Package.Ecosystem) {
		return nil, fmt.Errorf("unknown ecosystem %q", a.Package.Ecosystem)
	}
	eco := Base(a.Package.Ecosystem) + strings.TrimPrefix(a.Package.Ecosystem, strings.SplitN(a.Package.Ecosystem, ":", 2)[0])
	e := &Affected{ID: id, Ecosystem: eco, Name: a.Package.Name, Severity: a.Severity}
	for _, v := range a.Versions {
		if _, err := version.Parse(eco, v); err != nil {
			return nil, err
		}
		e.Versions = append(e.Versions, v)
	}
	for _, rg := range a.Ranges {
		if rg.Type != "SEMVER" && rg.Type != "ECOSYSTEM" {
			continue
		}
		out := Range{Type: rg.Type}
		for _, ev := range rg.Events {
			kind, v := Introduced, ev.Introduced
			switch {
			case ev.Fixed != "":
				kind, v = Fixed, ev.Fixed
			case ev.LastAffected != "":
				kind, v = LastAffected, ev.LastAffected
			case ev.Limit != "":
				kind, v = Limit, ev.Limit
			}
			if !(kind == Introduced && v == "0") && !(kind == Limit && v == "*") {
				if _, err := version.Parse(eco, v); err != nil {
					return nil, err
				}
			}
			out.Events = append(out.Events, Event{Kind: kind, Version: v})
		}
		e.Ranges = append(e.Ranges, out)
	}
	if len(e.Ranges) == 0 && len(e.Versions) == 0 {
		return nil, nil
	}
	if len(a.EcosystemSpecific) > 0 {
		var es struct {
			Imports []Import `json:"imports"`
		}
		if err := json.Unmarshal(a.EcosystemSpecific, &es); err == nil {
			e.Imports = es.Imports
		}
	}
	return e, nil
}

// Write writes the collected data to a new database file at path. The file
// is written next to path and renamed over it only when complete, so a
// failure leaves any previous database intact.
func (b *Builder) Write(path string, built time.Time) (*Info, error) {
	info := &Info{Schema: SchemaVersion, Built: built.UTC(), Records: len(b.records), Ecosystems: map[string]int{}}
	for _, s := range b.sources {
		info.Sources = append(info.Sources, *s)
	}
	for _, es := range b.affected {
		info.Affected += len(es)
		for _, e := range es {
			info.Ecosystems[e.Ecosystem]++
		}
	}
	if err := writeDB(path, info, b.records, b.affected); err != nil {
		return nil, err
	}
	return info, nil
}

// Empty reports whether no record has been added.
func (b *Builder) Empty() bool { return len(b.records) == 0 }

// Each calls fn for every collected package entry list and rec for every
// record, in no particular order. It lets tests and tools read what a
// Builder holds without writing a file.
func (b *Builder) Each(fn func(base, name string, es []Affected), rec func(*Record)) {
	for k, es := range b.affected {
		base, name, _ := strings.Cut(k, "\x00")
		fn(base, name, es)
	}
	for _, r := range b.records {
		rec(r)
	}
}
