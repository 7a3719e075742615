package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image is one tag of a repository and what it points to.
type Image struct {
	// Registry is the name of the registry configuration.
	Registry string `json:"registry"`
	// Host is the registry host[:port].
	Host       string `json:"host"`
	Repository string `json:"repository"`
	Tag        string `json:"tag,omitempty"`
	// Digest is the digest of the manifest or index the tag points to.
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType,omitempty"`
	// Platforms are the manifests of a multi-platform index.
	Platforms []PlatformManifest `json:"platforms,omitempty"`
	// Created is the image creation time, when the tag order needed it.
	Created time.Time `json:"created,omitzero"`
}

// PlatformManifest is one platform's manifest in an index.
type PlatformManifest struct {
	// Platform is "os/arch[/variant]".
	Platform  string `json:"platform"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType,omitempty"`
}

// Ref returns the digest-pinned reference host/repository@digest.
func (i Image) Ref() string { return i.Host + "/" + i.Repository + "@" + i.Digest }

// ImageSink receives the images found by one discovery of a registry:
// the complete current selection, so tags absent from it are gone.
type ImageSink interface {
	SaveImages(ctx context.Context, registry string, images []Image) error
}

// MemoryImages is an ImageSink kept in memory, for tests.
type MemoryImages struct {
	mu     sync.Mutex
	images map[string][]Image
}

// SaveImages replaces the images of registry.
func (m *MemoryImages) SaveImages(_ context.Context, registry string, images []Image) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.images == nil {
		m.images = map[string][]Image{}
	}
	m.images[registry] = append([]Image(nil), images...)
	return nil
}

// Images returns the images last saved for registry.
func (m *MemoryImages) Images(registry string) []Image {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Image(nil), m.images[registry]...)
}

// Error is a discovery failure naming the registry and, when known, the
// repository. Its text never contains the registry's credentials.
type Error struct {
	Registry   string
	Repository string
	Op         string
	msg        string
	err        error
}

// Error names the registry, the repository and what failed.
func (e *Error) Error() string {
	where := fmt.Sprintf("registry %q", e.Registry)
	if e.Repository != "" {
		where += fmt.Sprintf(" repository %q", e.Repository)
	}
	return fmt.Sprintf("%s: %s: %s", where, e.Op, e.msg)
}

// Unwrap returns the underlying error, for errors.Is and errors.As (a
// transport.Error carries the HTTP status).
func (e *Error) Unwrap() error { return e.err }

// newError wraps err, scrubbing the credentials of r from its text.
func (r *Registry) newError(repo, op string, err error) *Error {
	msg := err.Error()
	for _, s := range r.Auth.secrets() {
		msg = strings.ReplaceAll(msg, s, "[REDACTED]")
	}
	return &Error{Registry: r.Name, Repository: repo, Op: op, msg: msg, err: err}
}

// Options tunes Discover.
type Options struct {
	// PageSize is the catalog page size (100 when 0).
	PageSize int
	// MaxRepositories bounds the repositories read from the catalog
	// (10000 when 0).
	MaxRepositories int
	// MaxTagsPerRepository bounds the tags resolved in one repository
	// after the tag globs (1000 when 0); beyond it only the newest by
	// version are kept and an error says so.
	MaxTagsPerRepository int
	// Transport is the base HTTP transport (a clone of
	// http.DefaultTransport when nil).
	Transport http.RoundTripper
}

// remoteOptions returns the go-containerregistry options for r.
func (r *Registry) remoteOptions(ctx context.Context, opts Options) []remote.Option {
	base := opts.Transport
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	if base == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = timeout
		tr.ResponseHeaderTimeout = timeout
		base = tr
	}
	rps := r.RequestsPerSecond
	if rps == 0 {
		rps = 10
	}
	tr := &limitTransport{
		base: base, interval: time.Duration(float64(time.Second) / rps),
		allowHTTP: r.Insecure && isLoopbackHost(r.Host()), retries: 5, maxWait: time.Minute,
	}
	ro := []remote.Option{
		remote.WithContext(ctx), remote.WithUserAgent("mamori"), remote.WithTransport(tr),
		// 429 is retried by limitTransport, which honours Retry-After.
		remote.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout),
	}
	switch a := r.Auth; a.Type {
	case AuthBasic:
		ro = append(ro, remote.WithAuth(&authn.Basic{Username: a.Username, Password: a.Password}))
	case AuthBearer:
		ro = append(ro, remote.WithAuth(&authn.Bearer{Token: a.Token}))
	case AuthIdentityToken:
		ro = append(ro, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: a.Username, IdentityToken: a.Token})))
	case AuthTokenExchange:
		ro = append(ro, remote.WithAuth(&authn.Basic{Username: r.tokenUser(), Password: a.Token}))
	default:
		ro = append(ro, remote.WithAuth(authn.Anonymous))
	}
	return ro
}

