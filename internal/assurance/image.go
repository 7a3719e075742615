package assurance

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/mamorisec/mamori/internal/signature"
)

// Duration is a policy duration such as max_image_age. Its text form is a
// whole number of hours, days or weeks: "36h", "90d", "12w".
type Duration time.Duration

// maxDuration bounds durations to 100 years, far from overflow.
const maxDuration = 100 * 365 * 24 * time.Hour

// ParseDuration parses a policy duration: a positive whole number followed
// by h (hours), d (days of 24 hours) or w (weeks).
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("%q is not a duration: want a whole number of hours, days or weeks, such as 36h, 90d or 12w", s)
	if len(s) < 2 {
		return 0, bad
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	case 'w':
		unit = 7 * 24 * time.Hour
	default:
		return 0, bad
	}
	digits := s[:len(s)-1]
	if strings.Trim(digits, "0123456789") != "" {
		return 0, bad
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > int64(maxDuration/unit) {
		return 0, fmt.Errorf("%q is longer than 100 years", s)
	}
	if n == 0 {
		return 0, fmt.Errorf("%q is not a positive duration", s)
	}
	return Duration(time.Duration(n) * unit), nil
}

// String returns the duration in the largest of w, d and h that divides
// it ("90d"); a duration that is not whole hours falls back to
// time.Duration's form.
func (d Duration) String() string {
	td := time.Duration(d)
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}} {
		if td != 0 && td%u.unit == 0 {
			return strconv.FormatInt(int64(td/u.unit), 10) + u.suffix
		}
	}
	return td.String()
}

// MarshalText encodes the duration as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses the duration as ParseDuration does.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// maxClockSkew is how far in the future an image's creation time may be
// before max_image_age rejects it: builders' clocks differ a little.
const maxClockSkew = 10 * time.Minute

// BaseImage is a trusted base image: an image is built on it when its
// layer diffIDs are the first layers of the image.
type BaseImage struct {
	// Name is the base image's reference, for messages and for resolving
	// Layers ("docker.io/library/debian:12").
	Name string `json:"name"`
	// Layers are the base image's layer diffIDs, bottom first. Empty means
	// not resolved yet (see Policy.ResolveBaseImages); an unresolved entry
	// matches no image.
	Layers []string `json:"layers,omitempty"`
}

// ResolveBaseImages fills in the layers of the trusted base images that
// the policy names without them, by calling resolve with each name (the
// server looks the reference up in its registry when a policy is saved).
// resolve must return the image's diffIDs, bottom first.
func (p *Policy) ResolveBaseImages(resolve func(ref string) ([]string, error)) error {
	for i := range p.Controls.TrustedBaseImages {
		b := &p.Controls.TrustedBaseImages[i]
		if len(b.Layers) > 0 {
			continue
		}
		layers, err := resolve(b.Name)
		if err != nil {
			return fmt.Errorf("trusted_base_images[%d] %s: %w", i, b.Name, err)
		}
		if err := checkDiffIDs(layers); err != nil {
			return fmt.Errorf("trusted_base_images[%d] %s: %w", i, b.Name, err)
		}
		if len(layers) == 0 {
			return fmt.Errorf("trusted_base_images[%d] %s: the image has no layers", i, b.Name)
		}
		b.Layers = slices.Clone(layers)
	}
	return nil
}

// checkDiffIDs checks that each entry is a sha256 digest.
func checkDiffIDs(layers []string) error {
	for j, l := range layers {
		if !isSHA256(l) {
			return fmt.Errorf("layers[%d]: %q is not a diffID (sha256: and 64 lowercase hex digits)", j, l)
		}
	}
	return nil
}

func isSHA256(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	return strings.Trim(h, "0123456789abcdef") == ""
}

// SignatureControl requires a cosign signature by one of its keys.
type SignatureControl struct {
	// Keys are the trusted public keys.
	Keys []*signature.PublicKey `json:"keys"`
	// Identities are the repositories a signature's docker-reference may
	// name; empty means the image's own repository.
	Identities []string `json:"identities,omitempty"`
}

// VerifyOptions returns the signature.Options that check an image against
// the control; the caller adds registry options and passes the result to
// signature.Verify, whose answer becomes Subject.Signatures and
// Subject.SignatureError.
func (c *SignatureControl) VerifyOptions() signature.Options {
	return signature.Options{Keys: c.Keys, Identities: c.Identities}
}

