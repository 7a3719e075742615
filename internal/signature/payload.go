package signature

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// PayloadType is the critical.type of a cosign simple-signing payload.
const PayloadType = "cosign container image signature"

// MaxPayloadSize is the largest payload read. cosign's payloads are a few
// hundred bytes; the limit leaves room for generous optional annotations.
const MaxPayloadSize = 64 << 10

// Payload is a parsed simple-signing payload: the statement a signature
// signs.
type Payload struct {
	// DockerReference is critical.identity.docker-reference: the
	// repository the signer meant to sign in.
	DockerReference string
	// Digest is critical.image.docker-manifest-digest: the signed image.
	Digest string
	// Optional is the free-form optional section; nil when absent.
	Optional map[string]any
}

// The payload's JSON shape. Unknown keys in critical are rejected: the
// simple-signing format requires a verifier to refuse what it does not
// understand there.
type payloadJSON struct {
	Critical *struct {
		Identity *struct {
			DockerReference *string `json:"docker-reference"`
		} `json:"identity"`
		Image *struct {
			DockerManifestDigest *string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type *string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// ParsePayload parses and checks a simple-signing payload: one JSON object
// with critical.identity.docker-reference, critical.image.
// docker-manifest-digest (a sha256 or sha512 digest) and critical.type
// equal to PayloadType. Keys other than critical and optional, unknown
// keys inside critical, duplicate keys and trailing data are errors.
func ParsePayload(data []byte) (*Payload, error) {
	if len(data) > MaxPayloadSize {
		return nil, fmt.Errorf("payload is %d bytes, more than the %d allowed", len(data), MaxPayloadSize)
	}
	if err := checkDuplicateKeys(data); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("payload is not a JSON object: %w", err)
	}
	for k := range top {
		if k != "critical" && k != "optional" {
			return nil, fmt.Errorf("payload has unknown key %q (want critical and optional)", k)
		}
	}
	crit, ok := top["critical"]
	if !ok || string(crit) == "null" {
		return nil, errors.New("payload has no critical section")
	}
	var pj payloadJSON
	dec := json.NewDecoder(bytes.NewReader(crit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pj.Critical); err != nil {
		return nil, fmt.Errorf("payload critical section: %w", err)
	}
	if o, ok := top["optional"]; ok && string(o) != "null" {
		if err := json.Unmarshal(o, &pj.Optional); err != nil {
			return nil, fmt.Errorf("payload optional section is not an object: %w", err)
		}
	}
	c := pj.Critical
	switch {
	case c.Type == nil:
		return nil, errors.New("payload has no critical.type")
	case *c.Type != PayloadType:
		return nil, fmt.Errorf("payload critical.type is %q, want %q", *c.Type, PayloadType)
	case c.Image == nil || c.Image.DockerManifestDigest == nil:
		return nil, errors.New("payload has no critical.image.docker-manifest-digest")
	case c.Identity == nil || c.Identity.DockerReference == nil:
		return nil, errors.New("payload has no critical.identity.docker-reference")
	}
	p := &Payload{DockerReference: *c.Identity.DockerReference, Digest: *c.Image.DockerManifestDigest, Optional: pj.Optional}
	if !validDigest(p.Digest) {
		return nil, fmt.Errorf("payload docker-manifest-digest %q is not a sha256 or sha512 digest", p.Digest)
	}
	return p, nil
}

// validDigest reports whether d is "sha256:" or "sha512:" followed by the
// right number of lowercase hex digits.
func validDigest(d string) bool {
	alg, hexPart, ok := strings.Cut(d, ":")
	if !ok {
		return false
	}
	switch {
	case alg == "sha256" && len(hexPart) == 64, alg == "sha512" && len(hexPart) == 128:
	default:
		return false
	}
	for _, r := range hexPart {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// checkDuplicateKeys rejects a JSON document in which an object repeats a
// key: encoding/json keeps the last value, another verifier might keep
// the first, and a signed statement must not mean two things. It also
// rejects data after the first value.
func checkDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walkValue(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data follows the JSON object")
	}
	return nil
}

// maxDepth bounds the nesting walkValue follows.
const maxDepth = 64

func walkValue(dec *json.Decoder, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("JSON nested deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch delim {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return fmt.Errorf("invalid JSON: %w", err)
			}
			key, _ := kt.(string)
			if seen[key] {
				return fmt.Errorf("key %q appears twice in one object", key)
			}
			seen[key] = true
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return fmt.Errorf("invalid JSON: %w", err)
	}
	return nil
}
