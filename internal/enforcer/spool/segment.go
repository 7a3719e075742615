package spool

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/mamorisec/mamori/internal/fleet"
)

// A segment file is a sequence of records, each
//
//	length  uint32 big endian: length of payload
//	crc     uint32 big endian: CRC-32C of seq and payload
//	seq     uint64 big endian: the event's spool sequence (its ID)
//	payload the event's JSON
//
// A write torn by a crash leaves a short or mismatching last record, which
// the reader detects and the spool cuts off.
const headerSize = 16

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeRecord returns the record of ev with sequence seq.
func encodeRecord(seq uint64, ev fleet.Event) ([]byte, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	rec := make([]byte, headerSize+len(payload))
	binary.BigEndian.PutUint32(rec[0:], uint32(len(payload)))
	binary.BigEndian.PutUint64(rec[8:], seq)
	copy(rec[headerSize:], payload)
	binary.BigEndian.PutUint32(rec[4:], crc32.Checksum(rec[8:], castagnoli))
	return rec, nil
}

// record is one decoded record.
type record struct {
	seq   uint64
	event fleet.Event
	// end is the offset just past the record in its segment.
	end int64
}

// errTorn reports a record that is incomplete or damaged.
var errTorn = errors.New("torn or damaged record")

// segmentReader decodes the records of one segment.
type segmentReader struct {
	r        *bufio.Reader
	maxEvent int
	// off is the offset just past the last record decoded.
	off int64
	buf []byte
}

func newSegmentReader(r io.Reader, off int64, maxEvent int) *segmentReader {
	return &segmentReader{r: bufio.NewReaderSize(r, 64<<10), off: off, maxEvent: maxEvent}
}

// next decodes the next record. It returns io.EOF at a clean end, and an
// error wrapping errTorn when the rest of the segment is not a valid record.
func (s *segmentReader) next() (record, error) {
	var hdr [headerSize]byte
	n, err := io.ReadFull(s.r, hdr[:])
	if err == io.EOF {
		return record{}, io.EOF
	}
	if err != nil {
		return record{}, fmt.Errorf("offset %d: %w: header cut after %d bytes", s.off, errTorn, n)
	}
	size := binary.BigEndian.Uint32(hdr[0:])
	if int64(size) > int64(s.maxEvent) {
		return record{}, fmt.Errorf("offset %d: %w: length %d over the limit %d", s.off, errTorn, size, s.maxEvent)
	}
	if cap(s.buf) < 8+int(size) {
		s.buf = make([]byte, 8+int(size))
	}
	buf := s.buf[:8+int(size)]
	copy(buf, hdr[8:])
	if _, err := io.ReadFull(s.r, buf[8:]); err != nil {
		return record{}, fmt.Errorf("offset %d: %w: payload cut", s.off, errTorn)
	}
	if crc32.Checksum(buf, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
		return record{}, fmt.Errorf("offset %d: %w: checksum mismatch", s.off, errTorn)
	}
	rec := record{seq: binary.BigEndian.Uint64(hdr[8:])}
	if err := json.Unmarshal(buf[8:], &rec.event); err != nil {
		return record{}, fmt.Errorf("offset %d: %w: %v", s.off, errTorn, err)
	}
	s.off += headerSize + int64(size)
	rec.end = s.off
	return rec, nil
}
