package signature

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mamorisec/mamori/internal/testenv"
)

// The signer below writes signatures the way cosign sign --key does
// (docs/decisions/0009-cosign-signatures.md says why it is not cosign's
// own code): a simple-signing payload naming the repository and digest,
// signed over its exact bytes, stored as a layer of the sha256-HEX.sig
// tag's image manifest with the base64 signature as an annotation.

// pushRandom pushes a random image to repo on the registry and returns its
// digest reference.
func pushRandom(t *testing.T, host, repo string) name.Digest {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(host + "/" + repo + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("pushing %s: %v", tag, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(d.String())
}

// cosignPayload is the payload cosign signs for an image.
func cosignPayload(t testing.TB, dockerRef, digest string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": dockerRef},
			"image":    map[string]string{"docker-manifest-digest": digest},
			"type":     PayloadType,
		},
		"optional": nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sigLayer is one layer of a signature manifest.
type sigLayer struct {
	payload     []byte
	annotations map[string]string
}

// signed returns a layer holding payload signed by k.
func signed(t testing.TB, k crypto.Signer, payload []byte) sigLayer {
	return sigLayer{payload: payload, annotations: map[string]string{
		AnnotationSignature: base64.StdEncoding.EncodeToString(signBytes(t, k, payload)),
	}}
}

// attach writes layers as the signature manifest of ref, replacing any.
func attach(t *testing.T, ref name.Digest, layers ...sigLayer) {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, l := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:       static.NewLayer(l.payload, MediaTypeSimpleSigning),
			Annotations: l.annotations,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tag, err := SignatureTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("pushing %s: %v", tag, err)
	}
}

func TestSignatureTag(t *testing.T) {
	ref, err := name.NewDigest("registry.example.com/team/app@" + testDigest)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := SignatureTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if want := "registry.example.com/team/app:sha256-" + strings.TrimPrefix(testDigest, "sha256:") + ".sig"; tag.String() != want {
		t.Errorf("SignatureTag = %s, want %s", tag, want)
	}
}

// TestVerifyRegistry signs images in a real registry (Debian's
// docker-registry) and checks what Verify accepts and rejects.
func TestVerifyRegistry(t *testing.T) {
	reg := testenv.Distribution(t, false)
	key, otherKey := newECDSA(t), newECDSA(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	trusted := []*PublicKey{mustKey(t, key)}
	repo := reg.Host + "/team/app"
	// Another image, whose valid signature is replayed onto the image
	// under test.
	other := pushRandom(t, reg.Host, "team/other")
	otherPayload := cosignPayload(t, reg.Host+"/team/other", other.DigestStr())

	tests := []struct {
		name string
		// sign attaches signatures to the image; nil leaves it unsigned.
		sign func(t *testing.T, ref name.Digest)
		opts Options
		// wantKey is the ID of the key that verified; "" wants an error
		// containing wantErr.
		wantKey, wantErr string
		unsigned         bool // the error wraps ErrUnsigned
	}{
		{name: "signed", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, signed(t, key, cosignPayload(t, repo, ref.DigestStr())))
		}, wantKey: trusted[0].ID},
		{name: "unsigned", wantErr: "no cosign signature", unsigned: true},
		{name: "signature manifest without signature layers", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref)
		}, wantErr: "no cosign signature", unsigned: true},
		{name: "another key", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, signed(t, otherKey, cosignPayload(t, repo, ref.DigestStr())))
		}, wantErr: "does not verify against any of the 1 trusted keys"},
		{name: "replayed from another image", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, signed(t, key, otherPayload))
		}, wantErr: "payload signs " + other.DigestStr() + ", not this image"},
		{name: "tampered payload", sign: func(t *testing.T, ref name.Digest) {
			l := signed(t, key, cosignPayload(t, repo, ref.DigestStr()))
			l.payload = []byte(strings.Replace(string(l.payload), "team/app", "team/evil", 1))
			attach(t, ref, l)
		}, wantErr: "does not verify"},
		{name: "wrong docker-reference", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, signed(t, key, cosignPayload(t, reg.Host+"/team/evil", ref.DigestStr())))
		}, wantErr: `docker-reference "` + reg.Host + `/team/evil" is not an accepted repository`},
		{name: "other docker-reference accepted by option", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, signed(t, key, cosignPayload(t, "registry.example.com/team/app", ref.DigestStr())))
		}, opts: Options{Identities: []string{"registry.example.com/team/app"}}, wantKey: trusted[0].ID},
		{name: "any docker-reference", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, signed(t, key, cosignPayload(t, "docker.io/elsewhere/app", ref.DigestStr())))
		}, opts: Options{AnyIdentity: true}, wantKey: trusted[0].ID},
		{name: "docker-reference with a tag", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, signed(t, key, cosignPayload(t, repo+":v1", ref.DigestStr())))
		}, wantKey: trusted[0].ID},
		{name: "malformed base64", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, sigLayer{payload: cosignPayload(t, repo, ref.DigestStr()), annotations: map[string]string{AnnotationSignature: "%%%not base64"}})
		}, wantErr: "annotation is not base64"},
		{name: "missing annotation", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, sigLayer{payload: cosignPayload(t, repo, ref.DigestStr())})
		}, wantErr: "no " + AnnotationSignature + " annotation"},
		{name: "huge annotation", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, sigLayer{payload: cosignPayload(t, repo, ref.DigestStr()), annotations: map[string]string{AnnotationSignature: strings.Repeat("A", MaxSignatureSize+4)}})
		}, wantErr: "annotation is"},
		{name: "huge payload", sign: func(t *testing.T, ref name.Digest) {
			big := []byte(`{"optional":"` + strings.Repeat("x", 2*MaxPayloadSize) + `"}`)
			attach(t, ref, signed(t, key, big))
		}, wantErr: "more than the 65536 allowed"},
		{name: "signed payload that is not simple signing", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, signed(t, key, []byte(`{"critical":{"type":"x"}}`)))
		}, wantErr: `critical.type is "x"`},
		{name: "one bad and one good signature", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, signed(t, otherKey, cosignPayload(t, repo, ref.DigestStr())), signed(t, key, cosignPayload(t, repo, ref.DigestStr())))
		}, wantKey: trusted[0].ID},
		{name: "rsa key", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, signed(t, rsaKey, cosignPayload(t, repo, ref.DigestStr())))
		}, opts: Options{Keys: []*PublicKey{mustKey(t, key), mustKey(t, rsaKey)}}, wantKey: mustKey(t, rsaKey).ID},
		{name: "ed25519 key", sign: func(t *testing.T, ref name.Digest) {
			attach(t, ref, signed(t, edKey, cosignPayload(t, repo, ref.DigestStr())))
		}, opts: Options{Keys: []*PublicKey{mustKey(t, edKey)}}, wantKey: mustKey(t, edKey).ID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref := pushRandom(t, reg.Host, "team/app")
			if tc.sign != nil {
				tc.sign(t, ref)
			}
			opts := tc.opts
			if opts.Keys == nil {
				opts.Keys = trusted
			}
			got, err := Verify(context.Background(), ref, opts)
			if tc.wantKey == "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Verify = %+v, %v; want an error containing %q", got, err, tc.wantErr)
				}
				if errors.Is(err, ErrUnsigned) != tc.unsigned {
					t.Errorf("errors.Is(err, ErrUnsigned) = %v, want %v", !tc.unsigned, tc.unsigned)
				}
				if !strings.Contains(err.Error(), ref.String()) {
					t.Errorf("error does not name the image: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].KeyID != tc.wantKey || got[0].Digest != ref.DigestStr() {
				t.Errorf("Verify = %+v, want one signature by %s for %s", got, tc.wantKey, ref.DigestStr())
			}
		})
	}
}

