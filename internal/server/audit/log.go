package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Store persists the chain. Implementations must not offer any way to
// update or delete events.
type Store interface {
	// Last returns the event with the highest Seq, and false when the
	// store is empty.
	Last(ctx context.Context) (Event, bool, error)
	// Append stores e with every field byte-exact (Before and After as
	// text or bytes, not re-encoded JSON such as PostgreSQL jsonb; Time to
	// the microsecond). It returns an error wrapping ErrConflict when an
	// event with e.Seq exists (a unique constraint on Seq), so concurrent
	// writers from several server processes cannot fork the chain.
	Append(ctx context.Context, e Event) error
	// Range calls fn for every event with Seq >= fromSeq in increasing
	// Seq order, stopping at the first error fn returns.
	Range(ctx context.Context, fromSeq int64, fn func(Event) error) error
}

// ErrConflict is wrapped by Store.Append when the sequence number is
// taken: another writer appended first.
var ErrConflict = errors.New("audit event sequence number already used")

// Size limits of event fields. Longer attacker-controllable strings are
// truncated (the event is still recorded); Before and After over the limit
// are rejected.
const (
	MaxJSONSize   = 1 << 20
	maxReasonSize = 4096
	maxFieldSize  = 512
)

// MinKeySize is the minimum HMAC key length in bytes.
const MinKeySize = 32

// Option configures a Log.
type Option func(*Log)

// WithKey makes the Log chain events with HMAC-SHA-256 under key, which
// must be at least MinKeySize bytes (see LoadOrCreateKey).
func WithKey(key []byte) Option {
	return func(l *Log) { l.key = bytes.Clone(key) }
}

// WithClock sets the clock used for events without a Time (for tests).
func WithClock(now func() time.Time) Option {
	return func(l *Log) { l.now = now }
}

// Log appends events to a Store as a hash chain.
type Log struct {
	mu    sync.Mutex
	store Store
	key   []byte
	now   func() time.Time
}

// NewLog returns a Log writing to store.
func NewLog(store Store, opts ...Option) (*Log, error) {
	l := &Log{store: store, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	if l.key != nil && len(l.key) < MinKeySize {
		return nil, fmt.Errorf("audit HMAC key is %d bytes, want at least %d", len(l.key), MinKeySize)
	}
	return l, nil
}

// maxAttempts bounds retries after ErrConflict.
const maxAttempts = 8

// Append validates and normalizes e, links it to the last stored event and
// stores it. It returns the stored event with Seq, Time, PrevHash and Hash
// filled. Appends are serialized within the process; across processes
// the store's unique Seq makes a concurrent append fail with ErrConflict,
// and Append retries on the new last event.
func (l *Log) Append(ctx context.Context, e Event) (Event, error) {
	e, err := normalize(e, l.now)
	if err != nil {
		return Event{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for range maxAttempts {
		last, ok, err := l.store.Last(ctx)
		if err != nil {
			return Event{}, fmt.Errorf("audit append %s: reading the last event: %w", e.Action, err)
		}
		e.Seq, e.PrevHash = 1, ""
		if ok {
			e.Seq, e.PrevHash = last.Seq+1, last.Hash
		}
		e.Hash = ComputeHash(e, l.key)
		err = l.store.Append(ctx, e)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return Event{}, fmt.Errorf("audit append %s (seq %d): %w", e.Action, e.Seq, err)
		}
		return e, nil
	}
	return Event{}, fmt.Errorf("audit append %s: %w %d times in a row", e.Action, ErrConflict, maxAttempts)
}

var actionRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// normalize checks the fields a caller controls in code (action, actor
// kind, outcome, JSON documents) and cleans the ones an attacker may
// control (names, IP, reason), so that hostile input is recorded rather
// than refused.
func normalize(e Event, now func() time.Time) (Event, error) {
	if len(e.Action) > 64 || !actionRE.MatchString(e.Action) {
		return Event{}, fmt.Errorf("audit event action %.80q: want a lower-case dotted name such as user.create", e.Action)
	}
	switch e.Actor.Kind {
	case ActorUser, ActorToken, ActorSystem:
	default:
		return Event{}, fmt.Errorf("audit event %s: unknown actor kind %q (want user, token or system)", e.Action, e.Actor.Kind)
	}
	switch e.Outcome {
	case Success, Failure, Denied:
	default:
		return Event{}, fmt.Errorf("audit event %s: unknown outcome %q (want success, failure or denied)", e.Action, e.Outcome)
	}
	if e.Time.IsZero() {
		e.Time = now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	if y := e.Time.Year(); y < 1970 || y > 9999 {
		return Event{}, fmt.Errorf("audit event %s: time %s is out of range", e.Action, e.Time)
	}
	for _, f := range []*string{&e.Actor.ID, &e.Actor.Name, &e.ActorIP, &e.ResourceType, &e.ResourceID} {
		*f = clean(*f, maxFieldSize)
	}
	e.Reason = clean(e.Reason, maxReasonSize)
	if e.Actor.ID == "" {
		return Event{}, fmt.Errorf("audit event %s: actor ID is empty", e.Action)
	}
	for _, doc := range []struct {
		name string
		raw  *json.RawMessage
	}{{"before", &e.Before}, {"after", &e.After}} {
		c, err := CanonicalJSON(*doc.raw)
		if err != nil {
			return Event{}, fmt.Errorf("audit event %s: %s document: %w", e.Action, doc.name, err)
		}
		*doc.raw = c
	}
	e.Seq, e.PrevHash, e.Hash = 0, "", ""
	return e, nil
}

// clean replaces invalid UTF-8 and truncates s to at most limit bytes on a
// rune boundary, marking a truncation with "…".
func clean(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= limit {
		return s
	}
	cut := limit - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// CanonicalJSON returns doc compact with object keys sorted and numbers
// kept as written; empty input gives nil. It rejects invalid JSON and
// documents over MaxJSONSize.
func CanonicalJSON(doc []byte) (json.RawMessage, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, nil
	}
	if len(doc) > MaxJSONSize {
		return nil, fmt.Errorf("%d bytes, larger than the limit of %d", len(doc), MaxJSONSize)
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: trailing data")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// CheckKey verifies that the last stored event's hash matches its fields
// under the Log's key (or plain SHA-256 without one). Call it at startup:
// it catches a lost or replaced HMAC key file, or a key newly enabled on an
// existing chain, before new events are chained under the wrong key and
// the trail becomes unverifiable from that point.
func (l *Log) CheckKey(ctx context.Context) error {
	last, ok, err := l.store.Last(ctx)
	if err != nil {
		return fmt.Errorf("checking the audit key: reading the last event: %w", err)
	}
	if ok && ComputeHash(last, l.key) != last.Hash {
		mode := "without an HMAC key"
		if l.key != nil {
			mode = "with the configured HMAC key"
		}
		return fmt.Errorf("the last audit event (seq %d) does not verify %s: restore the key file the trail was written with, or run \"mamori audit verify\" to find tampering", last.Seq, mode)
	}
	return nil
}
