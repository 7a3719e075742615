package query

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// MaxCursorLen bounds the size of a cursor accepted from a client.
const MaxCursorLen = 2048

// cursor is the JSON inside an opaque cursor.
type cursor struct {
	// Order identifies the sort order the cursor belongs to.
	Order string `json:"o"`
	// Values are the last row's values of the ordered columns.
	Values []any `json:"v"`
}

// signature identifies the order, so that a cursor of another order is
// refused.
func (o *Order) signature() string {
	var b strings.Builder
	for i, f := range o.fields {
		if o.desc[i] {
			b.WriteByte('-')
		}
		b.WriteString(f.Name)
		b.WriteByte(',')
	}
	return b.String()
}

// EncodeCursor returns the opaque cursor for the row whose ordered column
// values (as scanned from the database) are vals.
func (o *Order) EncodeCursor(vals []any) (string, error) {
	norm := make([]any, len(vals))
	for i, v := range vals {
		switch x := v.(type) {
		case []byte:
			norm[i] = string(x)
		default:
			norm[i] = x
		}
	}
	b, err := json.Marshal(cursor{Order: o.signature(), Values: norm})
	if err != nil {
		return "", fmt.Errorf("encoding cursor: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// DecodeCursor checks that c belongs to this order and returns its values
// typed for binding.
func (o *Order) DecodeCursor(c string) ([]any, error) {
	bad := &Error{Param: "cursor", Msg: "invalid cursor: request the first page again"}
	if len(c) > MaxCursorLen {
		return nil, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, bad
	}
	var cur cursor
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&cur); err != nil {
		return nil, bad
	}
	if cur.Order != o.signature() {
		return nil, &Error{Param: "cursor", Msg: "the cursor belongs to another sort order: request the first page again"}
	}
	kinds := o.kinds()
	if len(cur.Values) != len(kinds) {
		return nil, bad
	}
	out := make([]any, len(kinds))
	for i, v := range cur.Values {
		switch x := v.(type) {
		case json.Number:
			if kinds[i] == 'f' {
				f, err := x.Float64()
				if err != nil {
					return nil, bad
				}
				out[i] = f
				break
			}
			n, err := x.Int64()
			if err != nil || kinds[i] == 's' {
				return nil, bad
			}
			if kinds[i] == 'b' {
				out[i] = n != 0
			} else {
				out[i] = n
			}
		case bool:
			if kinds[i] != 'b' {
				return nil, bad
			}
			out[i] = x
		case string:
			if kinds[i] != 's' {
				return nil, bad
			}
			out[i] = x
		default:
			return nil, bad
		}
	}
	return out, nil
}
