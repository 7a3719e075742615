package image

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// RegistryOptions turns Options into go-containerregistry options
// (credentials, transport), for other packages that talk to the same
// registry (signature verification).
func RegistryOptions(ctx context.Context, opts Options) []remote.Option {
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithUserAgent("mamori")}
	switch {
	case opts.RegistryToken != "":
		ropts = append(ropts, remote.WithAuth(&authn.Bearer{Token: opts.RegistryToken}))
	case opts.Username != "" || opts.Password != "":
		ropts = append(ropts, remote.WithAuth(&authn.Basic{Username: opts.Username, Password: opts.Password}))
	default:
		ropts = append(ropts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	if opts.Insecure {
		tr := remote.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the user asked for it
		ropts = append(ropts, remote.WithTransport(tr))
	}
	return ropts
}

// openRegistry reads an image's manifest and config from its registry;
// layers are fetched when opened.
func openRegistry(ctx context.Context, ref string, opts Options) (*Image, error) {
	r, err := name.ParseReference(ref, NameOptions(opts)...)
	if err != nil {
		return nil, fmt.Errorf("not an image reference: %w", err)
	}
	puller, err := remote.NewPuller(RegistryOptions(ctx, opts)...)
	if err != nil {
		return nil, err
	}
	desc, err := puller.Get(ctx, r)
	if err != nil {
		return nil, registryError(r, err)
	}
	top := desc.Digest.String()
	for depth := 0; isIndex(desc.MediaType, desc.Manifest); depth++ {
		if depth >= maxIndexDepth {
			return nil, fmt.Errorf("image indexes nested more than %d deep", maxIndexDepth)
		}
		idx, err := parseIndex(desc.Manifest)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		d, err := chooseDescriptor(idx.Manifests, opts.platform())
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		desc, err = puller.Get(ctx, r.Context().Digest(d.Digest.String()))
		if err != nil {
			return nil, registryError(r, err)
		}
	}
	m, err := parseManifest(desc.Manifest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	rimg, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	cdata, err := rimg.RawConfigFile()
	if err != nil {
		return nil, registryError(r, fmt.Errorf("config %s: %w", m.Config.Digest, err))
	}
	if int64(len(cdata)) > maxMetadata {
		return nil, fmt.Errorf("config %s is larger than %d MiB", m.Config.Digest, maxMetadata>>20)
	}
	cfg, err := parseConfig(cdata)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	blobs := make([]layerBlob, len(m.Layers))
	for i, d := range m.Layers {
		dref := r.Context().Digest(d.Digest.String())
		blobs[i] = layerBlob{digest: d.Digest.String(), size: d.Size, open: func(ctx context.Context) (io.ReadCloser, error) {
			l, err := puller.Layer(ctx, dref)
			if err != nil {
				return nil, registryError(r, err)
			}
			rc, err := l.Compressed()
			if err != nil {
				return nil, registryError(r, err)
			}
			return rc, nil
		}}
	}
	layers, err := buildLayers(cfg, blobs)
	if err != nil {
		return nil, err
	}
	img := &Image{
		Source:      SourceRegistry,
		Name:        r.Name(),
		Digest:      desc.Digest.String(),
		ID:          m.Config.Digest.String(),
		RepoDigests: []string{r.Context().Name() + "@" + top},
		Platform:    configPlatform(cfg),
		Config:      cfg,
		Layers:      layers,
	}
	if _, ok := r.(name.Tag); ok {
		img.RepoTags = []string{r.Name()}
	}
	return img, nil
}

// registryError adds what a user can do to registry errors.
func registryError(r name.Reference, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("registry %s: authentication failed (give credentials with a username and password, a token, or docker login): %w", r.Context().RegistryStr(), err)
		case http.StatusNotFound:
			return fmt.Errorf("registry %s: image %s not found: %w", r.Context().RegistryStr(), r.Name(), err)
		}
	}
	return fmt.Errorf("registry %s: %w", r.Context().RegistryStr(), err)
}

// NameOptions are the reference parsing options for Options (plain HTTP
// for insecure registries).
func NameOptions(opts Options) []name.Option {
	if opts.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}
