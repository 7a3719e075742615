package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/mamorisec/mamori/internal/inventory"
)

// Params are the argon2id cost parameters of a password hash.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Iterations is the number of passes over the memory.
	Iterations uint32
	// Parallelism is the number of lanes.
	Parallelism uint8
	// SaltLen is the length of the random salt in bytes.
	SaltLen uint32
	// KeyLen is the length of the derived key in bytes.
	KeyLen uint32
}

// DefaultParams are the argon2id parameters for new password hashes:
// 64 MiB of memory, 3 passes and 2 lanes, a 16-byte salt and a 32-byte key.
// This is the second recommended option of RFC 9106 (section 4) with the
// parallelism lowered from 4 to 2 to match a small server (lanes beyond
// the core count add no attacker cost and no speed). On a shared 2-core AMD
// EPYC one hash took 85-120 ms (BenchmarkHashPassword; the OWASP minimum
// m=19 MiB,t=2,p=1 took 29 ms), a fair price for a login; logins
// are also bounded by Config.MaxConcurrentHashes so a flood of login
// requests cannot exhaust memory (each hash holds Memory KiB while it runs).
var DefaultParams = Params{Memory: 64 * 1024, Iterations: 3, Parallelism: 2, SaltLen: 16, KeyLen: 32}

// Bounds on parameters accepted when parsing a stored hash, so that a
// corrupted or hostile hash string cannot make verification allocate
// unbounded memory or run for an unbounded time.
const (
	maxMemoryKiB   = 1 << 20 // 1 GiB
	maxIterations  = 64
	minSaltLen     = 8
	maxSaltLen     = 64
	minKeyLen      = 16
	maxKeyLen      = 64
	maxEncodedHash = 256
)

// Password length limits enforced by ValidatePassword and before hashing.
const (
	// MinPasswordLength is the minimum number of characters of a password.
	MinPasswordLength = 12
	// MaxPasswordLength is the maximum length of a password in bytes.
	MaxPasswordLength = 1024
)

// ErrMalformedHash reports a stored password hash that is not a valid
// argon2id PHC string.
var ErrMalformedHash = errors.New("malformed argon2id password hash")

var b64 = base64.RawStdEncoding