// TestVerifyBadInput checks errors that need no registry.
func TestVerifyBadInput(t *testing.T) {
	ref, err := name.NewDigest("127.0.0.1:1/app@" + testDigest)
	if err != nil {
		t.Fatal(err)
	}
	k := mustKey(t, newECDSA(t))
	if _, err := Verify(context.Background(), ref, Options{}); err == nil || !strings.Contains(err.Error(), "no trusted public key") {
		t.Errorf("no keys: %v", err)
	}
	if _, err := Verify(context.Background(), ref, Options{Keys: []*PublicKey{k}, Identities: []string{"UPPER/Case"}}); err == nil || !strings.Contains(err.Error(), `identity "UPPER/Case"`) {
		t.Errorf("bad identity: %v", err)
	}
	if _, err := Verify(context.Background(), ref, Options{Keys: []*PublicKey{k}}); err == nil || errors.Is(err, ErrUnsigned) {
		t.Errorf("unreachable registry: %v", err)
	}
}

// TestVerifyNotAManifest checks that an index at the signature tag is
// rejected by media type.
func TestVerifyNotAManifest(t *testing.T) {
	reg := testenv.Distribution(t, false)
	ref := pushRandom(t, reg.Host, "app")
	idx, err := random.Index(64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := SignatureTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(context.Background(), ref, Options{Keys: []*PublicKey{mustKey(t, newECDSA(t))}})
	if err == nil || !strings.Contains(err.Error(), "is not an image manifest") {
		t.Errorf("index at signature tag: %v", err)
	}
}

func TestIdentities(t *testing.T) {
	hub, err := name.NewDigest("alpine@" + testDigest)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{"the image's repository", Options{}, []string{"index.docker.io/library/alpine"}},
		{"listed, normalized", Options{Identities: []string{"docker.io/library/busybox", "ghcr.io/a/b"}}, []string{"index.docker.io/library/busybox", "ghcr.io/a/b"}},
		{"any", Options{AnyIdentity: true, Identities: []string{"ghcr.io/a/b"}}, nil},
	}
	for _, tc := range tests {
		got, err := identities(hub, tc.opts)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: identities = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
