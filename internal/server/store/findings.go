package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/server/query"
	"github.com/mamorisec/mamori/internal/vuln"
)

// Vulnerability is one vulnerability finding of a scan, denormalized for
// queries across images.
type Vulnerability struct {
	ID      int64 `json:"id"`
	ScanID  int64 `json:"scanID"`
	ImageID int64 `json:"imageID"`
	// Package is the affected package.
	PackageType    string `json:"packageType"`
	PackageName    string `json:"packageName"`
	PackageVersion string `json:"packageVersion"`
	PURL           string `json:"purl,omitempty"`
	PackagePath    string `json:"packagePath,omitempty"`
	// VulnID is the preferred identifier and Aliases the others.
	VulnID   string        `json:"vulnID"`
	Aliases  []string      `json:"aliases,omitempty"`
	Severity vuln.Severity `json:"severity"`
	// CVSS is the highest CVSS base score, 0 when none.
	CVSS          float64     `json:"cvss"`
	FixedVersions []string    `json:"fixedVersions,omitempty"`
	Status        vuln.Status `json:"status"`
	// Fixable is set when a fixed version exists.
	Fixable bool `json:"fixable"`
	// Suppressed is set when an ignore rule or VEX statement applies.
	Suppressed bool   `json:"suppressed"`
	Summary    string `json:"summary,omitempty"`
}

// Package is one package of a scan.
type Package struct {
	ID       int64    `json:"id"`
	ScanID   int64    `json:"scanID"`
	ImageID  int64    `json:"imageID"`
	Type     string   `json:"type"`
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	PURL     string   `json:"purl,omitempty"`
	Path     string   `json:"path,omitempty"`
	Licenses []string `json:"licenses,omitempty"`
}

// Finding is a secret, malware or misconfiguration finding of a scan.
type Finding struct {
	ID      int64 `json:"id"`
	ScanID  int64 `json:"scanID"`
	ImageID int64 `json:"imageID"`
	// Kind is inventory.KindSecret, KindMalware or KindMisconfig.
	Kind     string        `json:"kind"`
	RuleID   string        `json:"ruleID"`
	Title    string        `json:"title,omitempty"`
	Severity vuln.Severity `json:"severity"`
	Category string        `json:"category,omitempty"`
	Source   string        `json:"source,omitempty"`
	Path     string        `json:"path,omitempty"`
	Layer    int           `json:"layer"`
	Line     int           `json:"line,omitempty"`
	// Match is the redacted match.
	Match   string `json:"match,omitempty"`
	Engine  string `json:"engine,omitempty"`
	Removed bool   `json:"removed,omitempty"`
}

// License is the license of one package of a scan.
type License struct {
	ID             int64  `json:"id"`
	ScanID         int64  `json:"scanID"`
	ImageID        int64  `json:"imageID"`
	PackageType    string `json:"packageType"`
	PackageName    string `json:"packageName"`
	PackageVersion string `json:"packageVersion"`
	// Expression is the SPDX expression, "" when unknown.
	Expression string `json:"expression,omitempty"`
	// Category is the license category (permissive, strong-copyleft, ...).
	Category string `json:"category"`
}

// insertBatchParams bounds the bound parameters of one INSERT (SQLite
// allows 32766, PostgreSQL 65535).
const insertBatchParams = 30000

// insertRows inserts rows into table with multi-row INSERTs.
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, table string, cols []string, rows [][]any) error {
	per := max(1, insertBatchParams/len(cols))
	for len(rows) > 0 {
		n := min(per, len(rows))
		if s.failAfter > 0 {
			s.failAfter--
			if s.failAfter == 0 {
				return fmt.Errorf("inserting into %s: %w", table, errInjected)
			}
		}
		args := s.args()
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ", "))
		for i, r := range rows[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for j, v := range r {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString(args.Add(v))
			}
			b.WriteByte(')')
		}
		if _, err := tx.ExecContext(ctx, b.String(), args.Values...); err != nil {
			return fmt.Errorf("inserting into %s: %w", table, err)
		}
		rows = rows[n:]
	}
	return nil
}

