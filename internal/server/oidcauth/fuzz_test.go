package oidcauth

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzOpenState feeds arbitrary cookie values to the state decoder: it must
// never panic and must only accept values sealed with the key. Fuzz workers
// seal their own copy (random GCM nonce), so the check is on the content: the
// only state ever sealed is sealed.
func FuzzOpenState(f *testing.F) {
	s, err := newSealer(testKey, "mamori_oidc")
	if err != nil {
		f.Fatal(err)
	}
	sealed := flowState{State: "s", Nonce: "n", Verifier: "v", Expires: time.Now().Add(time.Hour).Unix()}
	valid, err := s.seal(sealed)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{valid, valid[:len(valid)-1], "", "!!!", "AAAA", valid + "A"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		st, err := s.open(value, time.Now())
		if err == nil && (st.State != sealed.State || st.Nonce != sealed.Nonce || st.Verifier != sealed.Verifier) {
			t.Fatalf("opened a forged cookie %q: %+v", value, st)
		}
	})
}

// FuzzStateRoundTrip checks that any state seals and opens unchanged.
func FuzzStateRoundTrip(f *testing.F) {
	f.Add("state", "nonce", "verifier")
	f.Add("\x00", "ü", "\xff")
	s, err := newSealer(testKey, "c")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, state, nonce, verifier string) {
		in := flowState{State: state, Nonce: nonce, Verifier: verifier, Expires: time.Now().Add(time.Hour).Unix()}
		v, err := s.seal(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.open(v, time.Now())
		if len(v) > maxCookieLen || state == "" || nonce == "" || verifier == "" {
			return // rejected by design: too long or incomplete
		}
		if err != nil {
			t.Fatalf("open(seal(%+v)): %v", in, err)
		}
		// JSON replaces each invalid UTF-8 byte by U+FFFD, as strings.Map does.
		want := in
		for _, s := range []*string{&want.State, &want.Nonce, &want.Verifier} {
			*s = strings.Map(func(r rune) rune { return r }, *s)
		}
		if *out != want {
			t.Fatalf("round trip %+v != %+v", *out, want)
		}
	})
}

// FuzzIdentityClaims feeds arbitrary claim sets to the claim extraction.
func FuzzIdentityClaims(f *testing.F) {
	for _, seed := range []string{
		`{"sub":"1","preferred_username":"bob","groups":["a","b"]}`,
		`{"sub":"1","realm_access":{"roles":["a"]}}`,
		`{"email":"e@x","email_verified":false,"groups":"one"}`,
		`{"groups":[1,{}]}`,
	} {
		f.Add(seed, "groups")
		f.Add(seed, "realm_access.roles")
	}
	f.Fuzz(func(t *testing.T, claims, groupsClaim string) {
		var m map[string]any
		if json.Unmarshal([]byte(claims), &m) != nil {
			return
		}
		p := &Provider{cfg: Config{UsernameClaim: "preferred_username", GroupsClaim: groupsClaim}}
		id, err := p.identity(m)
		if err == nil && (id.Username == "" || len(id.Groups) > maxGroups) {
			t.Fatalf("identity(%s) = %+v", claims, id)
		}
	})
}
