package secret

import (
	"strings"
	"unicode/utf8"
)

// maxStars bounds the masked part of a redacted secret.
const maxStars = 20

// excerptBefore and excerptAfter bound the context kept around a secret
// in a finding's Match.
const (
	excerptBefore = 64
	excerptAfter  = 48
)

// Redact masks a secret: it keeps at most four leading characters (a
// quarter of the secret, so short secrets keep less) and replaces the rest
// with asterisks, up to 20.
func Redact(secret string) string {
	if secret == "" {
		return ""
	}
	keep := min(4, len(secret)/4)
	for keep > 0 && !utf8.RuneStart(secret[keep]) {
		keep--
	}
	return secret[:keep] + strings.Repeat("*", max(1, min(maxStars, len(secret)-keep)))
}

// excerpt returns the lines from the one holding offset start to the one
// holding the end of the secret [s0,s1), bounded around the secret, with
// every secret span in spans (sorted by start) redacted.
func excerpt(data []byte, start, s0, s1 int, spans [][2]int) string {
	ls := start
	for ls > 0 && data[ls-1] != '\n' {
		ls--
	}
	le := s1
	for le < len(data) && data[le] != '\n' && data[le] != '\r' {
		le++
	}
	lo, hi := max(ls, s0-excerptBefore), min(le, s1+excerptAfter)
	var b strings.Builder
	for i := lo; i < hi; {
		redacted := false
		for _, sp := range spans {
			if sp[0] <= i && i < sp[1] {
				if sp[0] == i {
					b.WriteString(Redact(string(data[sp[0]:sp[1]])))
				} else {
					b.WriteString("****")
				}
				i = sp[1]
				redacted = true
				break
			}
		}
		if redacted {
			continue
		}
		c := data[i]
		switch {
		case c == '\n' || c == '\r' || c == '\t':
			c = ' '
		case c < 0x20 || c == 0x7f:
			c = '?'
		}
		b.WriteByte(c)
		i++
	}
	out := strings.ToValidUTF8(b.String(), "?")
	// A secret repeated outside its span (dropped as a duplicate) must not
	// show either.
	for _, sp := range spans {
		if sec := string(data[sp[0]:sp[1]]); strings.Contains(out, sec) {
			out = strings.ReplaceAll(out, sec, Redact(sec))
		}
	}
	return out
}
