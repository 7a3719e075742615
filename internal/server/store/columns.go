package store

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"
)

// timeCol scans a stored microsecond time into a time.Time.
type timeCol struct{ t *time.Time }

// Scan implements sql.Scanner.
func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = fromMicros(v)
	default:
		return fmt.Errorf("time column holds %T", src)
	}
	return nil
}

// jsonCol scans JSON text into v and marshals v for writing.
type jsonCol struct{ v any }

// Scan implements sql.Scanner.
func (c jsonCol) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("JSON column holds %T", src)
	}
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, c.v)
}

// Value implements driver.Valuer.
func (c jsonCol) Value() (driver.Value, error) {
	b, err := json.Marshal(c.v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// rawJSON returns a JSON document as text, "" for none.
func rawJSON(m json.RawMessage) string { return string(m) }
