package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/server/query"
	"github.com/mamorisec/mamori/internal/vuln"
)

// Image is an image the server has seen, identified by registry,
// repository, tag and digest.
type Image struct {
	ID int64 `json:"id"`
	// Registry is the registry host ("docker.io", "registry.example.com:5000").
	Registry string `json:"registry"`
	// Repository is the repository path in the registry ("library/nginx").
	Repository string `json:"repository"`
	// Tag is the tag the image was scanned by, "" when scanned by digest.
	Tag string `json:"tag,omitempty"`
	// Digest is the manifest digest ("sha256:...").
	Digest string `json:"digest,omitempty"`
	// ImageID is the image configuration digest.
	ImageID string `json:"imageID,omitempty"`
	// Labels are the image configuration's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// Created is when the image was built, per its configuration.
	Created time.Time `json:"created,omitzero"`
	// FirstSeen and LastSeen are when a scan of the image was first and
	// last stored.
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	// LatestScanID is the image's latest stored scan, 0 when none.
	LatestScanID int64 `json:"latestScanID,omitempty"`
	// Summary counts the findings of the latest scan.
	Summary Summary `json:"summary"`
	// Assurance is the latest scan's assurance status (AssuranceNone
	// before any scan).
	Assurance string `json:"assurance"`
}

// Ref returns the image reference used by Scope globs:
// "registry/repository:tag", or "registry/repository@digest" without a tag.
func (im *Image) Ref() string {
	if im.Tag != "" {
		return im.Registry + "/" + im.Repository + ":" + im.Tag
	}
	return im.Registry + "/" + im.Repository + "@" + im.Digest
}

// Summary counts the vulnerabilities of a scan that count against a gate
// (not suppressed, not "not-affected") by severity.
type Summary struct {
	Critical   int `json:"critical"`
	High       int `json:"high"`
	Medium     int `json:"medium"`
	Low        int `json:"low"`
	Negligible int `json:"negligible"`
	Unknown    int `json:"unknown"`
}

// Scan statuses.
const (
	ScanQueued  = "queued"
	ScanRunning = "running"
	ScanDone    = "done"
	ScanFailed  = "failed"
)

// Assurance statuses of a scan.
const (
	// AssuranceNone: no assurance policy was evaluated.
	AssuranceNone = "none"
	AssurancePass = "pass"
	AssuranceFail = "fail"
	// AssuranceWarn: only audit-mode policies failed, so the image is
	// reported non-compliant but nothing fails or blocks it.
	AssuranceWarn = "warn"
)

// Scan is one scan of an image. The full report is fetched separately
// with ScanReport.
type Scan struct {
	ID      int64     `json:"id"`
	ImageID int64     `json:"imageID"`
	Created time.Time `json:"created"`
	// Status is ScanQueued, ScanRunning, ScanDone or ScanFailed.
	Status string `json:"status"`
	// Error says why a failed scan failed.
	Error   string  `json:"error,omitempty"`
	Summary Summary `json:"summary"`
	// Assurance is AssuranceNone, AssurancePass or AssuranceFail, and
	// AssurancePolicy the policy evaluated.
	Assurance       string `json:"assurance"`
	AssurancePolicy string `json:"assurancePolicy,omitempty"`
}