// insertFindings writes the denormalized rows of a report.
func (s *Store) insertFindings(ctx context.Context, tx *sql.Tx, scanID, imageID int64, rep *report.Scan) error {
	var vrows, idrows [][]any
	for i := range rep.Vulnerabilities {
		f := &rep.Vulnerabilities[i]
		aliases, err := jsonCol{nonNil(f.Aliases)}.Value()
		if err != nil {
			return err
		}
		fixed, err := jsonCol{nonNil(f.FixedVersions)}.Value()
		if err != nil {
			return err
		}
		p := f.Package
		vrows = append(vrows, []any{scanID, imageID, p.Type, p.Name, p.Version, p.PURL, p.Path, f.ID, aliases,
			int64(f.Severity), f.MaxScore(), fixed, string(f.Status), len(f.FixedVersions) > 0, f.Suppressed != nil, f.Summary})
		seen := map[string]bool{}
		for _, id := range append([]string{f.ID}, f.Aliases...) {
			if id = upper(id); id != "" && !seen[id] {
				seen[id] = true
				idrows = append(idrows, []any{id, scanID})
			}
		}
	}
	err := s.insertRows(ctx, tx, "vulnerabilities", []string{"scan_id", "image_id", "pkg_type", "pkg_name", "pkg_version", "purl",
		"pkg_path", "vuln_id", "aliases", "severity", "cvss", "fixed_versions", "status", "fixable", "suppressed", "summary"}, vrows)
	if err != nil {
		return err
	}
	if err := s.insertRows(ctx, tx, "vulnerability_ids", []string{"vuln_id", "scan_id"}, idrows); err != nil {
		return err
	}
	var prows [][]any
	for i := range rep.Inventory.Packages {
		p := &rep.Inventory.Packages[i]
		lic, err := jsonCol{nonNil(p.Licenses)}.Value()
		if err != nil {
			return err
		}
		prows = append(prows, []any{scanID, imageID, p.Type, p.Name, p.Version, p.PURL, p.Path, lic})
	}
	if err := s.insertRows(ctx, tx, "packages", []string{"scan_id", "image_id", "type", "name", "version", "purl", "path", "licenses"}, prows); err != nil {
		return err
	}
	var frows [][]any
	for _, group := range [][]inventory.Finding{rep.Secrets, rep.Malware, rep.Misconfigurations} {
		for i := range group {
			f := &group[i]
			sev, err := vuln.ParseSeverity(f.Severity)
			if err != nil {
				sev = vuln.SeverityUnknown
			}
			frows = append(frows, []any{scanID, imageID, f.Kind, f.RuleID, f.Title, int64(sev), f.Category, f.Source, f.Path,
				f.Layer.Index, f.StartLine, f.Match, f.Engine, f.Removed})
		}
	}
	if err := s.insertRows(ctx, tx, "findings", []string{"scan_id", "image_id", "kind", "rule_id", "title", "severity", "category",
		"source", "path", "layer_index", "start_line", "match_text", "engine", "removed"}, frows); err != nil {
		return err
	}
	if rep.Licenses == nil {
		return nil
	}
	var lrows [][]any
	for _, l := range rep.Licenses.Packages {
		lrows = append(lrows, []any{scanID, imageID, l.Type, l.Name, l.Version, l.Expression, string(l.Category)})
	}
	return s.insertRows(ctx, tx, "licenses", []string{"scan_id", "image_id", "pkg_type", "pkg_name", "pkg_version", "expression", "category"}, lrows)
}

// nonNil returns an empty slice for nil, so that JSON columns hold [].
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// findingsFrom returns the FROM clause of a finding table aliased t: the
// image is joined as i, on the latest scan unless history is wanted.
func findingsFrom(table string, history bool) string {
	if history {
		return table + " t JOIN images i ON i.id = t.image_id"
	}
	return table + " t JOIN images i ON i.latest_scan_id = t.scan_id"
}