func (r *Registry) nameOptions() []name.Option {
	if r.Insecure && isLoopbackHost(r.Host()) {
		return []name.Option{name.Insecure}
	}
	return nil
}

// Discover lists the selected repositories and tags of r and resolves
// each tag to its digest (and the platform manifests of an index). A
// failing repository does not stop the others: the images found are
// returned with an error joining every *Error.
func Discover(ctx context.Context, r Registry, opts Options) ([]Image, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 100
	}
	if opts.MaxRepositories <= 0 {
		opts.MaxRepositories = 10000
	}
	if opts.MaxTagsPerRepository <= 0 {
		opts.MaxTagsPerRepository = 1000
	}
	ro := r.remoteOptions(ctx, opts)
	reg, err := name.NewRegistry(r.Host(), r.nameOptions()...)
	if err != nil {
		return nil, r.newError("", "bad host", err)
	}
	repos := r.Repositories
	if len(repos) == 0 {
		repos, err = r.catalog(reg, opts, ro)
		if err != nil {
			return nil, err
		}
	}
	var images []Image
	var errs []error
	for _, repo := range repos {
		if !selected(repo, r.Include, r.Exclude) {
			continue
		}
		imgs, err := r.discoverRepo(ctx, reg, repo, opts, ro)
		images = append(images, imgs...)
		if err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			return images, ctx.Err()
		}
	}
	return images, errors.Join(errs...)
}

// catalog reads every catalog page.
func (r *Registry) catalog(reg name.Registry, opts Options, ro []remote.Option) ([]string, error) {
	var repos []string
	last := ""
	for {
		page, err := remote.CatalogPage(reg, last, opts.PageSize, ro...)
		if err != nil {
			return nil, r.newError("", "listing repositories (catalog)", err)
		}
		repos = append(repos, page...)
		if len(repos) > opts.MaxRepositories {
			return nil, r.newError("", "listing repositories (catalog)",
				fmt.Errorf("more than %d repositories; narrow the selection with repositories", opts.MaxRepositories))
		}
		if len(page) < opts.PageSize || page[len(page)-1] == last {
			return repos, nil
		}
		last = page[len(page)-1]
	}
}

// discoverRepo lists and resolves the selected tags of one repository.
func (r *Registry) discoverRepo(ctx context.Context, reg name.Registry, repo string, opts Options, ro []remote.Option) ([]Image, error) {
	rp, err := name.NewRepository(reg.Name()+"/"+repo, r.nameOptions()...)
	if err != nil {
		return nil, r.newError(repo, "bad repository name", err)
	}
	tags, err := remote.List(rp, ro...)
	if err != nil {
		return nil, r.newError(repo, "listing tags", err)
	}
	var keep []string
	for _, t := range tags {
		if selected(t, r.Tags.Include, r.Tags.Exclude) {
			keep = append(keep, t)
		}
	}
	var images []Image
	var errs []error
	// Newest first by version, so that limits keep the newest tags and
	// only the kept ones are resolved.
	sort.SliceStable(keep, func(i, j int) bool { return compareVersions(keep[i], keep[j]) > 0 })
	if r.Tags.Order != OrderCreated && r.Tags.MaxTags > 0 && len(keep) > r.Tags.MaxTags {
		keep = keep[:r.Tags.MaxTags]
	}
	if len(keep) > opts.MaxTagsPerRepository {
		errs = append(errs, r.newError(repo, "listing tags", fmt.Errorf(
			"%d tags selected, only the newest %d are scanned; narrow the selection with tag globs or maxTags",
			len(keep), opts.MaxTagsPerRepository)))
		keep = keep[:opts.MaxTagsPerRepository]
	}
	for _, t := range keep {
		img, err := r.resolve(rp, t, ro)
		if err != nil {
			errs = append(errs, r.newError(repo, fmt.Sprintf("reading tag %q", t), err))
			continue
		}
		images = append(images, img)
		if ctx.Err() != nil {
			break
		}
	}
	return newest(images, r.Tags), errors.Join(errs...)
}

