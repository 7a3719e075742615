package audit

import (
	"bytes"
	"context"
	"fmt"
	"sync"
)

// MemStore is an in-memory Store for tests and for a server running
// without a database. It is safe for concurrent use.
type MemStore struct {
	mu     sync.Mutex
	events []Event
}

// Last returns the last appended event.
func (m *MemStore) Last(ctx context.Context) (Event, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.events) == 0 {
		return Event{}, false, nil
	}
	return m.events[len(m.events)-1], true, nil
}

// Append stores a copy of e; it fails with ErrConflict when e.Seq is not
// greater than the last event's.
func (m *MemStore) Append(ctx context.Context, e Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.events); n > 0 && e.Seq <= m.events[n-1].Seq {
		return fmt.Errorf("seq %d: %w", e.Seq, ErrConflict)
	}
	e.Before, e.After = bytes.Clone(e.Before), bytes.Clone(e.After)
	m.events = append(m.events, e)
	return nil
}

// Range calls fn for the events with Seq >= fromSeq in stored order, on a
// snapshot taken when Range starts.
func (m *MemStore) Range(ctx context.Context, fromSeq int64, fn func(Event) error) error {
	m.mu.Lock()
	snapshot := append([]Event(nil), m.events...)
	m.mu.Unlock()
	for _, e := range snapshot {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Seq < fromSeq {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}