var vulnSchema = &query.Schema{
	Resource: "vulnerabilities",
	ID:       "t.id",
	Fields: []query.Field{
		{Name: "id", Column: "t.id", Type: query.Int},
		{Name: "scan", Column: "t.scan_id", Type: query.Int},
		{Name: "image", Column: "t.image_id", Type: query.Int},
		{Name: "name", Column: "i.ref", Type: query.String},
		{Name: "packageType", Column: "t.pkg_type", Type: query.String},
		{Name: "package", Column: "t.pkg_name", Type: query.String},
		{Name: "version", Column: "t.pkg_version", Type: query.String},
		{Name: "purl", Column: "t.purl", Type: query.String},
		{Name: "vulnID", Column: "t.vuln_id", Type: query.String},
		{Name: "severity", Column: "t.severity", Type: query.Enum, Values: severityValues, Ordinal: true},
		{Name: "cvss", Column: "t.cvss", Type: query.Float},
		{Name: "status", Column: "t.status", Type: query.Enum, Values: []string{string(vuln.StatusFixed), string(vuln.StatusNotAffected), string(vuln.StatusNotFixed), string(vuln.StatusWontFix)}},
		{Name: "fixable", Column: "t.fixable", Type: query.Bool},
		{Name: "suppressed", Column: "t.suppressed", Type: query.Bool},
	},
}

const vulnCols = `t.id, t.scan_id, t.image_id, t.pkg_type, t.pkg_name, t.pkg_version, t.purl, t.pkg_path, t.vuln_id, t.aliases,
	t.severity, t.cvss, t.fixed_versions, t.status, t.fixable, t.suppressed, t.summary`

func scanVuln(v *Vulnerability) []any {
	return []any{&v.ID, &v.ScanID, &v.ImageID, &v.PackageType, &v.PackageName, &v.PackageVersion, &v.PURL, &v.PackagePath,
		&v.VulnID, jsonCol{&v.Aliases}, &v.Severity, &v.CVSS, jsonCol{&v.FixedVersions}, &v.Status, &v.Fixable, &v.Suppressed, &v.Summary}
}

func vulnList(history bool) *listSpec[Vulnerability] {
	return &listSpec[Vulnerability]{schema: vulnSchema, from: findingsFrom("vulnerabilities", history), cols: vulnCols, scan: scanVuln,
		scoped: true, def: []query.SortKey{{Field: "severity", Desc: true}}}
}

// ListVulnerabilities returns a page of vulnerability findings of every
// image's latest scan (of every scan with opts.History). Default order:
// most severe first. Fields: id, scan, image, name (image reference),
// packageType, package, version, purl, vulnID, severity, cvss (the highest
// base score), status, fixable, suppressed.
func (s *Store) ListVulnerabilities(ctx context.Context, opts ListOptions) (Page[Vulnerability], error) {
	return list(ctx, s, vulnList(opts.History), opts)
}

// CountVulnerabilities counts the findings the filter and scope select.
func (s *Store) CountVulnerabilities(ctx context.Context, opts ListOptions) (int64, error) {
	return count(ctx, s, vulnList(opts.History), opts)
}

var packageSchema = &query.Schema{
	Resource: "packages",
	ID:       "t.id",
	Fields: []query.Field{
		{Name: "id", Column: "t.id", Type: query.Int},
		{Name: "scan", Column: "t.scan_id", Type: query.Int},
		{Name: "image", Column: "t.image_id", Type: query.Int},
		{Name: "name", Column: "i.ref", Type: query.String},
		{Name: "type", Column: "t.type", Type: query.String},
		{Name: "package", Column: "t.name", Type: query.String},
		{Name: "version", Column: "t.version", Type: query.String},
		{Name: "purl", Column: "t.purl", Type: query.String},
		{Name: "path", Column: "t.path", Type: query.String},
		{Name: "licenses", Column: "t.licenses", Type: query.String, NoSort: true},
	},
}

const packageCols = "t.id, t.scan_id, t.image_id, t.type, t.name, t.version, t.purl, t.path, t.licenses"

func scanPackage(p *Package) []any {
	return []any{&p.ID, &p.ScanID, &p.ImageID, &p.Type, &p.Name, &p.Version, &p.PURL, &p.Path, jsonCol{&p.Licenses}}
}

func packageList(history bool) *listSpec[Package] {
	return &listSpec[Package]{schema: packageSchema, from: findingsFrom("packages", history), cols: packageCols, scan: scanPackage,
		scoped: true, def: []query.SortKey{{Field: "type"}, {Field: "package"}}}
}

// ListPackages returns a page of packages of every image's latest scan (of
// every scan with opts.History). Fields: id, scan, image, name (image
// reference), type, package, version, purl, path, licenses (filter only).
func (s *Store) ListPackages(ctx context.Context, opts ListOptions) (Page[Package], error) {
	return list(ctx, s, packageList(opts.History), opts)
}