var severityValues = []string{"UNKNOWN", "NEGLIGIBLE", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

var imageSchema = &query.Schema{
	Resource: "images",
	ID:       "i.id",
	Fields: []query.Field{
		{Name: "id", Column: "i.id", Type: query.Int},
		{Name: "registry", Column: "i.registry", Type: query.String},
		{Name: "repository", Column: "i.repository", Type: query.String},
		{Name: "tag", Column: "i.tag", Type: query.String},
		{Name: "digest", Column: "i.digest", Type: query.String},
		{Name: "name", Column: "i.ref", Type: query.String},
		{Name: "created", Column: "i.created", Type: query.Time},
		{Name: "firstSeen", Column: "i.first_seen", Type: query.Time},
		{Name: "lastSeen", Column: "i.last_seen", Type: query.Time},
		{Name: "critical", Column: "COALESCE(ls.critical, 0)", Type: query.Int},
		{Name: "high", Column: "COALESCE(ls.high, 0)", Type: query.Int},
		{Name: "assurance", Column: "COALESCE(ls.assurance, 'none')", Type: query.Enum, Values: []string{AssuranceFail, AssuranceNone, AssurancePass, AssuranceWarn}},
		// fixable counts the latest scan's findings that have a fix
		// ("fixable>0" selects images a rebuild would improve).
		{Name: "fixable", Column: "(SELECT COUNT(*) FROM vulnerabilities fv WHERE fv.scan_id = i.latest_scan_id AND fv.fixable AND NOT fv.suppressed)", Type: query.Int, NoSort: true},
	},
}

const imageCols = `i.id, i.registry, i.repository, i.tag, i.digest, i.image_id, i.labels, i.created, i.first_seen, i.last_seen,
	COALESCE(i.latest_scan_id, 0), COALESCE(ls.critical, 0), COALESCE(ls.high, 0), COALESCE(ls.medium, 0),
	COALESCE(ls.low, 0), COALESCE(ls.negligible, 0), COALESCE(ls.unknown, 0), COALESCE(ls.assurance, 'none')`

const imageFrom = "images i LEFT JOIN scans ls ON ls.id = i.latest_scan_id"

func scanImage(im *Image) []any {
	return []any{&im.ID, &im.Registry, &im.Repository, &im.Tag, &im.Digest, &im.ImageID, jsonCol{&im.Labels},
		timeCol{&im.Created}, timeCol{&im.FirstSeen}, timeCol{&im.LastSeen}, &im.LatestScanID,
		&im.Summary.Critical, &im.Summary.High, &im.Summary.Medium, &im.Summary.Low, &im.Summary.Negligible, &im.Summary.Unknown, &im.Assurance}
}

var imageList = &listSpec[Image]{
	schema: imageSchema, from: imageFrom, cols: imageCols, scan: scanImage, scoped: true,
	def: []query.SortKey{{Field: "name"}},
}

// ListImages returns a page of images. Sortable and filterable fields: id,
// registry, repository, tag, digest, name (the reference), created,
// firstSeen, lastSeen, critical, high (latest scan counts), assurance; and
// filterable only: fixable (the latest scan's findings that have a fix).
func (s *Store) ListImages(ctx context.Context, opts ListOptions) (Page[Image], error) {
	return list(ctx, s, imageList, opts)
}

// CountImages counts the images the filter and scope select.
func (s *Store) CountImages(ctx context.Context, opts ListOptions) (int64, error) {
	return count(ctx, s, imageList, opts)
}

// GetImage returns the image with the given id, ErrNotFound when it does
// not exist or scope does not allow it.
func (s *Store) GetImage(ctx context.Context, id int64, scope *Scope) (Image, error) {
	args := s.args()
	where := "i.id = " + args.Add(id)
	if sc := scope.sql("i", args); sc != "" {
		where += " AND " + sc
	}
	row := s.db.QueryRowContext(ctx, "SELECT "+imageCols+" FROM "+imageFrom+" WHERE "+where, args.Values...)
	return scanRow(row, scanImage, fmt.Sprintf("image %d", id))
}

// DeleteImage deletes an image with its scans and findings.
func (s *Store) DeleteImage(ctx context.Context, id int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, "UPDATE images SET latest_scan_id = NULL WHERE id = ?", id); err != nil {
			return dbErr(err, fmt.Sprintf("deleting image %d", id))
		}
		res, err := s.exec(ctx, tx, "DELETE FROM images WHERE id = ?", id)
		return affected(res, err, fmt.Sprintf("deleting image %d", id))
	})
}

