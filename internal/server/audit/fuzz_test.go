package audit

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func FuzzCanonicalRoundTrip(f *testing.F) {
	e := testEvent(1)
	f.Add(int64(1), e.Time.UnixMicro(), "user", "u-1", "alice", "192.0.2.7", "user.create", "users", "u-2", []byte(`{"a":1}`), []byte(nil), "success", "ok", "")
	f.Add(int64(-1), int64(0), "", "", "", "", "", "", "", []byte{}, []byte{0}, "", "\xff", "ab")
	f.Fuzz(func(t *testing.T, seq, micros int64, kind, id, name, ip, action, rtype, rid string, before, after []byte, outcome, reason, prev string) {
		in := Event{Seq: seq, Time: time.UnixMicro(micros).UTC(), Actor: Actor{Kind: ActorKind(kind), ID: id, Name: name},
			ActorIP: ip, Action: action, ResourceType: rtype, ResourceID: rid, Before: before, After: after,
			Outcome: Outcome(outcome), Reason: reason, PrevHash: prev}
		enc := MarshalCanonical(in)
		out, err := UnmarshalCanonical(enc)
		if err != nil {
			t.Fatalf("decoding an encoding: %v", err)
		}
		if !bytes.Equal(MarshalCanonical(out), enc) {
			t.Fatal("re-encoding differs")
		}
		if !bytes.Equal(in.Before, out.Before) || !bytes.Equal(in.After, out.After) || !in.Time.Equal(out.Time) {
			t.Fatalf("round trip changed documents or time: %+v -> %+v", in, out)
		}
		in.Before, in.After, out.Before, out.After = nil, nil, nil, nil
		in.Time, out.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip: %+v -> %+v", in, out)
		}
	})
}

func FuzzUnmarshalCanonical(f *testing.F) {
	f.Add(MarshalCanonical(testEvent(1)))
	f.Add([]byte(canonicalMagic))
	f.Add([]byte("mamori-audit-v1\n0123456789abcdef\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := UnmarshalCanonical(data)
		if err != nil {
			return
		}
		if !bytes.Equal(MarshalCanonical(e), data) {
			t.Fatalf("decoded %q but re-encoding differs", data)
		}
	})
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1,2,{"d":null,"c":"x"}]}`, `1e2`, `"\u003c"`, ``, `{`, `{"a":1,"a":2}`, `[1.50, -0]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := CanonicalJSON(doc)
		if err != nil {
			return
		}
		if len(c) > 0 && !json.Valid(c) {
			t.Fatalf("canonical form %q is not valid JSON", c)
		}
		again, err := CanonicalJSON(c)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("not idempotent: %q -> %q (%v)", c, again, err)
		}
	})
}
