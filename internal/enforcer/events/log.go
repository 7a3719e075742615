package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
)

// MaxLineSize bounds one log line; longer records are refused by Append
// and skipped by the reader.
const MaxLineSize = 1 << 20

// LogOptions tune a Log. Zero fields take the defaults.
type LogOptions struct {
	// MaxSize is the size in bytes past which the file is rotated.
	// Default 64 MiB.
	MaxSize int64
	// MaxFiles is how many rotated files (path.1 ... path.N) are kept.
	// Default 5.
	MaxFiles int
	// SyncEvery fsyncs after this many appends. Default 64.
	SyncEvery int
	// SyncInterval fsyncs on the first append after this much time since
	// the last fsync. Default 1s. When appends stop, records stay unsynced
	// until the next Append, Sync or Close: call Sync from a ticker.
	SyncInterval time.Duration
}

func (o LogOptions) withDefaults() LogOptions {
	if o.MaxSize <= 0 {
		o.MaxSize = 64 << 20
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = 5
	}
	if o.SyncEvery <= 0 {
		o.SyncEvery = 64
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = time.Second
	}
	return o
}

// Log is an append-only JSON lines file of events, one fleet.Event per
// line. Each record is written with a single write, so a crash of the
// process loses nothing the kernel accepted; fsync is batched (SyncEvery,
// SyncInterval), so a power loss loses at most the unsynced batch and may
// leave a torn last line, which the reader skips. It is safe for
// concurrent use.
type Log struct {
	mu       sync.Mutex
	path     string
	opts     LogOptions
	f        *os.File
	size     int64
	unsynced int
	lastSync time.Time
}

// OpenLog opens (creating it if needed, mode 0600) the log at path for
// appending. A torn last line left by a crash is closed with a newline so
// the next record starts on its own line.
func OpenLog(path string, opts LogOptions) (*Log, error) {
	l := &Log{path: path, opts: opts.withDefaults(), lastSync: time.Now()}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) open() error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("event log %s: %w", l.path, err)
	}
	l.f, l.size = f, st.Size()
	if l.size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, l.size-1); err != nil {
			f.Close()
			return fmt.Errorf("event log %s: %w", l.path, err)
		}
		if last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				f.Close()
				return fmt.Errorf("event log %s: closing a torn line: %w", l.path, err)
			}
			l.size++
		}
	}
	return nil
}

// Append writes one event as a line, rotating first when the file would
// grow past MaxSize.
func (l *Log) Append(e fleet.Event) error {
	line, err := jsonLine(e)
	if err != nil {
		return fmt.Errorf("event log %s: %w", l.path, err)
	}
	if len(line) > MaxLineSize {
		return fmt.Errorf("event log %s: event %q is %d bytes, larger than the line limit of %d", l.path, e.ID, len(line), MaxLineSize)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("event log %s: closed", l.path)
	}
	if l.size > 0 && l.size+int64(len(line)) > l.opts.MaxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("event log %s: %w", l.path, err)
	}
	l.unsynced++
	if l.unsynced >= l.opts.SyncEvery || time.Since(l.lastSync) >= l.opts.SyncInterval {
		return l.sync()
	}
	return nil
}

// jsonLine returns e as one JSON line with its newline.
func jsonLine(e fleet.Event) ([]byte, error) {
	line, err := json.Marshal(e)
	return append(line, '\n'), err
}

func (l *Log) sync() error {
	if l.unsynced == 0 {
		return nil
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("event log %s: fsync: %w", l.path, err)
	}
	l.unsynced = 0
	l.lastSync = time.Now()
	return nil
}

// rotate renames path.N-1 to path.N ... path to path.1 and opens a new
// file. The oldest file past MaxFiles is removed.
func (l *Log) rotate() error {
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("event log %s: fsync: %w", l.path, err)
	}
	l.unsynced = 0
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("event log %s: %w", l.path, err)
	}
	l.f = nil
	if err := os.Remove(rotated(l.path, l.opts.MaxFiles)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("event log: %w", err)
	}
	for i := l.opts.MaxFiles - 1; i >= 1; i-- {
		if err := os.Rename(rotated(l.path, i), rotated(l.path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("event log: %w", err)
		}
	}
	if err := os.Rename(l.path, rotated(l.path, 1)); err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	return l.open()
}