// upsertImage creates the image or records that it was seen again, and
// returns its id.
func (s *Store) upsertImage(ctx context.Context, tx *sql.Tx, im Image, now int64) (int64, error) {
	if im.Registry == "" || im.Repository == "" || im.Tag == "" && im.Digest == "" {
		return 0, invalidf("image %q: registry, repository and a tag or digest are required", im.Ref())
	}
	labels, err := jsonCol{im.Labels}.Value()
	if err != nil {
		return 0, err
	}
	id, err := s.insertID(ctx, tx, `INSERT INTO images (registry, repository, tag, digest, image_id, ref, labels, created, first_seen, last_seen)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (registry, repository, tag, digest) DO UPDATE SET image_id = excluded.image_id,
			labels = excluded.labels, created = excluded.created, last_seen = excluded.last_seen`,
		im.Registry, im.Repository, im.Tag, im.Digest, im.ImageID, im.Ref(), labels, micros(im.Created), now, now)
	return id, dbErr(err, fmt.Sprintf("storing image %s", im.Ref()))
}

// QueueScan records a queued scan of the image (creating the image if
// needed) and returns it.
func (s *Store) QueueScan(ctx context.Context, im Image) (Scan, error) {
	var sc Scan
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.nowMicros()
		imageID, err := s.upsertImage(ctx, tx, im, now)
		if err != nil {
			return err
		}
		id, err := s.insertID(ctx, tx, "INSERT INTO scans (image_id, created, status) VALUES (?, ?, ?)", imageID, now, ScanQueued)
		if err != nil {
			return dbErr(err, "queueing scan of "+im.Ref())
		}
		sc = Scan{ID: id, ImageID: imageID, Created: fromMicros(now), Status: ScanQueued, Assurance: AssuranceNone}
		return nil
	})
	return sc, err
}

// SetScanStatus sets the status of a queued or running scan (for example
// to ScanRunning, or ScanFailed with an error message).
func (s *Store) SetScanStatus(ctx context.Context, id int64, status, errMsg string) error {
	switch status {
	case ScanQueued, ScanRunning, ScanFailed:
	default:
		return invalidf("scan %d: status %q cannot be set directly (want queued, running or failed; a scan is done when its report is stored)", id, status)
	}
	res, err := s.exec(ctx, s.db, "UPDATE scans SET status = ?, error = ? WHERE id = ? AND status IN ('queued', 'running')", status, errMsg, id)
	return affected(res, err, fmt.Sprintf("setting status of scan %d (it must exist and not be finished)", id))
}

// IngestScan stores a finished scan of the image with all its findings in
// one transaction: on any error nothing is written. The image is created
// or its last-seen time updated, and the scan becomes its latest.
func (s *Store) IngestScan(ctx context.Context, im Image, rep *report.Scan) (Scan, error) {
	var sc Scan
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.nowMicros()
		imageID, err := s.upsertImage(ctx, tx, im, now)
		if err != nil {
			return err
		}
		id, err := s.insertID(ctx, tx, "INSERT INTO scans (image_id, created, status) VALUES (?, ?, ?)", imageID, now, ScanRunning)
		if err != nil {
			return dbErr(err, "storing scan of "+im.Ref())
		}
		sc, err = s.storeReport(ctx, tx, id, imageID, now, rep)
		return err
	})
	return sc, err
}

// CompleteScan stores the report of a queued or running scan with all its
// findings in one transaction and marks the scan done.
func (s *Store) CompleteScan(ctx context.Context, id int64, rep *report.Scan) (Scan, error) {
	var sc Scan
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var imageID, created int64
		var status string
		err := tx.QueryRowContext(ctx, s.rebind("SELECT image_id, created, status FROM scans WHERE id = ?"), id).Scan(&imageID, &created, &status)
		if err != nil {
			return dbErr(err, fmt.Sprintf("scan %d", id))
		}
		if status != ScanQueued && status != ScanRunning {
			return fmt.Errorf("scan %d is already %s: %w", id, status, ErrConflict)
		}
		if _, err := s.exec(ctx, tx, "UPDATE images SET last_seen = ? WHERE id = ?", s.nowMicros(), imageID); err != nil {
			return dbErr(err, fmt.Sprintf("image %d", imageID))
		}
		sc, err = s.storeReport(ctx, tx, id, imageID, created, rep)
		return err
	})
	return sc, err
}

