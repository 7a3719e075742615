package signature

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mamorisec/mamori/internal/inventory"
)

// The media type and annotation of cosign's simple-signing layers.
const (
	MediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	AnnotationSignature    = "dev.cosignproject.cosign/signature"
)

// Limits on what Verify reads from a registry.
const (
	// MaxManifestSize is the largest signature manifest read.
	MaxManifestSize = 1 << 20
	// MaxSignatures is the most signature layers examined.
	MaxSignatures = 64
	// MaxSignatureSize is the longest signature annotation (base64) read;
	// an RSA-8192 signature takes 1368 characters.
	MaxSignatureSize = 4 << 10
)

// ErrUnsigned is returned, wrapped, when the image has no signature tag.
var ErrUnsigned = errors.New("image has no cosign signature")

// Verified is a signature that verified.
type Verified struct {
	// KeyID is the ID of the public key it verified against.
	KeyID string `json:"keyId"`
	// Digest is the signed image's manifest digest.
	Digest string `json:"digest"`
	// DockerReference is the repository the payload names.
	DockerReference string `json:"dockerReference"`
	// Optional is the payload's optional section.
	Optional map[string]any `json:"optional,omitempty"`
}

// Options configure Verify.
type Options struct {
	// Keys are the trusted public keys; a signature must verify against
	// one of them. Verify fails when there is none.
	Keys []*PublicKey
	// Identities are the repositories a payload's docker-reference may
	// name, compared as go-containerregistry normalizes them ("alpine" is
	// "index.docker.io/library/alpine"). Empty means the image's own
	// repository.
	Identities []string
	// AnyIdentity accepts any docker-reference, for images copied between
	// registries after signing. The digest is still checked.
	AnyIdentity bool
	// Remote are options for go-containerregistry (authentication,
	// transport); Verify adds the context.
	Remote []remote.Option
}

// SignatureTag returns the tag cosign stores an image's signatures under:
// sha256-HEX.sig in the image's repository.
func SignatureTag(ref name.Digest) (name.Tag, error) {
	alg, hexPart, ok := strings.Cut(ref.DigestStr(), ":")
	if !ok {
		return name.Tag{}, fmt.Errorf("%s: no digest", ref)
	}
	return ref.Context().Tag(alg + "-" + hexPart + ".sig"), nil
}

// Verify fetches the cosign signatures of the image ref and returns those
// that verify against one of opts.Keys, name ref's digest, and name an
// accepted repository. When none does it returns an error saying why each
// signature was rejected (wrapping ErrUnsigned when there is no signature
// at all); a registry failure is also an error. Signatures that fail are
// ignored when another verifies.
func Verify(ctx context.Context, ref name.Digest, opts Options) ([]Verified, error) {
	if len(opts.Keys) == 0 {
		return nil, fmt.Errorf("verifying %s: no trusted public key given", ref)
	}
	if !validDigest(ref.DigestStr()) {
		return nil, fmt.Errorf("verifying %s: %q is not a sha256 or sha512 digest", ref, ref.DigestStr())
	}
	identities, err := identities(ref, opts)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", ref, err)
	}
	tag, err := SignatureTag(ref)
	if err != nil {
		return nil, err
	}
	ropts := append([]remote.Option{remote.WithContext(ctx)}, opts.Remote...)
	manifest, err := fetchManifest(tag, ropts)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: signature %s: %w", ref, tag, err)
	}
	var (
		out      []Verified
		problems []string
	)
	n := 0
	for i, layer := range manifest.Layers {
		if layer.MediaType != MediaTypeSimpleSigning {
			continue
		}
		if n++; n > MaxSignatures {
			problems = append(problems, fmt.Sprintf("more than %d signatures; the rest were not examined", MaxSignatures))
			break
		}
		v, err := verifyLayer(ref, layer, identities, opts.Keys, ropts)
		if err != nil {
			problems = append(problems, fmt.Sprintf("layer %d (%s): %v", i, layer.Digest, err))
			continue
		}
		out = append(out, *v)
	}
	if len(out) > 0 {
		return out, nil
	}
	if n == 0 {
		return nil, fmt.Errorf("verifying %s: %s has no %s layer: %w", ref, tag, MediaTypeSimpleSigning, ErrUnsigned)
	}
	return nil, fmt.Errorf("verifying %s: no valid signature: %s", ref, strings.Join(problems, "; "))
}

