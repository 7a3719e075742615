package fanotify

import (
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// record encodes one event record of length eventLen (at least 24).
func record(eventLen uint32, vers uint8, metaLen uint16, mask uint64, fd, pid int32) []byte {
	b := make([]byte, max(int(eventLen), metadataSize))
	binary.NativeEndian.PutUint32(b[0:], eventLen)
	b[4] = vers
	binary.NativeEndian.PutUint16(b[6:], metaLen)
	binary.NativeEndian.PutUint64(b[8:], mask)
	binary.NativeEndian.PutUint32(b[16:], uint32(fd))
	binary.NativeEndian.PutUint32(b[20:], uint32(pid))
	return b
}

func concat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func TestDecodeEvents(t *testing.T) {
	const v = unix.FANOTIFY_METADATA_VERSION
	good := record(24, v, 24, unix.FAN_OPEN_EXEC_PERM, 7, 1234)
	for _, tc := range []struct {
		name    string
		buf     []byte
		want    []event
		wantErr string
	}{
		{"empty", nil, nil, ""},
		{"one", good, []event{{unix.FAN_OPEN_EXEC_PERM, 7, 1234}}, ""},
		{"two", concat(good, record(24, v, 24, unix.FAN_Q_OVERFLOW, unix.FAN_NOFD, 0)),
			[]event{{unix.FAN_OPEN_EXEC_PERM, 7, 1234}, {unix.FAN_Q_OVERFLOW, unix.FAN_NOFD, 0}}, ""},
		{"info records skipped", concat(record(40, v, 24, 1, 3, 4), good),
			[]event{{1, 3, 4}, {unix.FAN_OPEN_EXEC_PERM, 7, 1234}}, ""},
		{"short", good[:10], nil, "10 bytes left"},
		{"bad version", record(24, 2, 24, 0, 1, 1), nil, "metadata version 2"},
		{"short metadata", record(24, v, 16, 0, 1, 1), nil, "metadata length 16"},
		{"event shorter than metadata", record(24, v, 30, 0, 1, 1), nil, "event length 24"},
		{"length past buffer", func() []byte { b := record(24, v, 24, 0, 1, 1); binary.NativeEndian.PutUint32(b, 48); return b }(), nil, "event length 48"},
		{"good then bad", concat(good, record(24, 9, 24, 0, 1, 1)), []event{{unix.FAN_OPEN_EXEC_PERM, 7, 1234}}, "offset 24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeEvents(tc.buf)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("decodeEvents: error %v, want %q", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("decodeEvents = %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("event %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestContainerPath(t *testing.T) {
	for _, tc := range []struct{ root, p, want string }{
		{"/var/lib/docker/overlay2/x/merged", "/bin/cat", "/bin/cat"},
		{"/var/lib/docker/overlay2/x/merged", "/var/lib/docker/overlay2/x/merged/bin/cat", "/bin/cat"},
		{"/var/lib/docker/overlay2/x/merged/", "/var/lib/docker/overlay2/x/merged/bin/cat", "/bin/cat"},
		{"/var/lib/docker/overlay2/x/merged", "/var/lib/docker/overlay2/x/mergedfoo/bin/cat", "/var/lib/docker/overlay2/x/mergedfoo/bin/cat"},
		{"", "/bin/cat", "/bin/cat"},
	} {
		if got := containerPath(tc.root, tc.p); got != tc.want {
			t.Errorf("containerPath(%q, %q) = %q, want %q", tc.root, tc.p, got, tc.want)
		}
	}
}

func FuzzDecodeEvents(f *testing.F) {
	const v = unix.FANOTIFY_METADATA_VERSION
	f.Add(record(24, v, 24, unix.FAN_OPEN_EXEC_PERM, 7, 1234))
	f.Add(concat(record(40, v, 24, 1, 3, 4), record(24, v, 24, 2, 5, 6)))
	f.Add(record(24, 2, 24, 0, 1, 1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, buf []byte) {
		evs, err := decodeEvents(buf)
		if len(evs)*metadataSize > len(buf) {
			t.Fatalf("%d events from %d bytes", len(evs), len(buf))
		}
		if err == nil && len(buf) > 0 && len(evs) == 0 {
			t.Fatal("no events and no error from a non-empty buffer")
		}
	})
}
