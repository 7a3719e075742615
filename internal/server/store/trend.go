package store

import (
	"context"
	"fmt"
	"time"
)

// TrendDay sums the scans completed on one day (UTC).
type TrendDay struct {
	Day time.Time `json:"day"`
	// Scans counts completed scans; Failing those whose assurance verdict
	// failed the image.
	Scans   int64 `json:"scans"`
	Failing int64 `json:"failing"`
	// Critical and High add up the counting findings of those scans.
	Critical int64 `json:"critical"`
	High     int64 `json:"high"`
}

const microsPerDay = int64(24 * time.Hour / time.Microsecond)

// ScanTrend returns one TrendDay for each day since since (UTC days, oldest
// first) on which a scan of an image in scope completed; days without a
// scan are left out.
func (s *Store) ScanTrend(ctx context.Context, since time.Time, scope *Scope) ([]TrendDay, error) {
	args := s.args()
	// Placeholders in the order they appear in the statement (SQLite's
	// "?" are positional).
	day := args.Add(microsPerDay)
	where := "sc.status = " + args.Add(ScanDone) + " AND sc.created >= " + args.Add(micros(since))
	if sq := scope.sql("i", args); sq != "" {
		where += " AND " + sq
	}
	rows, err := s.db.QueryContext(ctx, `SELECT sc.created / `+day+` AS d, COUNT(*),
		CAST(COALESCE(SUM(CASE WHEN sc.assurance = 'fail' THEN 1 ELSE 0 END), 0) AS BIGINT),
		CAST(COALESCE(SUM(sc.critical), 0) AS BIGINT), CAST(COALESCE(SUM(sc.high), 0) AS BIGINT)
		FROM scans sc JOIN images i ON i.id = sc.image_id WHERE `+where+` GROUP BY d ORDER BY d`, args.Values...)
	if err != nil {
		return nil, fmt.Errorf("scan trend: %w", err)
	}
	defer rows.Close()
	var out []TrendDay
	for rows.Next() {
		var d int64
		var t TrendDay
		if err := rows.Scan(&d, &t.Scans, &t.Failing, &t.Critical, &t.High); err != nil {
			return nil, fmt.Errorf("scan trend: %w", err)
		}
		t.Day = fromMicros(d * microsPerDay).UTC()
		out = append(out, t)
	}
	return out, rows.Err()
}
