// Package signature verifies cosign "simple signing" image signatures
// stored the way cosign stores them in an OCI registry: for an image with
// manifest digest sha256:abc, the tag sha256-abc.sig of the same
// repository is an image manifest whose layers are simple-signing payloads
// (media type application/vnd.dev.cosign.simplesigning.v1+json), each with
// its signature, base64-encoded, in the layer annotation
// dev.cosignproject.cosign/signature.
//
// A signature is valid when it verifies against one of the trusted public
// keys over the exact payload bytes, the payload names the image's digest,
// and its docker-reference names an accepted repository. Keyless
// (Fulcio/Rekor) signatures are not supported.
package signature