var (
	zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxReportSize))
)

// MaxReportSize is the largest uncompressed scan report stored or read.
const MaxReportSize = 512 << 20

// storeReport writes the report and findings of scan id and marks it done.
func (s *Store) storeReport(ctx context.Context, tx *sql.Tx, id, imageID, created int64, rep *report.Scan) (Scan, error) {
	if rep == nil || rep.Inventory == nil {
		return Scan{}, fmt.Errorf("scan %d: the report has no inventory", id)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		return Scan{}, fmt.Errorf("scan %d: encoding the report: %w", id, err)
	}
	if len(js) > MaxReportSize {
		return Scan{}, fmt.Errorf("scan %d: the report is %d bytes, more than the %d allowed", id, len(js), MaxReportSize)
	}
	sc := Scan{ID: id, ImageID: imageID, Created: fromMicros(created), Status: ScanDone, Assurance: AssuranceNone}
	for i := range rep.Vulnerabilities {
		f := &rep.Vulnerabilities[i]
		if !f.Counts() {
			continue
		}
		switch f.Severity {
		case vuln.SeverityCritical:
			sc.Summary.Critical++
		case vuln.SeverityHigh:
			sc.Summary.High++
		case vuln.SeverityMedium:
			sc.Summary.Medium++
		case vuln.SeverityLow:
			sc.Summary.Low++
		case vuln.SeverityNegligible:
			sc.Summary.Negligible++
		default:
			sc.Summary.Unknown++
		}
	}
	if v := rep.Assurance; v != nil {
		sc.AssurancePolicy = v.Policy
		switch {
		case v.Fails():
			sc.Assurance = AssuranceFail
		case !v.Pass:
			sc.Assurance = AssuranceWarn
		default:
			sc.Assurance = AssurancePass
		}
	}
	if err := s.insertFindings(ctx, tx, id, imageID, rep); err != nil {
		return Scan{}, fmt.Errorf("scan %d: storing findings: %w", id, err)
	}
	sm := sc.Summary
	_, err = s.exec(ctx, tx, `UPDATE scans SET status = ?, error = '', report = ?, critical = ?, high = ?, medium = ?, low = ?,
		negligible = ?, unknown = ?, assurance = ?, assurance_policy = ? WHERE id = ?`,
		ScanDone, zstdEncoder.EncodeAll(js, nil), sm.Critical, sm.High, sm.Medium, sm.Low, sm.Negligible, sm.Unknown,
		sc.Assurance, sc.AssurancePolicy, id)
	if err != nil {
		return Scan{}, dbErr(err, fmt.Sprintf("scan %d", id))
	}
	// The latest scan is the newest done one, whatever the order scans
	// finish in.
	_, err = s.exec(ctx, tx, `UPDATE images SET latest_scan_id = ? WHERE id = ? AND
		(latest_scan_id IS NULL OR latest_scan_id < ?)`, id, imageID, id)
	return sc, dbErr(err, fmt.Sprintf("image %d", imageID))
}

// ScanReport returns the full report stored with a done scan.
func (s *Store) ScanReport(ctx context.Context, id int64, scope *Scope) (*report.Scan, error) {
	args := s.args()
	where := "sc.id = " + args.Add(id)
	if c := scope.sql("i", args); c != "" {
		where += " AND " + c
	}
	var blob []byte
	err := s.db.QueryRowContext(ctx, "SELECT sc.report FROM scans sc JOIN images i ON i.id = sc.image_id WHERE "+where, args.Values...).Scan(&blob)
	if err != nil {
		return nil, dbErr(err, fmt.Sprintf("scan %d", id))
	}
	if blob == nil {
		return nil, fmt.Errorf("scan %d has no report (it is not done): %w", id, ErrNotFound)
	}
	js, err := zstdDecoder.DecodeAll(blob, nil)
	if err != nil {
		return nil, fmt.Errorf("scan %d: decompressing the report: %w", id, err)
	}
	var rep report.Scan
	if err := json.Unmarshal(js, &rep); err != nil {
		return nil, fmt.Errorf("scan %d: decoding the report: %w", id, err)
	}
	return &rep, nil
}

