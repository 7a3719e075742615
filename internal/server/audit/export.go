package audit

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// CSVHeader is the first row ExportCSV writes.
var CSVHeader = []string{
	"seq", "time", "actor_kind", "actor_id", "actor_name", "actor_ip", "action",
	"resource_type", "resource_id", "outcome", "reason", "before", "after", "prev_hash", "hash",
}

// ExportCSV streams the events with Seq >= fromSeq to w as CSV (RFC 4180
// quoting), headed by CSVHeader. Cells starting with = + - @, a tab or a
// carriage return get a leading apostrophe so spreadsheets do not run them
// as formulas; the CSV is therefore for people, and ExportJSONLines is the
// faithful export.
func ExportCSV(ctx context.Context, store Store, w io.Writer, fromSeq int64) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("exporting audit CSV: %w", err)
	}
	err := store.Range(ctx, fromSeq, func(e Event) error {
		row := []string{
			strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano),
			string(e.Actor.Kind), e.Actor.ID, e.Actor.Name, e.ActorIP, e.Action,
			e.ResourceType, e.ResourceID, string(e.Outcome), e.Reason,
			string(e.Before), string(e.After), e.PrevHash, e.Hash,
		}
		for i := range row {
			row[i] = SpreadsheetSafe(row[i])
		}
		if err := cw.Write(row); err != nil {
			return err
		}
		if e.Seq%256 == 0 {
			cw.Flush()
			return cw.Error()
		}
		return nil
	})
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if err != nil {
		return fmt.Errorf("exporting audit CSV: %w", err)
	}
	return nil
}

// SpreadsheetSafe prefixes s with an apostrophe when it starts with a
// character spreadsheets treat as a formula (= + - @) or a tab or carriage
// return.
func SpreadsheetSafe(s string) string {
	if s != "" {
		switch s[0] {
		case '=', '+', '-', '@', '\t', '\r':
			return "'" + s
		}
	}
	return s
}

// ExportJSONLines streams the events with Seq >= fromSeq to w, one JSON
// object per line, exactly as stored (an export can be verified).
func ExportJSONLines(ctx context.Context, store Store, w io.Writer, fromSeq int64) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := store.Range(ctx, fromSeq, func(e Event) error { return enc.Encode(e) }); err != nil {
		return fmt.Errorf("exporting audit JSON lines: %w", err)
	}
	return nil
}
