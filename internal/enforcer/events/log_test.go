package events

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/fleet"
)

func logEvent(i int) fleet.Event {
	return fleet.Event{ID: strconv.Itoa(i), Status: fleet.StatusDetect, Policy: "default", Control: "driftPrevention",
		Message: "drift", Process: fleet.Process{PID: i, Path: "/tmp/x"}, Count: 1}
}

func readAll(t *testing.T, path string, maxFiles int) ([]fleet.Event, ReadStats) {
	t.Helper()
	var st ReadStats
	var out []fleet.Event
	for e, err := range ReadFiles(path, maxFiles, &st) {
		if err != nil {
			t.Fatalf("ReadFiles: %v", err)
		}
		out = append(out, e)
	}
	return out, st
}

func TestLogAppendRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	l, err := OpenLog(path, LogOptions{SyncEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := l.Append(logEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if l.unsynced != 1 {
		t.Errorf("unsynced = %d, want 1 after 10 appends in batches of 3", l.unsynced)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(logEvent(10)); err == nil {
		t.Error("Append after Close succeeded")
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("log file mode: %v %v", st.Mode(), err)
	}
	evs, stats := readAll(t, path, 0)
	if len(evs) != 10 || evs[9].ID != "9" || evs[3].Process.PID != 3 || stats.Torn+stats.Corrupt != 0 {
		t.Errorf("read %d events, stats %+v", len(evs), stats)
	}
}

func TestLogRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	line, _ := logEventLine(0)
	l, err := OpenLog(path, LogOptions{MaxSize: int64(10 * len(line)), MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 45 {
		if err := l.Append(logEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	files := Files(path, 2)
	if len(files) != 3 || files[0] != path+".2" || files[2] != path {
		t.Fatalf("files = %v", files)
	}
	for _, f := range files {
		if st, _ := os.Stat(f); st.Size() > int64(10*(len(line)+1)) {
			t.Errorf("%s is %d bytes, past MaxSize", f, st.Size())
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("more rotated files than MaxFiles")
	}
	evs, _ := readAll(t, path, 2)
	// The oldest records were rotated away; the rest are in order.
	if len(evs) == 0 || evs[len(evs)-1].ID != "44" {
		t.Fatalf("read %d events", len(evs))
	}
	for i := 1; i < len(evs); i++ {
		a, _ := strconv.Atoi(evs[i-1].ID)
		b, _ := strconv.Atoi(evs[i].ID)
		if b != a+1 {
			t.Fatalf("events out of order: %s then %s", evs[i-1].ID, evs[i].ID)
		}
	}
}

func logEventLine(i int) (string, error) {
	data, err := jsonLine(logEvent(i))
	return string(data), err
}

func TestLogTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	l, err := OpenLog(path, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		l.Append(logEvent(i))
	}
	l.Close()
	// A crash mid-write leaves half a record without its newline.
	half, _ := jsonLine(logEvent(3))
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(half[:len(half)/2])
	f.Close()

	evs, st := readAll(t, path, 0)
	if len(evs) != 3 || st.Torn != 1 || st.Corrupt != 0 {
		t.Errorf("torn log: %d events, stats %+v; want 3 events and 1 torn line", len(evs), st)
	}
	// Reopening closes the torn line; new records are readable after it.
	l, err = OpenLog(path, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l.Append(logEvent(4))
	l.Close()
	evs, st = readAll(t, path, 0)
	if len(evs) != 4 || evs[3].ID != "4" || st.Corrupt != 1 || st.Torn != 0 {
		t.Errorf("after reopen: %d events, stats %+v", len(evs), st)
	}
}

func TestReaderSkipsBadLines(t *testing.T) {
	good, _ := jsonLine(logEvent(1))
	long := "{\"id\": \"" + strings.Repeat("x", MaxLineSize) + "\"}\n"
	in := string(good) + "\n\nnot json\nnull\n[1]\n" + long + string(good) + "{\"id\": \"torn"
	r := NewReader(strings.NewReader(in))
	n := 0
	for range r.All() {
		n++
	}
	if n != 2 || r.Corrupt != 4 || r.Torn != 1 || r.Err() != nil {
		t.Errorf("read %d, corrupt %d, torn %d, err %v", n, r.Corrupt, r.Torn, r.Err())
	}
	// Stopping early is allowed.
	r = NewReader(strings.NewReader(in))
	for range r.All() {
		break
	}
}

func TestAppendTooLarge(t *testing.T) {
	l, err := OpenLog(filepath.Join(t.TempDir(), "e"), LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e := logEvent(1)
	e.Message = strings.Repeat("m", MaxLineSize)
	if err := l.Append(e); err == nil || !strings.Contains(err.Error(), "larger than the line limit") {
		t.Errorf("Append = %v", err)
	}
}

func TestOpenLogError(t *testing.T) {
	if _, err := OpenLog(filepath.Join(t.TempDir(), "missing", "e"), LogOptions{}); err == nil || !strings.Contains(err.Error(), "event log") {
		t.Errorf("OpenLog = %v", err)
	}
}

func FuzzReader(f *testing.F) {
	good, _ := jsonLine(logEvent(1))
	f.Add(good)
	f.Add([]byte(string(good) + "\n" + string(good[:10])))
	f.Add([]byte("\n\n{}\nnull\n{\"count\": \"x\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		n := 0
		for range r.All() {
			n++
		}
		if r.Err() != nil {
			t.Fatalf("Err = %v on an in-memory reader", r.Err())
		}
		lines := bytes.Count(data, []byte{'\n'}) + 1
		if n+r.Corrupt+r.Torn > lines || r.Torn > 1 {
			t.Fatalf("%d events, %d corrupt, %d torn from %d lines", n, r.Corrupt, r.Torn, lines)
		}
	})
}
