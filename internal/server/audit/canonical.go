package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"time"
)

// canonicalMagic starts every canonical encoding; it names the format
// version so a future format cannot collide with this one.
const canonicalMagic = "mamori-audit-v1\n"

// MarshalCanonical returns the canonical encoding of e that Hash covers:
//
//	"mamori-audit-v1\n"                   16 bytes
//	Seq                                    int64, 8 bytes big-endian
//	Time                                   int64 Unix microseconds, 8 bytes big-endian
//	then 12 fields, each a uint32 big-endian byte length followed by the bytes:
//	Actor.Kind, Actor.ID, Actor.Name, ActorIP, Action, ResourceType,
//	ResourceID, Before, After, Outcome, Reason, PrevHash
//
// Hash itself is not encoded. Every field is length-prefixed, so two
// different events never share an encoding; nil and empty Before/After
// encode alike (both as length 0).
func MarshalCanonical(e Event) []byte {
	fields := e.canonicalFields()
	n := len(canonicalMagic) + 16
	for _, f := range fields {
		n += 4 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, canonicalMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixMicro()))
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func (e Event) canonicalFields() [12][]byte {
	return [12][]byte{
		[]byte(e.Actor.Kind), []byte(e.Actor.ID), []byte(e.Actor.Name), []byte(e.ActorIP),
		[]byte(e.Action), []byte(e.ResourceType), []byte(e.ResourceID), e.Before, e.After,
		[]byte(e.Outcome), []byte(e.Reason), []byte(e.PrevHash),
	}
}

// UnmarshalCanonical decodes a canonical encoding. Time is returned in UTC;
// empty Before and After are nil. Hash is left empty.
func UnmarshalCanonical(b []byte) (Event, error) {
	if !bytes.HasPrefix(b, []byte(canonicalMagic)) {
		return Event{}, errors.New("canonical audit event: missing \"mamori-audit-v1\" header")
	}
	b = b[len(canonicalMagic):]
	if len(b) < 16 {
		return Event{}, errors.New("canonical audit event: truncated before the time")
	}
	var e Event
	e.Seq = int64(binary.BigEndian.Uint64(b))
	e.Time = time.UnixMicro(int64(binary.BigEndian.Uint64(b[8:]))).UTC()
	b = b[16:]
	var fields [12][]byte
	for i := range fields {
		if len(b) < 4 {
			return Event{}, fmt.Errorf("canonical audit event: truncated before field %d", i+1)
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return Event{}, fmt.Errorf("canonical audit event: field %d claims %d bytes, only %d left", i+1, n, len(b))
		}
		if n > 0 {
			fields[i] = b[:n:n]
		}
		b = b[n:]
	}
	if len(b) != 0 {
		return Event{}, fmt.Errorf("canonical audit event: %d bytes of trailing data", len(b))
	}
	e.Actor.Kind, e.Actor.ID, e.Actor.Name = ActorKind(fields[0]), string(fields[1]), string(fields[2])
	e.ActorIP, e.Action, e.ResourceType, e.ResourceID = string(fields[3]), string(fields[4]), string(fields[5]), string(fields[6])
	e.Before, e.After = fields[7], fields[8]
	e.Outcome, e.Reason, e.PrevHash = Outcome(fields[9]), string(fields[10]), string(fields[11])
	return e, nil
}

// ComputeHash returns the lower-case hex hash of e's canonical encoding:
// SHA-256 without a key, HMAC-SHA-256 with one.
func ComputeHash(e Event, key []byte) string {
	var h hash.Hash
	if key != nil {
		h = hmac.New(sha256.New, key)
	} else {
		h = sha256.New()
	}
	h.Write(MarshalCanonical(e))
	return hex.EncodeToString(h.Sum(nil))
}
