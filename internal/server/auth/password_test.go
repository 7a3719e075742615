package auth

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/mamorisec/mamori/internal/testenv"
)

// cheapParams keep tests fast; they are valid but far too weak for use.
var cheapParams = Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// refVector is the argon2id known-answer vector of the reference
// implementation (password "password", salt "somesalt", t=2, m=2^16 KiB,
// p=1, 32-byte tag), as printed by `argon2 somesalt -id -t 2 -m 16 -p 1 -e`.
const refVector = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"

func TestKnownAnswer(t *testing.T) {
	h, err := decodeHash(refVector)
	if err != nil {
		t.Fatal(err)
	}
	want := Params{Memory: 65536, Iterations: 2, Parallelism: 1, SaltLen: 8, KeyLen: 32}
	if h.params != want || string(h.salt) != "somesalt" {
		t.Errorf("decoded params %+v salt %q, want %+v salt somesalt", h.params, h.salt, want)
	}
	for _, tc := range []struct {
		password string
		want     bool
	}{
		{"password", true},
		{"Password", false},
		{"password ", false},
		{"", false},
	} {
		got, err := VerifyPassword(tc.password, refVector)
		if err != nil || got != tc.want {
			t.Errorf("VerifyPassword(%q, refVector) = %v, %v; want %v", tc.password, got, err, tc.want)
		}
	}
	if enc := encodeHash(h.params, h.salt, h.key); enc != refVector {
		t.Errorf("re-encoded vector %q, want %q", enc, refVector)
	}
}

// TestReferenceCLI cross-checks hashing and encoding against the argon2
// command line tool of the reference implementation (Debian package argon2).
func TestReferenceCLI(t *testing.T) {
	bin := testenv.NeedCommand(t, "argon2")
	password := GeneratePassword()
	const salt = "mamori-salt-0123"
	cmd := exec.Command(bin, salt, "-id", "-t", "2", "-m", "10", "-p", "2", "-l", "32", "-e")
	cmd.Stdin = strings.NewReader(password)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("argon2: %v", err)
	}
	enc := strings.TrimSpace(string(out))
	if ok, err := VerifyPassword(password, enc); !ok || err != nil {
		t.Errorf("VerifyPassword of reference hash %q = %v, %v", enc, ok, err)
	}
	p := Params{Memory: 1 << 10, Iterations: 2, Parallelism: 2, SaltLen: uint32(len(salt)), KeyLen: 32}
	key := argon2.IDKey([]byte(password), []byte(salt), p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	if ours := encodeHash(p, []byte(salt), key); ours != enc {
		t.Errorf("our encoding %q differs from reference %q", ours, enc)
	}
}

func TestHashRoundTrip(t *testing.T) {
	for _, p := range []Params{
		cheapParams,
		{Memory: 256, Iterations: 2, Parallelism: 2, SaltLen: 32, KeyLen: 64},
		{Memory: 8, Iterations: 1, Parallelism: 1, SaltLen: 8, KeyLen: 16},
	} {
		enc, err := HashPassword("s3cret passphrase", p)
		if err != nil {
			t.Fatalf("HashPassword(%+v): %v", p, err)
		}
		h, err := decodeHash(enc)
		if err != nil {
			t.Fatalf("decodeHash(%q): %v", enc, err)
		}
		if h.params != p {
			t.Errorf("params of %q = %+v, want %+v", enc, h.params, p)
		}
		if ok, err := VerifyPassword("s3cret passphrase", enc); !ok || err != nil {
			t.Errorf("VerifyPassword(right) = %v, %v", ok, err)
		}
		if ok, err := VerifyPassword("s3cret passphrasf", enc); ok || err != nil {
			t.Errorf("VerifyPassword(wrong) = %v, %v", ok, err)
		}
		if NeedsRehash(enc, p) {
			t.Errorf("NeedsRehash(%q, same params) = true", enc)
		}
		q := p
		q.Iterations++
		if !NeedsRehash(enc, q) {
			t.Errorf("NeedsRehash(%q, more iterations) = false", enc)
		}
		again, _ := HashPassword("s3cret passphrase", p)
		if again == enc {
			t.Errorf("two hashes of one password are equal: salt not random")
		}
	}
	if !NeedsRehash("garbage", cheapParams) {
		t.Error("NeedsRehash(garbage) = false")
	}
}

func TestHashPasswordRejectsBadParams(t *testing.T) {
	for _, p := range []Params{
		{},
		{Memory: 64, Iterations: 0, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Iterations: 1, Parallelism: 0, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 8},
		{Memory: 1<<20 + 1, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
	} {
		if _, err := HashPassword("whatever password", p); err == nil {
			t.Errorf("HashPassword with %+v: no error", p)
		}
	}
	if _, err := HashPassword(strings.Repeat("x", MaxPasswordLength+1), cheapParams); err == nil {
		t.Error("HashPassword accepted an over-long password")
	}
}

func TestDecodeHashMalformed(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"bcrypt", "$2b$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234"},
		{"argon2i", strings.Replace(refVector, "argon2id", "argon2i", 1)},
		{"old version", strings.Replace(refVector, "v=19", "v=16", 1)},
		{"no version", "$argon2id$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
		{"param order", strings.Replace(refVector, "m=65536,t=2,p=1", "t=2,m=65536,p=1", 1)},
		{"leading zero", strings.Replace(refVector, "t=2", "t=02", 1)},
		{"plus sign", strings.Replace(refVector, "t=2", "t=+2", 1)},
		{"p too big", strings.Replace(refVector, "p=1", "p=256", 1)},
		{"huge memory", strings.Replace(refVector, "m=65536", "m=4294967295", 1)},
		{"zero iterations", strings.Replace(refVector, "t=2", "t=0", 1)},
		{"padded salt", strings.Replace(refVector, "c29tZXNhbHQ", "c29tZXNhbHQ=", 1)},
		{"bad base64 key", refVector[:len(refVector)-1] + "!"},
		{"non-canonical key", refVector[:len(refVector)-1] + "d"},
		{"short key", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1a"},
		{"extra field", refVector + "$x"},
		{"too long", refVector + strings.Repeat("A", 300)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeHash(tc.in)
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("decodeHash(%q) = %v, want ErrMalformedHash", tc.in, err)
			}
			if ok, err := VerifyPassword("password", tc.in); ok || err == nil {
				t.Errorf("VerifyPassword(%q) = %v, %v; want false and an error", tc.in, ok, err)
			}
		})
	}
}

