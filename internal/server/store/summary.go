package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/mamorisec/mamori/internal/vuln"
)

// SeverityCount counts the vulnerability findings of one severity, and
// those of them that have a fix.
type SeverityCount struct {
	All     int64 `json:"all"`
	Fixable int64 `json:"fixable"`
}

// VulnerabilitySummary counts, in one query, the findings of every image's
// latest scan that the filter and scope select, by severity name.
func (s *Store) VulnerabilitySummary(ctx context.Context, opts ListOptions) (map[string]SeverityCount, error) {
	spec := vulnList(false)
	args := s.args()
	conds, err := spec.conditions(opts, args)
	if err != nil {
		return nil, asInvalid(err)
	}
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT t.severity, COUNT(*), CAST(COALESCE(SUM(CASE WHEN t.fixable THEN 1 ELSE 0 END), 0) AS BIGINT)
		FROM %s WHERE %s GROUP BY t.severity`, spec.from, strings.Join(conds, " AND ")), args.Values...)
	if err != nil {
		return nil, fmt.Errorf("vulnerability summary: %w", err)
	}
	defer rows.Close()
	out := map[string]SeverityCount{}
	for rows.Next() {
		var sev int64
		var c SeverityCount
		if err := rows.Scan(&sev, &c.All, &c.Fixable); err != nil {
			return nil, fmt.Errorf("vulnerability summary: %w", err)
		}
		name := vuln.Severity(sev).String()
		prev := out[name]
		out[name] = SeverityCount{All: prev.All + c.All, Fixable: prev.Fixable + c.Fixable}
	}
	return out, rows.Err()
}

// AssuranceSummary counts, in one query, the images the filter and scope
// select by their latest assurance status (AssuranceNone before a scan).
func (s *Store) AssuranceSummary(ctx context.Context, opts ListOptions) (map[string]int64, error) {
	args := s.args()
	conds, err := imageList.conditions(opts, args)
	if err != nil {
		return nil, asInvalid(err)
	}
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT COALESCE(ls.assurance, 'none'), COUNT(*) FROM %s WHERE %s
		GROUP BY COALESCE(ls.assurance, 'none')`, imageFrom, strings.Join(conds, " AND ")), args.Values...)
	if err != nil {
		return nil, fmt.Errorf("assurance summary: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("assurance summary: %w", err)
		}
		out[st] += n
	}
	return out, rows.Err()
}