func (p Params) validate() error {
	switch {
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > maxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB out of range [8*parallelism, %d]", p.Memory, maxMemoryKiB)
	case p.Iterations < 1 || p.Iterations > maxIterations:
		return fmt.Errorf("argon2id iterations %d out of range [1, %d]", p.Iterations, maxIterations)
	case p.Parallelism < 1:
		return fmt.Errorf("argon2id parallelism must be at least 1")
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("argon2id salt length %d out of range [%d, %d]", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("argon2id key length %d out of range [%d, %d]", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// HashPassword hashes password with argon2id and a fresh random salt and
// returns the PHC string $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>
// with unpadded standard base64 salt and key.
func HashPassword(password string, p Params) (string, error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	if len(password) > MaxPasswordLength {
		return "", fmt.Errorf("password longer than %d bytes", MaxPasswordLength)
	}
	salt := make([]byte, p.SaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	return encodeHash(p, salt, key), nil
}

func encodeHash(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decodedHash is a parsed argon2id PHC string.
type decodedHash struct {
	params Params
	salt   []byte
	key    []byte
}

// decodeHash parses an argon2id PHC string. It accepts only version 19 and
// the parameter order m,t,p, and bounds every parameter.
func decodeHash(encoded string) (*decodedHash, error) {
	if len(encoded) > maxEncodedHash {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformedHash, maxEncodedHash)
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, fmt.Errorf("%w: want 5 '$'-separated fields", ErrMalformedHash)
	}
	if parts[1] != "argon2id" {
		return nil, fmt.Errorf("%w: algorithm %q is not argon2id", ErrMalformedHash, parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("%w: version field %q, want v=%d", ErrMalformedHash, parts[2], argon2.Version)
	}
	m, t, p, err := parseCost(parts[3])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	salt, err := b64.Strict().DecodeString(parts[4])
	if err != nil {
		return nil, fmt.Errorf("%w: salt is not unpadded base64", ErrMalformedHash)
	}
	key, err := b64.Strict().DecodeString(parts[5])
	if err != nil {
		return nil, fmt.Errorf("%w: key is not unpadded base64", ErrMalformedHash)
	}
	params := Params{Memory: m, Iterations: t, Parallelism: p, SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := params.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	return &decodedHash{params: params, salt: salt, key: key}, nil
}

// parseCost parses "m=<uint32>,t=<uint32>,p=<uint8>".
func parseCost(s string) (m, t uint32, p uint8, err error) {
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return 0, 0, 0, fmt.Errorf("parameters %q: want m=N,t=N,p=N", s)
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return 0, 0, 0, fmt.Errorf("parameters %q: field %d is not %s=", s, i+1, name)
		}
		bits := 32
		if name == "p" {
			bits = 8
		}
		// Reject signs and leading zeros so that every hash has one encoding.
		if v == "" || v[0] == '+' || (len(v) > 1 && v[0] == '0') {
			return 0, 0, 0, fmt.Errorf("parameters %q: bad %s value %q", s, name, v)
		}
		n, err := strconv.ParseUint(v, 10, bits)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("parameters %q: bad %s value %q", s, name, v)
		}
		vals[i] = n
	}
	return uint32(vals[0]), uint32(vals[1]), uint8(vals[2]), nil
}

// VerifyPassword reports whether password matches the argon2id PHC string
// encoded. The derived keys are compared in constant time. It returns an
// error wrapping ErrMalformedHash if encoded cannot be parsed.
func VerifyPassword(password, encoded string) (bool, error) {
	h, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	if len(password) > MaxPasswordLength {
		return false, nil
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Iterations, h.params.Memory, h.params.Parallelism, h.params.KeyLen)
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// NeedsRehash reports whether encoded was produced with parameters other
// than p (or cannot be parsed), so that the password should be hashed again
// with p at the next successful login.
func NeedsRehash(encoded string, p Params) bool {
	h, err := decodeHash(encoded)
	return err != nil || h.params != p
}

// commonPasswords are very common passwords of at least MinPasswordLength
// characters (shorter ones fail the length check anyway), compared
// case-insensitively.
var commonPasswords = map[string]bool{
	"123456789012":              true,
	"1234567890123":             true,
	"12345678901234":            true,
	"123123123123":              true,
	"1q2w3e4r5t6y":              true,
	"1qaz2wsx3edc":              true,
	"qwertyuiop12":              true,
	"qwertyuiopasdfghjkl":       true,
	"qwerty123456":              true,
	"password1234":              true,
	"password12345":             true,
	"password123456":            true,
	"passwordpassword":          true,
	"password123!":              true,
	"p@ssw0rd1234":              true,
	"iloveyou1234":              true,
	"letmein12345":              true,
	"welcome12345":              true,
	"administrator":             true,
	"administrator1":            true,
	"changeme1234":              true,
	"changemenow!":              true,
	"mamori123456":              true,
	"mamoripassword":            true,
	"adminadmin12":              true,
	"admin1234567":              true,
	"abcdefghijkl":              true,
	"abcd1234abcd":              true,
	"trustno1trustno1":          true,
	"correcthorsebatterystaple": true,
}

// PolicyError reports a password rejected by ValidatePassword.
type PolicyError struct {
	// Reason says what is wrong; it never contains the password.
	Reason string
}

func (e *PolicyError) Error() string { return "password rejected: " + e.Reason }

// ValidatePassword checks password against the password policy for the
// account username: at least MinPasswordLength characters, at most
// MaxPasswordLength bytes, valid UTF-8, not containing the username, not a
// single repeated character and not one of a list of very common passwords.
// It returns a *PolicyError.
func ValidatePassword(username, password string) error {
	switch {
	case !utf8.ValidString(password):
		return &PolicyError{Reason: "not valid UTF-8"}
	case utf8.RuneCountInString(password) < MinPasswordLength:
		return &PolicyError{Reason: fmt.Sprintf("shorter than %d characters", MinPasswordLength)}
	case len(password) > MaxPasswordLength:
		return &PolicyError{Reason: fmt.Sprintf("longer than %d bytes", MaxPasswordLength)}
	}
	lower := strings.ToLower(password)
	if u := strings.ToLower(strings.TrimSpace(username)); u != "" && strings.Contains(lower, u) {
		return &PolicyError{Reason: "contains the username"}
	}
	if first, size := utf8.DecodeRuneInString(password); strings.Count(password, string(first))*size == len(password) {
		return &PolicyError{Reason: "a single repeated character"}
	}
	if commonPasswords[lower] {
		return &PolicyError{Reason: "too common"}
	}
	return nil
}

// passwordAlphabet omits characters that are easily confused when read or
// typed: 0/O/o, 1/l/I.
const passwordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"

// GeneratedPasswordLength is the length of passwords made by
// GeneratePassword: 24 characters of a 56-letter alphabet, about 139 bits.
const GeneratedPasswordLength = 24

// GeneratePassword returns a random password of GeneratedPasswordLength
// characters drawn uniformly from an unambiguous alphabet with crypto/rand,
// for the first-run administrator account.
func GeneratePassword() string {
	const n = len(passwordAlphabet)
	// Reject bytes >= limit so every letter is equally likely.
	const limit = 256 - 256%n
	out := make([]byte, 0, GeneratedPasswordLength)
	var buf [64]byte
	for len(out) < GeneratedPasswordLength {
		rand.Read(buf[:])
		for _, b := range buf {
			if int(b) < limit && len(out) < GeneratedPasswordLength {
				out = append(out, passwordAlphabet[int(b)%n])
			}
		}
	}
	return string(out)
}

// ReadPasswordFile reads a password from the file at path (for example a
// container secret). One trailing line ending is removed. The password is
// never included in errors.
func ReadPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	defer f.Close()
	b, err := inventory.ReadAllLimited(f, MaxPasswordLength+2)
	if err != nil {
		return "", fmt.Errorf("read password file %s: %w", path, err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return s, nil
}

// AdminPassword chooses the initial password of the administrator account
// username. If file is not empty the password is read from that file,
// otherwise if envValue (the value of an environment variable, named
// envName in errors) is not empty it is used, otherwise a password is
// generated with GeneratePassword and generated is true; the caller must
// then show it to the operator once. A supplied password must pass
// ValidatePassword. The password never appears in errors.
func AdminPassword(username, file, envName, envValue string) (password string, generated bool, err error) {
	switch {
	case file != "":
		password, err = ReadPasswordFile(file)
		if err != nil {
			return "", false, err
		}
		if err := ValidatePassword(username, password); err != nil {
			return "", false, fmt.Errorf("admin password from file %s: %w", file, err)
		}
		return password, false, nil
	case envValue != "":
		if err := ValidatePassword(username, envValue); err != nil {
			return "", false, fmt.Errorf("admin password from environment variable %s: %w", envName, err)
		}
		return envValue, false, nil
	}
	return GeneratePassword(), true, nil
}
