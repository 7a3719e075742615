package secret

import (
	"bytes"
	"math"
)

// placeholderMarks are lowercase substrings that mark a value as a stand-in
// written for a reader to replace, never a value a service accepts: the
// words documentation uses for that ("example", "placeholder", "your_"),
// runs of masking characters, and template syntax.
var placeholderMarks = [][]byte{
	[]byte("example"), []byte("placeholder"), []byte("xxxx"), []byte("****"), []byte("...."),
	[]byte("your_"), []byte("your-"), []byte("yourpass"), []byte("<"), []byte(">"),
	[]byte("${"), []byte("{{"), []byte("}}"), []byte("%("), []byte("redacted"), []byte("dummy"),
	[]byte("sample"), []byte("replace_me"), []byte("replace-me"), []byte("replaceme"),
	[]byte("insert_"), []byte("todo"), []byte("00000000"), []byte("12345678"), []byte("abcdefgh"),
}

// docWords are whole values that documentation uses to stand for "a
// password here". A deployment that really uses one of them has a weak
// password, which is a configuration problem, not a leaked secret; in
// files they are overwhelmingly manuals and samples.
var docWords = map[string]bool{
	"password": true, "passwd": true, "pass": true, "pwd": true, "pw": true, "secret": true,
	"mypassword": true, "mysecret": true, "changeme": true, "change_me": true, "changeit": true,
	"token": true, "mytoken": true, "apikey": true, "api_key": true, "none": true, "null": true,
	"nil": true, "true": true, "false": true, "undefined": true, "empty": true, "foobar": true,
	"foo": true, "bar": true, "test": true, "testing": true, "admin": true, "root": true,
	"user": true, "username": true, "guest": true, "default": true, "letmein": true, "qwerty": true,
	"hunter2": true, "s3cr3t": true, "p@ssw0rd": true, "passw0rd": true, "secret123": true,
	"password123": true, "required": true, "optional": true, "string": true,
}

// notPlaceholder reports whether a secret has none of the placeholder
// marks and is not one character repeated ("***", "xxx").
func notPlaceholder(secret []byte) bool {
	if len(secret) > 0 && len(bytes.Trim(secret, string(secret[:1]))) == 0 {
		return false
	}
	l := bytes.ToLower(secret)
	for _, m := range placeholderMarks {
		if bytes.Contains(l, m) {
			return false
		}
	}
	return true
}

// docWord reports whether a secret is one of the documentation words.
func docWord(secret []byte) bool {
	return docWords[string(bytes.ToLower(secret))]
}

// notVariable rejects values that reference a variable or a file instead
// of holding the secret: $VAR, %VAR%, @file, /path, and function calls.
func notVariable(secret []byte) bool {
	if len(secret) == 0 {
		return false
	}
	switch secret[0] {
	case '$', '%', '@', '`', '/', '~', '&', '*':
		return false
	}
	if bytes.HasSuffix(secret, []byte("()")) || bytes.Contains(secret, []byte("$(")) {
		return false
	}
	return true
}

// entropy returns the Shannon entropy of b in bits per byte.
func entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	n := float64(len(b))
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