func rotated(path string, i int) string { return path + "." + strconv.Itoa(i) }

// Sync flushes unsynced records to stable storage.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	return l.sync()
}

// Close syncs and closes the log.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.sync()
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("event log %s: %w", l.path, cerr)
	}
	l.f = nil
	return err
}

// Files returns the log's files that exist, oldest first: path.N ...
// path.1, path.
func Files(path string, maxFiles int) []string {
	if maxFiles <= 0 {
		maxFiles = LogOptions{}.withDefaults().MaxFiles
	}
	var out []string
	for i := maxFiles; i >= 1; i-- {
		if _, err := os.Stat(rotated(path, i)); err == nil {
			out = append(out, rotated(path, i))
		}
	}
	if _, err := os.Stat(path); err == nil {
		out = append(out, path)
	}
	return out
}

// Reader reads the events of a log. Lines that are not a whole JSON
// event are skipped and counted, never fatal: a last line without its
// newline is Torn (a crash during a write); any other is Corrupt (a torn
// line that OpenLog later closed with a newline counts as Corrupt).
type Reader struct {
	r       *bufio.Reader
	err     error
	Torn    int
	Corrupt int
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10)}
}

// All iterates over the events. After the loop, Err reports a read error
// and Torn and Corrupt the skipped lines.
func (r *Reader) All() iter.Seq[fleet.Event] {
	return func(yield func(fleet.Event) bool) {
		for {
			line, complete, err := r.line()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					r.err = err
				}
				return
			}
			if complete && len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var e fleet.Event
			trimmed := bytes.TrimSpace(line)
			if !complete || len(line) > MaxLineSize || len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &e) != nil {
				if complete {
					r.Corrupt++
				} else {
					r.Torn++
				}
				continue
			}
			if !yield(e) {
				return
			}
		}
	}
}

// line reads one line without its newline, keeping at most
// MaxLineSize+1 bytes of it; complete is false when the input ended
// before the newline.
func (r *Reader) line() (line []byte, complete bool, err error) {
	for {
		chunk, err := r.r.ReadSlice('\n')
		body := bytes.TrimSuffix(chunk, []byte{'\n'})
		if room := MaxLineSize + 1 - len(line); room > 0 {
			line = append(line, body[:min(len(body), room)]...)
		}
		switch {
		case err == nil:
			return line, true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && (len(line) > 0 || len(chunk) > 0):
			return line, false, nil
		default:
			return nil, false, err
		}
	}
}

// Err returns the read error that ended the iteration, if any.
func (r *Reader) Err() error { return r.err }

// ReadStats are the totals of ReadFiles.
type ReadStats struct {
	Files, Events, Torn, Corrupt int
}

// ReadFiles iterates over the events of every file of the log at path
// (see Files), oldest first. A file that cannot be opened or read yields
// its error and ends the iteration. Totals, including the skipped lines,
// are added to stats, which may be nil.
func ReadFiles(path string, maxFiles int, stats *ReadStats) iter.Seq2[fleet.Event, error] {
	return func(yield func(fleet.Event, error) bool) {
		for _, name := range Files(path, maxFiles) {
			f, err := os.Open(name)
			if err != nil {
				yield(fleet.Event{}, fmt.Errorf("event log: %w", err))
				return
			}
			r := NewReader(f)
			stop := false
			for e := range r.All() {
				if stats != nil {
					stats.Events++
				}
				if !yield(e, nil) {
					stop = true
					break
				}
			}
			f.Close()
			if stats != nil {
				stats.Files++
				stats.Torn += r.Torn
				stats.Corrupt += r.Corrupt
			}
			if stop {
				return
			}
			if err := r.Err(); err != nil {
				yield(fleet.Event{}, fmt.Errorf("event log %s: %w", name, err))
				return
			}
		}
	}
}
