// Package spool is the enforcer's bounded on-disk event queue: events wait
// there until a gateway acknowledges them, across restarts and while no
// gateway can be reached.
//
// Events are appended to segment files in a directory; each gets the next
// sequence number, which becomes its fleet.Event.ID, so the server stores a
// batch delivered twice (the ack was lost) only once. The sequence never
// goes back, across restarts too. Delivery is in order: Peek returns the
// oldest unacknowledged events and Ack(id) acknowledges every event up to
// id; segments whose events are all acknowledged are deleted.
//
// Bounds: the segments never exceed Options.MaxBytes on disk. When an event
// would exceed it, the Policy decides: DropOldest (the default) deletes the
// oldest segment and counts its unacknowledged events in Stats.Dropped;
// RefuseNew refuses the new event with ErrFull and counts it in
// Stats.Refused. Nothing is dropped silently.
//
// Crash safety: a record is written with one write call, so a crashed
// process loses nothing the kernel accepted; Options.Sync also makes each
// event durable against power loss (fsync per event), else Sync does so on
// demand. A torn or damaged record (power loss, disk error) is detected by
// its length and CRC-32C when the spool is opened: the segment is cut
// there, the bytes cut are counted in Stats.DiscardedBytes, and the spool
// opens. Reading never panics on any content.
package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/mamorisec/mamori/internal/atomicfile"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/inventory"
)

// Policy decides what happens to an event that would exceed the size cap.
type Policy int

const (
	// DropOldest deletes the oldest segment to make room, counting its
	// undelivered events as dropped: recent events matter most.
	DropOldest Policy = iota
	// RefuseNew keeps what is spooled and refuses the new event.
	RefuseNew
)

// Defaults of Options.
const (
	DefaultMaxBytes      = 256 << 20
	DefaultSegmentBytes  = 4 << 20
	DefaultMaxEventBytes = 256 << 10
)

// ErrFull is returned by Append under RefuseNew when the spool is full.
var ErrFull = errors.New("spool full")

// Options configures a spool.
type Options struct {
	// MaxBytes caps the segments' size on disk; DefaultMaxBytes when zero.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment starts;
	// DefaultSegmentBytes when zero, at most MaxBytes/4.
	SegmentBytes int64
	// MaxEventBytes bounds one encoded event; a larger one is refused.
	// DefaultMaxEventBytes when zero.
	MaxEventBytes int
	// Policy applies when the cap is reached.
	Policy Policy
	// Sync makes Append fsync each event.
	Sync bool
}

// Stats describes a spool.
type Stats struct {
	// Pending counts the events not yet acknowledged.
	Pending int
	// Bytes is the segments' size on disk.
	Bytes int64
	// Dropped counts events deleted unacknowledged by DropOldest, Refused
	// the events refused by RefuseNew, since Open.
	Dropped, Refused int
	// DiscardedBytes counts the bytes of torn or damaged records cut off
	// when the spool was opened.
	DiscardedBytes int64
	// NextID is the sequence the next event gets.
	NextID uint64
}

type segment struct {
	path        string
	first, last uint64 // sequences; last < first when empty
	size        int64
}

// Spool is an open spool directory. Its methods are safe for concurrent
// use; one process at a time may open a directory (Open takes an exclusive
// lock on it).
type Spool struct {
	dir  string
	opts Options

	mu     sync.Mutex
	segs   []*segment
	active *os.File // appends go to the last segment through it; nil when none
	next   uint64
	acked  uint64
	// cursor is a read position: the record at offset curOff of the
	// segment starting at curSeg has sequence curSeq.
	curSeg, curSeq uint64
	curOff         int64
	stats          Stats
	notify         chan struct{}
	closed         bool
	lock           *os.File
}

const (
	ackFile  = "acked"
	lockFile = "lock"
)

