package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Anchor is a (Seq, Hash) pair recorded outside the database, for example
// printed by the server every hour to a log shipper or a ticket. Verify
// checks the chain still contains it, which detects truncation of the
// tail and a rewritten chain (without HMAC) up to the anchor.
type Anchor struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Key is the HMAC key the chain was written with; nil for SHA-256.
	Key []byte
	// Anchors are externally recorded events the chain must contain.
	Anchors []Anchor
}

// BreakKind classifies the first broken link.
type BreakKind string

// The break kinds.
const (
	// BreakFirstSeq: the chain does not start at 1 (head deleted).
	BreakFirstSeq BreakKind = "first_seq"
	// BreakSeqOrder: an event's Seq is not greater than the previous one
	// (reordered or duplicated rows).
	BreakSeqOrder BreakKind = "seq_order"
	// BreakSeqGap: sequence numbers are missing (events deleted, or rows
	// out of order).
	BreakSeqGap BreakKind = "seq_gap"
	// BreakPrevHash: the event does not link to the previous event's hash
	// (an event was deleted, inserted or moved and renumbered).
	BreakPrevHash BreakKind = "prev_hash"
	// BreakHash: the stored hash does not match the event's fields (a
	// field was changed, or the hash forged without the HMAC key).
	BreakHash BreakKind = "hash"
	// BreakAnchor: an anchor's event is missing or has another hash (the
	// tail was truncated, or the chain rewritten).
	BreakAnchor BreakKind = "anchor"
)

// Break is the first broken link found.
type Break struct {
	Seq    int64
	Kind   BreakKind
	Detail string
}

// Report is the result of Verify.
type Report struct {
	// Mode is "sha256" or "hmac-sha256".
	Mode string
	// Events counts the events read up to the break (all when OK).
	Events int64
	// LastSeq and LastHash are those of the last event verified; record
	// them as an Anchor.
	LastSeq  int64
	LastHash string
	// Anchors counts the anchors checked.
	Anchors int
	// Break is the first broken link, nil when the chain is intact.
	Break *Break
}

// OK reports whether the chain verified.
func (r Report) OK() bool { return r.Break == nil }

// String summarizes the report in one line.
func (r Report) String() string {
	if r.Break != nil {
		return fmt.Sprintf("audit chain BROKEN at seq %d (%s): %s; %d events verified before it (%s)",
			r.Break.Seq, r.Break.Kind, r.Break.Detail, r.Events, r.Mode)
	}
	return fmt.Sprintf("audit chain OK: %d events, last seq %d hash %s, %d anchors checked (%s)",
		r.Events, r.LastSeq, r.LastHash, r.Anchors, r.Mode)
}

// errStop ends Range at the first break.
var errStop = errors.New("stop")

// Verify walks the whole chain in store and reports the first broken
// link. The error is for failures reading the store; a broken chain is a
// Report with Break set.
func Verify(ctx context.Context, store Store, opts VerifyOptions) (Report, error) {
	r := Report{Mode: "sha256"}
	if opts.Key != nil {
		r.Mode = "hmac-sha256"
	}
	anchors := map[int64]string{}
	for _, a := range opts.Anchors {
		if a.Seq < 1 || a.Hash == "" {
			return r, fmt.Errorf("audit anchor %+v: want a seq of at least 1 and a hash", a)
		}
		anchors[a.Seq] = a.Hash
	}
	fail := func(seq int64, kind BreakKind, format string, args ...any) error {
		r.Break = &Break{Seq: seq, Kind: kind, Detail: fmt.Sprintf(format, args...)}
		return errStop
	}
	err := store.Range(ctx, 1, func(e Event) error {
		switch {
		case r.Events == 0 && e.Seq != 1:
			return fail(e.Seq, BreakFirstSeq, "the first event has seq %d, want 1: events before it were deleted", e.Seq)
		case r.Events > 0 && e.Seq <= r.LastSeq:
			return fail(e.Seq, BreakSeqOrder, "seq %d follows seq %d: events were reordered or duplicated", e.Seq, r.LastSeq)
		case r.Events > 0 && e.Seq != r.LastSeq+1:
			return fail(e.Seq, BreakSeqGap, "seq %d follows seq %d: %d events are missing (deleted, or stored out of order)", e.Seq, r.LastSeq, e.Seq-r.LastSeq-1)
		case e.PrevHash != r.LastHash:
			return fail(e.Seq, BreakPrevHash, "prev_hash %.16s… does not match the previous event's hash %.16s…: an event was deleted, inserted or moved", e.PrevHash, r.LastHash)
		}
		if h := ComputeHash(e, opts.Key); h != e.Hash {
			hint := ""
			if r.Events == 0 {
				hint = " (if every event fails, check the HMAC key option)"
			}
			return fail(e.Seq, BreakHash, "stored hash %.16s… does not match the fields (computed %.16s…): the event was changed or its hash forged%s", e.Hash, h, hint)
		}
		if want, ok := anchors[e.Seq]; ok {
			if want != e.Hash {
				return fail(e.Seq, BreakAnchor, "hash %.16s… differs from the anchor %.16s…: the chain was rewritten", e.Hash, want)
			}
			r.Anchors++
		}
		r.Events++
		r.LastSeq, r.LastHash = e.Seq, e.Hash
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return r, fmt.Errorf("verifying the audit chain: %w", err)
	}
	if r.Break == nil {
		missing := int64(-1)
		for _, a := range opts.Anchors {
			if a.Seq > r.LastSeq && (missing < 0 || a.Seq < missing) {
				missing = a.Seq
			}
		}
		if missing >= 0 {
			r.Break = &Break{Seq: missing, Kind: BreakAnchor,
				Detail: fmt.Sprintf("the chain ends at seq %d but an anchor records seq %d: the tail was truncated", r.LastSeq, missing)}
		}
	}
	return r, nil
}

// RunVerify is what "mamori audit verify" runs: it verifies the chain,
// writes the report's summary line to w, and returns an error when the
// chain is broken or cannot be read.
func RunVerify(ctx context.Context, store Store, opts VerifyOptions, w io.Writer) error {
	r, err := Verify(ctx, store, opts)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w, r.String()); err != nil {
		return err
	}
	if !r.OK() {
		return fmt.Errorf("audit chain broken at seq %d (%s)", r.Break.Seq, r.Break.Kind)
	}
	return nil
}
