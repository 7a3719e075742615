package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
)

func ev(i int) fleet.Event {
	return fleet.Event{Time: time.Unix(int64(i), 0).UTC(), Status: fleet.StatusDetect, Message: fmt.Sprintf("event %d", i), Count: 1}
}

func mustOpen(t *testing.T, dir string, opts Options) *Spool {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendN(t *testing.T, s *Spool, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := s.Append(ev(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// drain peeks and acks everything, returning the messages in order.
func drain(t *testing.T, s *Spool, batch int) []string {
	t.Helper()
	var got []string
	for {
		evs, err := s.Peek(batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return got
		}
		for _, e := range evs {
			got = append(got, e.Message)
		}
		if err := s.Ack(evs[len(evs)-1].ID); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAppendPeekAckAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxBytes: 1 << 20, SegmentBytes: 4 << 10, MaxEventBytes: 1 << 10}
	s := mustOpen(t, dir, opts)
	appendN(t, s, 0, 100)
	evs, err := s.Peek(30)
	if err != nil || len(evs) != 30 {
		t.Fatalf("Peek = %d events, %v", len(evs), err)
	}
	for i, e := range evs {
		if e.ID != strconv.Itoa(i+1) {
			t.Fatalf("event %d has id %q", i, e.ID)
		}
	}
	if err := s.Ack(evs[29].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, dir, opts)
	if st := s.Stats(); st.Pending != 70 || st.NextID != 101 {
		t.Fatalf("after restart: %+v, want 70 pending, next id 101", st)
	}
	appendN(t, s, 100, 10)
	got := drain(t, s, 7)
	if len(got) != 80 || got[0] != "event 30" || got[79] != "event 109" {
		t.Fatalf("drained %d events: first %q last %q", len(got), got[0], got[len(got)-1])
	}
	// Every segment is gone once all is acknowledged; ids keep growing.
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 0 {
		t.Errorf("segments left after acknowledging all: %v", segs)
	}
	s.Close()
	s = mustOpen(t, dir, opts)
	e, err := s.Append(ev(0))
	if err != nil || e.ID != "111" {
		t.Fatalf("after all acknowledged and restart, id = %q, %v; want 111", e.ID, err)
	}
}

func TestAckErrors(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	appendN(t, s, 0, 3)
	for _, id := range []string{"x", "4", "-1"} {
		if err := s.Ack(id); err == nil {
			t.Errorf("Ack(%q) succeeded", id)
		}
	}
	if err := s.Ack("2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack("1"); err != nil { // an old ack is harmless
		t.Fatal(err)
	}
	if st := s.Stats(); st.Pending != 1 {
		t.Errorf("pending = %d, want 1", st.Pending)
	}
}

func TestCapPolicies(t *testing.T) {
	opts := Options{MaxBytes: 16 << 10, SegmentBytes: 4 << 10, MaxEventBytes: 1 << 10}
	t.Run("drop oldest", func(t *testing.T) {
		s := mustOpen(t, t.TempDir(), opts)
		appendN(t, s, 0, 1000)
		st := s.Stats()
		if st.Bytes > opts.MaxBytes {
			t.Errorf("spool holds %d bytes over the cap %d", st.Bytes, opts.MaxBytes)
		}
		if st.Dropped == 0 || st.Dropped+st.Pending != 1000 {
			t.Errorf("dropped %d + pending %d != 1000 appended", st.Dropped, st.Pending)
		}
		got := drain(t, s, 50)
		if got[len(got)-1] != "event 999" {
			t.Errorf("newest event lost: last is %q", got[len(got)-1])
		}
	})
	t.Run("refuse new", func(t *testing.T) {
		opts := opts
		opts.Policy = RefuseNew
		s := mustOpen(t, t.TempDir(), opts)
		refused := 0
		for i := range 1000 {
			if _, err := s.Append(ev(i)); errors.Is(err, ErrFull) {
				refused++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		st := s.Stats()
		if st.Refused != refused || refused == 0 || st.Pending+refused != 1000 || st.Dropped != 0 {
			t.Errorf("stats %+v, refused %d", st, refused)
		}
		got := drain(t, s, 50)
		if got[0] != "event 0" {
			t.Errorf("oldest event lost: first is %q", got[0])
		}
	})
	t.Run("event too large", func(t *testing.T) {
		s := mustOpen(t, t.TempDir(), opts)
		big := ev(0)
		big.Message = string(bytes.Repeat([]byte("x"), 2<<10))
		if _, err := s.Append(big); err == nil {
			t.Error("oversized event accepted")
		}
	})
}

func TestTornWrites(t *testing.T) {
	opts := Options{MaxBytes: 1 << 20, SegmentBytes: 64 << 10, MaxEventBytes: 1 << 10}
	damage := []struct {
		name string
		do   func(path string, size int64) error
		want int // events surviving of 10
	}{
		{"cut last record", func(p string, size int64) error { return os.Truncate(p, size-5) }, 9},
		{"cut inside header", func(p string, size int64) error { return os.Truncate(p, size-int64(recordLen(t))+3) }, 9},
		{"garbage appended", func(p string, _ int64) error { return appendFile(p, []byte("\x00\x00\x01\x00garbage")) }, 10},
		{"bit flip in 5th record", func(p string, _ int64) error { return flip(p, 4*int64(recordLen(t))+20) }, 4},
		{"huge length", func(p string, _ int64) error { return appendFile(p, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}) }, 10},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			appendN(t, s, 0, 10)
			s.Close()
			segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
			if len(segs) != 1 {
				t.Fatalf("segments: %v", segs)
			}
			st, _ := os.Stat(segs[0])
			if err := d.do(segs[0], st.Size()); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, dir, opts)
			if got := s.Stats(); got.Pending != d.want {
				t.Errorf("pending = %d, want %d (stats %+v)", got.Pending, d.want, got)
			}
			if d.want < 10 && s.Stats().DiscardedBytes == 0 {
				t.Error("damage not counted")
			}
			// The spool goes on: new events follow the survivors.
			e, err := s.Append(ev(99))
			if err != nil {
				t.Fatal(err)
			}
			if e.ID != strconv.Itoa(d.want+1) {
				t.Errorf("next id %s, want %d", e.ID, d.want+1)
			}
			if got := drain(t, s, 100); len(got) != d.want+1 {
				t.Errorf("drained %d events, want %d", len(got), d.want+1)
			}
		})
	}
}

func recordLen(t *testing.T) int {
	rec, err := encodeRecord(1, func() fleet.Event { e := ev(0); e.ID = "1"; return e }())
	if err != nil {
		t.Fatal(err)
	}
	return len(rec)
}

func appendFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(b)
	return err
}

func flip(path string, off int64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b[off] ^= 0x40
	return os.WriteFile(path, b, 0o600)
}

// FuzzSegmentReader decodes arbitrary segment content: it must never panic,
// never report a record past the data, and decoding the valid prefix again
// gives the same records cleanly.
func FuzzSegmentReader(f *testing.F) {
	var seed []byte
	for i := 1; i <= 3; i++ {
		e := ev(i)
		e.ID = strconv.Itoa(i)
		rec, err := encodeRecord(uint64(i), e)
		if err != nil {
			f.Fatal(err)
		}
		seed = append(seed, rec...)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add([]byte{0, 0, 0, 5, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newSegmentReader(bytes.NewReader(data), 0, 1<<16)
		var n int
		for {
			rec, err := r.next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, errTorn) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if rec.end > int64(len(data)) {
				t.Fatalf("record ends at %d past %d bytes", rec.end, len(data))
			}
			n++
		}
		r2 := newSegmentReader(bytes.NewReader(data[:r.off]), 0, 1<<16)
		for range n {
			if _, err := r2.next(); err != nil {
				t.Fatalf("valid prefix does not decode again: %v", err)
			}
		}
		if _, err := r2.next(); err != io.EOF {
			t.Fatalf("valid prefix has more: %v", err)
		}
	})
}

func TestOpenLocks(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("a second Open of the same directory succeeded")
	}
	s.Close()
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}