// Open opens or creates the spool in dir, recovering what a crash left.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	opts.SegmentBytes = min(opts.SegmentBytes, opts.MaxBytes/4)
	if opts.MaxEventBytes <= 0 {
		opts.MaxEventBytes = DefaultMaxEventBytes
	}
	if int64(opts.MaxEventBytes)+headerSize > opts.SegmentBytes {
		return nil, fmt.Errorf("spool %s: a segment of %d bytes cannot hold an event of %d bytes", dir, opts.SegmentBytes, opts.MaxEventBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("spool %s: in use by another process: %w", dir, err)
	}
	s := &Spool{dir: dir, opts: opts, notify: make(chan struct{}, 1), lock: lock}
	ok := false
	defer func() {
		if !ok {
			s.closeFiles()
		}
	}()
	if err := s.readAck(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	for _, e := range ents {
		first, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		seg, err := s.recover(filepath.Join(dir, e.Name()), first)
		if err != nil {
			return nil, err
		}
		if seg != nil {
			s.segs = append(s.segs, seg)
		}
	}
	slices.SortFunc(s.segs, func(a, b *segment) int { return compareUint(a.first, b.first) })
	s.next = s.acked + 1
	for _, seg := range s.segs {
		s.next = max(s.next, seg.last+1)
	}
	if err := s.gc(); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func segmentName(first uint64) string { return fmt.Sprintf("%020d.seg", first) }

func parseSegmentName(name string) (uint64, bool) {
	num, ok := strings.CutSuffix(name, ".seg")
	if !ok || len(num) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	return n, err == nil && n > 0
}

func (s *Spool) readAck() error {
	path := filepath.Join(s.dir, ackFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	b, err := inventory.ReadAllLimited(f, 64)
	if err != nil {
		return fmt.Errorf("spool: reading %s: %w", path, err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		// A damaged ack file only means events are delivered again, and
		// the server keeps one copy of each.
		n = 0
	}
	s.acked = n
	return nil
}

func (s *Spool) writeAck() error {
	return atomicfile.Write(filepath.Join(s.dir, ackFile), 0o600, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%d\n", s.acked)
		return err
	})
}

// recover scans a segment, cuts it after its last valid record and returns
// it, or removes it and returns nil when it holds none.
func (s *Spool) recover(path string, first uint64) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	seg := &segment{path: path, first: first, last: first - 1}
	r := newSegmentReader(f, 0, s.opts.MaxEventBytes)
	for {
		rec, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil || rec.seq != seg.last+1 {
			break
		}
		seg.last = rec.seq
	}
	seg.size = r.off
	if cut := st.Size() - r.off; cut > 0 {
		s.stats.DiscardedBytes += cut
		if err := f.Truncate(r.off); err != nil {
			return nil, fmt.Errorf("spool: cutting damaged tail of %s: %w", path, err)
		}
	}
	if seg.last < seg.first {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		return nil, nil
	}
	return seg, nil
}

// Append spools ev, setting its ID to its sequence, and returns it.
func (s *Spool) Append(ev fleet.Event) (fleet.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fleet.Event{}, errors.New("spool: closed")
	}
	seq := s.next
	ev.ID = strconv.FormatUint(seq, 10)
	rec, err := encodeRecord(seq, ev)
	if err != nil {
		return fleet.Event{}, fmt.Errorf("spool: encoding event: %w", err)
	}
	if len(rec)-headerSize > s.opts.MaxEventBytes {
		s.stats.Refused++
		return fleet.Event{}, fmt.Errorf("spool: event of %d bytes over the limit of %d", len(rec)-headerSize, s.opts.MaxEventBytes)
	}
	for s.bytes()+int64(len(rec)) > s.opts.MaxBytes {
		if s.opts.Policy == RefuseNew {
			s.stats.Refused++
			return fleet.Event{}, fmt.Errorf("spool %s: %w (%d bytes, %d events pending)", s.dir, ErrFull, s.bytes(), s.pending())
		}
		if err := s.dropOldest(); err != nil {
			return fleet.Event{}, err
		}
	}
	if s.active == nil || s.segs[len(s.segs)-1].size+int64(len(rec)) > s.opts.SegmentBytes {
		if err := s.rotate(seq); err != nil {
			return fleet.Event{}, err
		}
	}
	seg := s.segs[len(s.segs)-1]
	if _, err := s.active.Write(rec); err != nil {
		// Cut whatever part was written so the segment stays valid.
		_ = s.active.Truncate(seg.size)
		return fleet.Event{}, fmt.Errorf("spool: writing %s: %w", seg.path, err)
	}
	if s.opts.Sync {
		if err := s.active.Sync(); err != nil {
			return fleet.Event{}, fmt.Errorf("spool: syncing %s: %w", seg.path, err)
		}
	}
	seg.size += int64(len(rec))
	seg.last = seq
	s.next++
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return ev, nil
}

// rotate closes the active segment and starts one whose first event is seq.
func (s *Spool) rotate(seq uint64) error {
	if s.active != nil {
		if err := s.active.Close(); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.active = nil
	}
	path := filepath.Join(s.dir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.active = f
	s.segs = append(s.segs, &segment{path: path, first: seq, last: seq - 1})
	return nil
}

// dropOldest deletes the oldest segment, counting its pending events.
func (s *Spool) dropOldest() error {
	if len(s.segs) == 0 {
		return fmt.Errorf("spool %s: cap of %d bytes too small", s.dir, s.opts.MaxBytes)
	}
	seg := s.segs[0]
	if seg.last > s.acked {
		s.stats.Dropped += int(seg.last - max(seg.first-1, s.acked))
		s.acked = seg.last
		if err := s.writeAck(); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	return s.removeFirst()
}

func (s *Spool) removeFirst() error {
	if len(s.segs) == 1 && s.active != nil {
		if err := s.active.Close(); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.active = nil
	}
	if err := os.Remove(s.segs[0].path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	s.segs = s.segs[1:]
	return nil
}

// gc removes the segments whose events are all acknowledged.
func (s *Spool) gc() error {
	for len(s.segs) > 0 && s.segs[0].last <= s.acked {
		if err := s.removeFirst(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spool) bytes() int64 {
	var n int64
	for _, seg := range s.segs {
		n += seg.size
	}
	return n
}

func (s *Spool) pending() int {
	n := 0
	for _, seg := range s.segs {
		if seg.last > s.acked && seg.last >= seg.first {
			n += int(seg.last - max(seg.first-1, s.acked))
		}
	}
	return n
}

// Peek returns up to max of the oldest unacknowledged events, oldest first,
// without removing them.
func (s *Spool) Peek(max int) ([]fleet.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("spool: closed")
	}
	var out []fleet.Event
	for _, seg := range s.segs {
		if len(out) >= max {
			break
		}
		if seg.last <= s.acked || seg.last < seg.first {
			continue
		}
		evs, err := s.readFrom(seg, max-len(out))
		if err != nil {
			return out, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

// readFrom reads up to n events past the acknowledged one from seg,
// starting at the cursor when it is in seg and not past the ack.
func (s *Spool) readFrom(seg *segment, n int) ([]fleet.Event, error) {
	f, err := os.Open(seg.path)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	var off int64
	if s.curSeg == seg.first && s.curSeq <= s.acked+1 {
		off = s.curOff
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	// Read only what Append has completed.
	r := newSegmentReader(io.LimitReader(f, seg.size-off), off, s.opts.MaxEventBytes)
	var out []fleet.Event
	for len(out) < n {
		start := r.off
		rec, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, fmt.Errorf("spool: reading %s: %w", seg.path, err)
		}
		if rec.seq <= s.acked {
			continue
		}
		if len(out) == 0 {
			s.curSeg, s.curSeq, s.curOff = seg.first, rec.seq, start
		}
		out = append(out, rec.event)
	}
	return out, nil
}

// Ack acknowledges every event up to and including id (a fleet.Event.ID
// given by Append) and deletes the segments no longer needed.
func (s *Spool) Ack(id string) error {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return fmt.Errorf("spool: acknowledging %q: not an event id", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("spool: closed")
	}
	if seq >= s.next {
		return fmt.Errorf("spool: acknowledging %d: no such event yet (next is %d)", seq, s.next)
	}
	if seq <= s.acked {
		return nil
	}
	s.acked = seq
	if err := s.writeAck(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return s.gc()
}

// Notify returns a channel that receives after events are appended.
func (s *Spool) Notify() <-chan struct{} { return s.notify }

// Stats returns the spool's counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Pending = s.pending()
	st.Bytes = s.bytes()
	st.NextID = s.next
	return st
}

// Sync makes the appended events durable against power loss.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil {
		return nil
	}
	if err := s.active.Sync(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// Close syncs and closes the spool.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.closeFiles(); err != nil {
		return fmt.Errorf("spool: closing %s: %w", s.dir, err)
	}
	return nil
}

// closeFiles syncs and closes the active segment and releases the lock.
func (s *Spool) closeFiles() error {
	var err error
	if s.active != nil {
		err = s.active.Sync()
		if cerr := s.active.Close(); err == nil {
			err = cerr
		}
		s.active = nil
	}
	s.lock.Close() // closing releases the flock
	return err
}
