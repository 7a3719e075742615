package fanotify

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// metadataSize is the size of struct fanotify_event_metadata (version 3):
// event_len u32, vers u8, reserved u8, metadata_len u16, mask u64, fd s32,
// pid s32.
const metadataSize = 24

// event is one decoded fanotify event.
type event struct {
	mask uint64
	fd   int32
	pid  int32
}

// decodeEvents decodes the fanotify event records read from a group's file
// descriptor. It returns the events decoded before the first malformed
// record together with an error describing that record, so that the caller
// can still answer and close the file descriptors it was given.
func decodeEvents(buf []byte) ([]event, error) {
	var evs []event
	for off := 0; off < len(buf); {
		rest := buf[off:]
		if len(rest) < metadataSize {
			return evs, fmt.Errorf("fanotify event at offset %d: %d bytes left, need %d for the metadata", off, len(rest), metadataSize)
		}
		eventLen := binary.NativeEndian.Uint32(rest[0:4])
		vers := rest[4]
		metaLen := binary.NativeEndian.Uint16(rest[6:8])
		if vers != unix.FANOTIFY_METADATA_VERSION {
			return evs, fmt.Errorf("fanotify event at offset %d: metadata version %d, want %d", off, vers, unix.FANOTIFY_METADATA_VERSION)
		}
		if metaLen < metadataSize {
			return evs, fmt.Errorf("fanotify event at offset %d: metadata length %d is shorter than %d", off, metaLen, metadataSize)
		}
		if uint64(eventLen) < uint64(metaLen) || uint64(eventLen) > uint64(len(rest)) {
			return evs, fmt.Errorf("fanotify event at offset %d: event length %d outside [%d, %d]", off, eventLen, metaLen, len(rest))
		}
		evs = append(evs, event{
			mask: binary.NativeEndian.Uint64(rest[8:16]),
			fd:   int32(binary.NativeEndian.Uint32(rest[16:20])),
			pid:  int32(binary.NativeEndian.Uint32(rest[20:24])),
		})
		off += int(eventLen)
	}
	return evs, nil
}

// putResponse encodes struct fanotify_response {s32 fd; u32 response} into
// b, which must hold 8 bytes.
func putResponse(b []byte, fd int32, response uint32) {
	binary.NativeEndian.PutUint32(b[0:4], uint32(fd))
	binary.NativeEndian.PutUint32(b[4:8], response)
}

// Event is one fanotify event record, for packages that read a fanotify
// group of their own (file integrity monitoring).
type Event struct {
	Mask uint64
	// FD is the event's open file descriptor (negative for none); the
	// reader must close it.
	FD  int32
	PID int32
}

// DecodeEvents decodes the fanotify event records read from a group's file
// descriptor. Like the guard's own decoder, it returns the events decoded
// before the first malformed record together with an error describing it.
func DecodeEvents(buf []byte) ([]Event, error) {
	evs, err := decodeEvents(buf)
	out := make([]Event, len(evs))
	for i, e := range evs {
		out[i] = Event{Mask: e.mask, FD: e.fd, PID: e.pid}
	}
	return out, err
}