// resolve reads the manifest a tag points to.
func (r *Registry) resolve(rp name.Repository, tag string, ro []remote.Option) (Image, error) {
	ref := rp.Tag(tag)
	img := Image{Registry: r.Name, Host: rp.RegistryStr(), Repository: rp.RepositoryStr(), Tag: tag}
	desc, err := remote.Head(ref, ro...)
	if err != nil {
		// Some registries do not answer HEAD on manifests.
		d, gerr := remote.Get(ref, ro...)
		if gerr != nil {
			return img, gerr
		}
		desc = &d.Descriptor
	}
	img.Digest, img.MediaType = desc.Digest.String(), string(desc.MediaType)
	byDigest := rp.Digest(img.Digest)
	if desc.MediaType.IsIndex() {
		idx, err := remote.Index(byDigest, ro...)
		if err != nil {
			return img, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return img, err
		}
		for _, m := range im.Manifests {
			if !m.MediaType.IsImage() {
				continue // attestations and nested indexes
			}
			p := "unknown"
			if m.Platform != nil {
				p = m.Platform.String()
			}
			img.Platforms = append(img.Platforms, PlatformManifest{Platform: p, Digest: m.Digest.String(), MediaType: string(m.MediaType)})
		}
	}
	if r.Tags.Order == OrderCreated {
		img.Created, err = created(byDigest, desc.MediaType, img.Platforms, rp, ro)
		if err != nil {
			return img, fmt.Errorf("reading creation time: %w", err)
		}
	}
	return img, nil
}

// created returns the creation time of an image, or of the first
// platform image of an index.
func created(ref name.Digest, mt types.MediaType, platforms []PlatformManifest, rp name.Repository, ro []remote.Option) (time.Time, error) {
	if mt.IsIndex() {
		if len(platforms) == 0 {
			return time.Time{}, nil
		}
		ref = rp.Digest(platforms[0].Digest)
	}
	im, err := remote.Image(ref, ro...)
	if err != nil {
		return time.Time{}, err
	}
	cf, err := im.ConfigFile()
	if err != nil {
		return time.Time{}, err
	}
	return cf.Created.Time, nil
}

// newest sorts images newest first and keeps f.MaxTags of them.
func newest(images []Image, f TagFilter) []Image {
	if f.Order == OrderCreated {
		sort.SliceStable(images, func(i, j int) bool {
			if !images[i].Created.Equal(images[j].Created) {
				return images[i].Created.After(images[j].Created)
			}
			return compareVersions(images[i].Tag, images[j].Tag) > 0
		})
	} else {
		sort.SliceStable(images, func(i, j int) bool { return compareVersions(images[i].Tag, images[j].Tag) > 0 })
	}
	if f.MaxTags > 0 && len(images) > f.MaxTags {
		images = images[:f.MaxTags]
	}
	return images
}

// compareVersions compares tags as versions: runs of digits compare as
// numbers, other runs as text; a leading "v" is ignored. Tags that start
// with a number rank above the others ("1.0" > "latest").
func compareVersions(a, b string) int {
	a, b = strings.TrimPrefix(a, "v"), strings.TrimPrefix(b, "v")
	if a != "" && b != "" && isDigit(a[0]) != isDigit(b[0]) {
		if isDigit(a[0]) {
			return 1
		}
		return -1
	}
	for a != "" && b != "" {
		ra, restA := run(a)
		rb, restB := run(b)
		if c := compareRun(ra, rb); c != 0 {
			return c
		}
		a, b = restA, restB
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// run splits s after its first run of digits or of non-digits.
func run(s string) (string, string) {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i], s[i:]
}

func compareRun(a, b string) int {
	if isDigit(a[0]) && isDigit(b[0]) {
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(a) != len(b) {
			return len(a) - len(b)
		}
	}
	return strings.Compare(a, b)
}