// CountPackages counts the packages the filter and scope select.
func (s *Store) CountPackages(ctx context.Context, opts ListOptions) (int64, error) {
	return count(ctx, s, packageList(opts.History), opts)
}

var findingSchema = &query.Schema{
	Resource: "findings",
	ID:       "t.id",
	Fields: []query.Field{
		{Name: "id", Column: "t.id", Type: query.Int},
		{Name: "scan", Column: "t.scan_id", Type: query.Int},
		{Name: "image", Column: "t.image_id", Type: query.Int},
		{Name: "name", Column: "i.ref", Type: query.String},
		{Name: "rule", Column: "t.rule_id", Type: query.String},
		{Name: "severity", Column: "t.severity", Type: query.Enum, Values: severityValues, Ordinal: true},
		{Name: "category", Column: "t.category", Type: query.String},
		{Name: "path", Column: "t.path", Type: query.String},
		{Name: "removed", Column: "t.removed", Type: query.Bool},
	},
}

const findingCols = `t.id, t.scan_id, t.image_id, t.kind, t.rule_id, t.title, t.severity, t.category, t.source, t.path,
	t.layer_index, t.start_line, t.match_text, t.engine, t.removed`

func scanFinding(f *Finding) []any {
	return []any{&f.ID, &f.ScanID, &f.ImageID, &f.Kind, &f.RuleID, &f.Title, &f.Severity, &f.Category, &f.Source, &f.Path,
		&f.Layer, &f.Line, &f.Match, &f.Engine, &f.Removed}
}

func findingList(kind string, history bool) *listSpec[Finding] {
	return &listSpec[Finding]{schema: findingSchema, from: findingsFrom("findings", history), cols: findingCols, scan: scanFinding,
		scoped: true, def: []query.SortKey{{Field: "severity", Desc: true}},
		where: func(args *query.Args) []string { return []string{"t.kind = " + args.Add(kind)} }}
}

// ListFindings returns a page of findings of one kind (inventory.KindSecret,
// KindMalware or KindMisconfig). Fields: id, scan, image, name (image
// reference), rule, severity, category, path, removed.
func (s *Store) ListFindings(ctx context.Context, kind string, opts ListOptions) (Page[Finding], error) {
	return list(ctx, s, findingList(kind, opts.History), opts)
}

// CountFindings counts the findings of one kind the filter and scope select.
func (s *Store) CountFindings(ctx context.Context, kind string, opts ListOptions) (int64, error) {
	return count(ctx, s, findingList(kind, opts.History), opts)
}

var licenseSchema = &query.Schema{
	Resource: "licenses",
	ID:       "t.id",
	Fields: []query.Field{
		{Name: "id", Column: "t.id", Type: query.Int},
		{Name: "scan", Column: "t.scan_id", Type: query.Int},
		{Name: "image", Column: "t.image_id", Type: query.Int},
		{Name: "name", Column: "i.ref", Type: query.String},
		{Name: "packageType", Column: "t.pkg_type", Type: query.String},
		{Name: "package", Column: "t.pkg_name", Type: query.String},
		{Name: "expression", Column: "t.expression", Type: query.String},
		{Name: "category", Column: "t.category", Type: query.String},
	},
}

const licenseCols = "t.id, t.scan_id, t.image_id, t.pkg_type, t.pkg_name, t.pkg_version, t.expression, t.category"

func scanLicense(l *License) []any {
	return []any{&l.ID, &l.ScanID, &l.ImageID, &l.PackageType, &l.PackageName, &l.PackageVersion, &l.Expression, &l.Category}
}

func licenseList(history bool) *listSpec[License] {
	return &listSpec[License]{schema: licenseSchema, from: findingsFrom("licenses", history), cols: licenseCols, scan: scanLicense,
		scoped: true, def: []query.SortKey{{Field: "expression"}}}
}

// ListLicenses returns a page of package licenses. Fields: id, scan,
// image, name (image reference), packageType, package, expression,
// category.
func (s *Store) ListLicenses(ctx context.Context, opts ListOptions) (Page[License], error) {
	return list(ctx, s, licenseList(opts.History), opts)
}

// CountLicenses counts the license rows the filter and scope select.
func (s *Store) CountLicenses(ctx context.Context, opts ListOptions) (int64, error) {
	return count(ctx, s, licenseList(opts.History), opts)
}