// identities returns the normalized repository names a payload may name,
// or nil when any is accepted.
func identities(ref name.Digest, opts Options) ([]string, error) {
	if opts.AnyIdentity {
		return nil, nil
	}
	if len(opts.Identities) == 0 {
		return []string{ref.Context().Name()}, nil
	}
	var out []string
	for _, id := range opts.Identities {
		repo, err := name.NewRepository(id)
		if err != nil {
			return nil, fmt.Errorf("identity %q is not a repository: %w", id, err)
		}
		out = append(out, repo.Name())
	}
	return out, nil
}

// fetchManifest reads the signature tag's manifest, at most
// MaxManifestSize bytes, and checks that it is an image manifest.
func fetchManifest(tag name.Tag, ropts []remote.Option) (*v1.Manifest, error) {
	head, err := remote.Head(tag, ropts...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("not found: %w", ErrUnsigned)
		}
		return nil, err
	}
	if head.Size > MaxManifestSize {
		return nil, fmt.Errorf("manifest is %d bytes, more than the %d allowed", head.Size, MaxManifestSize)
	}
	if head.MediaType != types.OCIManifestSchema1 && head.MediaType != types.DockerManifestSchema2 {
		return nil, fmt.Errorf("media type %q is not an image manifest", head.MediaType)
	}
	desc, err := remote.Get(tag, ropts...)
	if err != nil {
		return nil, err
	}
	if len(desc.Manifest) > MaxManifestSize {
		return nil, fmt.Errorf("manifest is %d bytes, more than the %d allowed", len(desc.Manifest), MaxManifestSize)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return m, nil
}

// verifyLayer checks one simple-signing layer: its signature annotation,
// its payload blob, the signature over the payload, the digest and the
// identity.
func verifyLayer(ref name.Digest, layer v1.Descriptor, identities []string, keys []*PublicKey, ropts []remote.Option) (*Verified, error) {
	b64, ok := layer.Annotations[AnnotationSignature]
	if !ok {
		return nil, fmt.Errorf("no %s annotation", AnnotationSignature)
	}
	if len(b64) > MaxSignatureSize {
		return nil, fmt.Errorf("%s annotation is %d bytes, more than the %d allowed", AnnotationSignature, len(b64), MaxSignatureSize)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%s annotation is not base64: %w", AnnotationSignature, err)
	}
	if layer.Size > MaxPayloadSize {
		return nil, fmt.Errorf("payload is %d bytes, more than the %d allowed", layer.Size, MaxPayloadSize)
	}
	blob, err := remote.Layer(ref.Context().Digest(layer.Digest.String()), ropts...)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	rc, err := blob.Compressed()
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	defer rc.Close()
	payload, err := inventory.ReadAllLimited(rc, MaxPayloadSize)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	// Verify before parsing: nothing unsigned is interpreted.
	var key *PublicKey
	for _, k := range keys {
		if k.Verify(payload, sig) == nil {
			key = k
			break
		}
	}
	if key == nil {
		return nil, fmt.Errorf("signature does not verify against any of the %d trusted keys", len(keys))
	}
	p, err := ParsePayload(payload)
	if err != nil {
		return nil, err
	}
	if p.Digest != ref.DigestStr() {
		return nil, fmt.Errorf("payload signs %s, not this image", p.Digest)
	}
	if identities != nil {
		named, err := name.ParseReference(p.DockerReference)
		if err != nil {
			return nil, fmt.Errorf("payload docker-reference %q is not an image reference: %w", p.DockerReference, err)
		}
		if !slices.Contains(identities, named.Context().Name()) {
			return nil, fmt.Errorf("payload docker-reference %q is not an accepted repository (%s)", p.DockerReference, strings.Join(identities, ", "))
		}
	}
	return &Verified{KeyID: key.ID, Digest: p.Digest, DockerReference: p.DockerReference, Optional: p.Optional}, nil
}