func TestTamperedHash(t *testing.T) {
	enc, err := HashPassword("tamper-proof passphrase", cheapParams)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(enc, '$')
	flip := func(s string, at int) string {
		c := byte('A')
		if s[at] == 'A' {
			c = 'B'
		}
		return s[:at] + string(c) + s[at+1:]
	}
	for name, tampered := range map[string]string{
		"key":  flip(enc, i+1),
		"salt": flip(enc, strings.LastIndexByte(enc[:i], '$')+1),
		"cost": strings.Replace(enc, "t=1", "t=2", 1),
	} {
		if ok, err := VerifyPassword("tamper-proof passphrase", tampered); ok || err != nil {
			t.Errorf("tampered %s: VerifyPassword = %v, %v; want false, nil", name, ok, err)
		}
	}
}

func TestValidatePassword(t *testing.T) {
	for _, tc := range []struct {
		name, user, password string
		ok                   bool
	}{
		{"good", "alice", "purple-otter-canoe", true},
		{"exactly 12", "alice", "Xk3#vP9q!mZ2", true},
		{"11 chars", "alice", "Xk3#vP9q!mZ", false},
		{"12 runes multibyte", "alice", "ĳklmnöpqrstü", true},
		{"empty", "alice", "", false},
		{"is username", "administrator-x", "Administrator-X", false},
		{"contains username", "alice", "alice-in-wonderland", false},
		{"common", "bob", "Password1234", false},
		{"common 2", "bob", "qwertyuiop12", false},
		{"repeated", "bob", "aaaaaaaaaaaaaaaa", false},
		{"repeated multibyte", "bob", "éééééééééééé", false},
		{"too long", "bob", strings.Repeat("ab", MaxPasswordLength), false},
		{"invalid utf8", "bob", "abcdefghijk\xff\xfe", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePassword(tc.user, tc.password)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidatePassword(%q, %q) = %v, want ok=%v", tc.user, tc.password, err, tc.ok)
			}
			var pe *PolicyError
			if err != nil && (!errors.As(err, &pe) || (tc.password != "" && strings.Contains(err.Error(), tc.password))) {
				t.Errorf("error %q is not a *PolicyError or contains the password", err)
			}
		})
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		p := GeneratePassword()
		if len(p) != GeneratedPasswordLength {
			t.Fatalf("len(%q) = %d", p, len(p))
		}
		if strings.Trim(p, passwordAlphabet) != "" {
			t.Fatalf("%q has characters outside the alphabet", p)
		}
		if strings.ContainsAny(p, "0Oo1lI") {
			t.Fatalf("%q has ambiguous characters", p)
		}
		if err := ValidatePassword("admin", p); err != nil {
			t.Fatalf("generated password fails policy: %v", err)
		}
		if seen[p] {
			t.Fatalf("duplicate password %q", p)
		}
		seen[p] = true
	}
}

func TestAdminPassword(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := "river-stone-lantern-42"
	for _, tc := range []struct {
		name, file, env string
		want            string
		generated       bool
		wantErr         string
	}{
		{name: "file", file: write("good", good+"\n"), want: good},
		{name: "file crlf", file: write("crlf", good+"\r\n"), want: good},
		{name: "file wins over env", file: write("good2", good), env: "other-long-password-1", want: good},
		{name: "env", env: good, want: good},
		{name: "generated", generated: true},
		{name: "empty file", file: write("empty", "\n"), wantErr: "is empty"},
		{name: "missing file", file: filepath.Join(dir, "nope"), wantErr: "no such file"},
		{name: "weak file", file: write("weak", "admin"), wantErr: "shorter than 12"},
		{name: "huge file", file: write("huge", strings.Repeat("x", 5000)), wantErr: "huge"},
		{name: "weak env", env: "changeme1234", wantErr: "MAMORI_ADMIN_PASSWORD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, generated, err := AdminPassword("admin", tc.file, "MAMORI_ADMIN_PASSWORD", tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				for _, secret := range []string{"changeme1234", "admin\n"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q reveals the password", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if generated != tc.generated {
				t.Errorf("generated = %v, want %v", generated, tc.generated)
			}
			if tc.generated {
				if len(got) != GeneratedPasswordLength {
					t.Errorf("generated password has length %d", len(got))
				}
			} else if got != tc.want {
				t.Errorf("password = %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzDecodeHash(f *testing.F) {
	f.Add(refVector)
	f.Add("$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := decodeHash(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("error %v does not wrap ErrMalformedHash", err)
			}
			return
		}
		if err := h.params.validate(); err != nil {
			t.Fatalf("accepted invalid params: %v", err)
		}
		// Every accepted hash has exactly one encoding.
		if enc := encodeHash(h.params, h.salt, h.key); enc != s {
			t.Fatalf("re-encoding %q gives %q", s, enc)
		}
	})
}
