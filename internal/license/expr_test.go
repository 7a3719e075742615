package license

import (
	"errors"
	"strings"
	"testing"
)

var parseCases = []struct {
	in, want, err string
}{
	{in: "MIT", want: "MIT"},
	{in: "MIT OR Apache-2.0", want: "MIT OR Apache-2.0"},
	{in: "mit or apache-2.0", want: "mit OR apache-2.0"},
	{in: "(MIT)", want: "MIT"},
	{in: "MIT AND BSD-3-Clause OR GPL-2.0-only", want: "(MIT AND BSD-3-Clause) OR GPL-2.0-only"},
	{in: "MIT AND (BSD-3-Clause OR GPL-2.0-only)", want: "MIT AND (BSD-3-Clause OR GPL-2.0-only)"},
	{in: "GPL-2.0-or-later WITH Classpath-exception-2.0 OR MIT", want: "GPL-2.0-or-later WITH Classpath-exception-2.0 OR MIT"},
	{in: "((MIT))", want: "MIT"},
	{in: "", err: "empty expression"},
	{in: "MIT OR", err: "expression ends"},
	{in: "(MIT", err: `missing ")"`},
	{in: "MIT)", err: `unexpected ")"`},
	{in: "MIT Apache-2.0", err: `unexpected "Apache-2.0"`},
	{in: "AND MIT", err: `"AND" where a license was expected`},
	{in: "(MIT OR ISC) WITH LLVM-exception", err: "WITH must follow a single license"},
	{in: "MIT WITH A WITH B", err: `unexpected "WITH"`},
	{in: strings.Repeat("(", 40) + "MIT" + strings.Repeat(")", 40), err: "nested deeper"},
	{in: strings.Repeat("MIT OR ", 1000) + "MIT", err: "longer than"},
}

func TestParseExpression(t *testing.T) {
	for _, c := range parseCases {
		e, err := ParseExpression(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrSyntax) {
				t.Errorf("ParseExpression(%.40q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseExpression(%q): %v", c.in, err)
			continue
		}
		if got := e.String(); got != c.want {
			t.Errorf("ParseExpression(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseLoose(t *testing.T) {
	e, err := parse("Apache License 2.0 or GPL-2+ with OpenSSL exception", true)
	if err != nil {
		t.Fatal(err)
	}
	if e.Op != OpOr || e.Args[0].ID != "Apache License 2.0" || e.Args[1].ID != "GPL-2+" || e.Args[1].Exception != "OpenSSL exception" {
		t.Errorf("parse loose = %#v", e)
	}
}

func FuzzParseExpression(f *testing.F) {
	for _, c := range parseCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, loose := range []bool{false, true} {
			e, err := parse(s, loose)
			if err != nil {
				continue
			}
			if loose {
				continue
			}
			// A parsed expression prints as an expression that parses to
			// the same text.
			back, err := ParseExpression(e.String())
			if err != nil || back.String() != e.String() {
				t.Fatalf("%q -> %q -> %v, %v", s, e.String(), back, err)
			}
		}
	})
}