// checkImageAge is the max_image_age control.
func checkImageAge(limit Duration, s *Subject) (Violation, bool) {
	v := Violation{Control: ControlImageAge}
	switch {
	case s.Now.IsZero():
		v.Message = "no evaluation time was given, so the image's age cannot be checked"
	case s.Created.IsZero():
		v.Message = "the image has no creation time in its configuration, so its age is unknown"
	case s.Created.After(s.Now.Add(maxClockSkew)):
		v.Message = fmt.Sprintf("the image's creation time %s is in the future (evaluated at %s)",
			s.Created.UTC().Format(time.RFC3339), s.Now.UTC().Format(time.RFC3339))
	default:
		age := s.Now.Sub(s.Created)
		if age <= time.Duration(limit) {
			return v, false
		}
		v.Message = fmt.Sprintf("the image was created %s, %s ago, more than the %s allowed",
			s.Created.UTC().Format(time.RFC3339), ageText(age), limit)
	}
	return v, true
}

// ageText renders an age in days, or hours when under two days.
func ageText(age time.Duration) string {
	if age < 48*time.Hour {
		return plural(int(age/time.Hour), "hour")
	}
	return plural(int(age/(24*time.Hour)), "day")
}

// checkBaseImage is the trusted_base_images control.
func checkBaseImage(bases []BaseImage, s *Subject) (Violation, bool) {
	v := Violation{Control: ControlBaseImages}
	if len(s.Layers) == 0 {
		v.Message = "the image's layers are unknown, so its base image cannot be checked"
		return v, true
	}
	var names, unresolved []string
	for _, b := range bases {
		if len(b.Layers) == 0 {
			unresolved = append(unresolved, b.Name)
			continue
		}
		if len(b.Layers) <= len(s.Layers) && slices.Equal(b.Layers, s.Layers[:len(b.Layers)]) {
			return v, false
		}
		names = append(names, b.Name)
	}
	details := []string{"its first layer is " + s.Layers[0]}
	if len(names) > 0 {
		details = append(details, "trusted: "+list(names))
	}
	if len(unresolved) > 0 {
		details = append(details, fmt.Sprintf("%s never resolved to layers: %s", plural(len(unresolved), "base image"), list(unresolved)))
	}
	v.Message = fmt.Sprintf("the image is not built on a trusted base image (%s)", strings.Join(details, "; "))
	return v, true
}

// checkLabels is the required_labels control.
func checkLabels(required map[string]string, s *Subject) (Violation, bool) {
	keys := make([]string, 0, len(required))
	for k := range required {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var problems []string
	for _, k := range keys {
		pattern := required[k]
		got, ok := s.Labels[k]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s is missing", k))
		case pattern != "" && !matchGlob(pattern, got):
			problems = append(problems, fmt.Sprintf("%s is %q, want %q", k, got, pattern))
		}
	}
	if len(problems) == 0 {
		return Violation{}, false
	}
	return Violation{Control: ControlLabels,
		Message: fmt.Sprintf("%s missing or not matching: %s", plural(len(problems), "required label"), list(problems))}, true
}

// matchGlob reports whether s matches pattern, in which "*" matches any
// run of characters ("/" included) and every other character itself.
func matchGlob(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// checkSignature is the signature_required control: one of the subject's
// verified signatures must be by a key of the control and for the
// subject's digest.
func checkSignature(c *SignatureControl, s *Subject) (Violation, bool) {
	v := Violation{Control: ControlSignature}
	if s.Digest == "" {
		v.Message = "the image's manifest digest is unknown, so its signature cannot be checked"
		return v, true
	}
	var others []string
	for _, sig := range s.Signatures {
		if sig.Digest != s.Digest {
			continue
		}
		if slices.ContainsFunc(c.Keys, func(k *signature.PublicKey) bool { return k.ID == sig.KeyID }) {
			return v, false
		}
		others = append(others, sig.KeyID)
	}
	switch {
	case len(others) > 0:
		v.Message = "the image is signed, but not by a key of the policy: signed by " + list(sortedUnique(others))
	case s.SignatureError != nil:
		v.Message = "no valid signature by a trusted key: " + s.SignatureError.Error()
	default:
		v.Message = "no valid signature by a trusted key"
	}
	return v, true
}

// validIdentity checks a signature_required identity.
func validIdentity(id string) error {
	_, err := name.NewRepository(id)
	return err
}