var scanSchema = &query.Schema{
	Resource: "scans",
	ID:       "sc.id",
	Fields: []query.Field{
		{Name: "id", Column: "sc.id", Type: query.Int},
		{Name: "image", Column: "sc.image_id", Type: query.Int},
		{Name: "created", Column: "sc.created", Type: query.Time},
		{Name: "status", Column: "sc.status", Type: query.Enum, Values: []string{ScanDone, ScanFailed, ScanQueued, ScanRunning}},
		{Name: "critical", Column: "sc.critical", Type: query.Int},
		{Name: "high", Column: "sc.high", Type: query.Int},
		{Name: "assurance", Column: "sc.assurance", Type: query.Enum, Values: []string{AssuranceFail, AssuranceNone, AssurancePass, AssuranceWarn}},
		{Name: "name", Column: "i.ref", Type: query.String},
	},
}

const scanCols = `sc.id, sc.image_id, sc.created, sc.status, sc.error, sc.critical, sc.high, sc.medium, sc.low, sc.negligible,
	sc.unknown, sc.assurance, sc.assurance_policy`

func scanScan(sc *Scan) []any {
	return []any{&sc.ID, &sc.ImageID, timeCol{&sc.Created}, &sc.Status, &sc.Error, &sc.Summary.Critical, &sc.Summary.High,
		&sc.Summary.Medium, &sc.Summary.Low, &sc.Summary.Negligible, &sc.Summary.Unknown, &sc.Assurance, &sc.AssurancePolicy}
}

var scanList = &listSpec[Scan]{
	schema: scanSchema, from: "scans sc JOIN images i ON i.id = sc.image_id", cols: scanCols, scan: scanScan, scoped: true,
	def: []query.SortKey{{Field: "created", Desc: true}},
}

// ListScans returns a page of scans (default order: newest first). Fields:
// id, image, created, status, critical, high, assurance, name (the image
// reference).
func (s *Store) ListScans(ctx context.Context, opts ListOptions) (Page[Scan], error) {
	return list(ctx, s, scanList, opts)
}

// CountScans counts the scans the filter and scope select.
func (s *Store) CountScans(ctx context.Context, opts ListOptions) (int64, error) {
	return count(ctx, s, scanList, opts)
}

// GetScan returns a scan, ErrNotFound when it does not exist or scope does
// not allow its image.
func (s *Store) GetScan(ctx context.Context, id int64, scope *Scope) (Scan, error) {
	args := s.args()
	where := "sc.id = " + args.Add(id)
	if c := scope.sql("i", args); c != "" {
		where += " AND " + c
	}
	row := s.db.QueryRowContext(ctx, "SELECT "+scanCols+" FROM scans sc JOIN images i ON i.id = sc.image_id WHERE "+where, args.Values...)
	return scanRow(row, scanScan, fmt.Sprintf("scan %d", id))
}

// DeleteScan deletes a scan and its findings. When it was its image's
// latest scan, the newest remaining done scan becomes the latest.
func (s *Store) DeleteScan(ctx context.Context, id int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var imageID int64
		err := tx.QueryRowContext(ctx, s.rebind("SELECT image_id FROM scans WHERE id = ?"), id).Scan(&imageID)
		if err != nil {
			return dbErr(err, fmt.Sprintf("scan %d", id))
		}
		if _, err := s.exec(ctx, tx, "DELETE FROM scans WHERE id = ?", id); err != nil {
			return dbErr(err, fmt.Sprintf("deleting scan %d", id))
		}
		_, err = s.exec(ctx, tx, `UPDATE images SET latest_scan_id = (SELECT MAX(id) FROM scans WHERE image_id = ? AND status = 'done')
			WHERE id = ?`, imageID, imageID)
		return dbErr(err, fmt.Sprintf("image %d", imageID))
	})
}

// errInjected is the failure injected by tests into IngestScan.
var errInjected = errors.New("injected failure")

// upper returns s in upper case, for identifiers compared
// case-insensitively.
func upper(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }
