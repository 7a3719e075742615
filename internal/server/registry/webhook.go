package registry

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/mamorisec/mamori/internal/inventory"
)

// Push is an image pushed to a registry, announced by a webhook.
type Push struct {
	// Host is the registry host the webhook named, when it did.
	Host       string `json:"host,omitempty"`
	Repository string `json:"repository"`
	Tag        string `json:"tag,omitempty"`
	// Digest is the manifest digest. Docker Hub does not send it: the
	// receiver must resolve Tag.
	Digest    string `json:"digest,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
}

// WebhookKind is the payload format of a push webhook.
type WebhookKind string

// Webhook kinds.
const (
	// KindDistribution is the CNCF distribution registry notification
	// envelope ({"events":[...]}).
	KindDistribution WebhookKind = "distribution"
	// KindHarbor is Harbor's default (non-CloudEvents) webhook payload.
	KindHarbor WebhookKind = "harbor"
	// KindDockerHub is Docker Hub's repository webhook payload.
	KindDockerHub WebhookKind = "dockerhub"
)

// Webhook limits.
const (
	// MaxWebhookBody is the largest webhook body read.
	MaxWebhookBody = 1 << 20
	// maxEvents bounds the events of one envelope.
	maxEvents = 1000
	// MinSecretLength is the shortest webhook secret accepted.
	MinSecretLength = 16
)

// manifestTypes are the media types of the manifests worth scanning.
var manifestTypes = map[string]bool{
	"application/vnd.oci.image.manifest.v1+json":                true,
	"application/vnd.oci.image.index.v1+json":                   true,
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$`)

// checkPush validates the names in p.
func checkPush(p Push) error {
	if p.Repository == "" {
		return errors.New("no repository")
	}
	if _, err := name.NewRepository("example.invalid/"+p.Repository, name.StrictValidation); err != nil {
		return fmt.Errorf("bad repository %q", p.Repository)
	}
	if p.Tag != "" {
		if _, err := name.NewTag("example.invalid/r:"+p.Tag, name.StrictValidation); err != nil {
			return fmt.Errorf("bad tag %q", p.Tag)
		}
	}
	if p.Digest != "" && !digestRE.MatchString(p.Digest) {
		return fmt.Errorf("bad digest %q", p.Digest)
	}
	if p.Digest == "" && p.Tag == "" {
		return fmt.Errorf("repository %q: neither tag nor digest", p.Repository)
	}
	return nil
}

// decodeOne decodes exactly one JSON value from b into v. Unknown fields
// are ignored, so that newer registries keep working; wrong types and
// trailing data are errors.
func decodeOne(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON: data after the JSON value")
	}
	return nil
}

// hostOf returns the host of a URL such as
// "http://127.0.0.1:5000/v2/repo/manifests/sha256:...".
func hostOf(u string) string {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	return u
}

// distributionEnvelope is a CNCF distribution notification.
type distributionEnvelope struct {
	Events *[]struct {
		Action string `json:"action"`
		Target struct {
			MediaType  string `json:"mediaType"`
			Digest     string `json:"digest"`
			Repository string `json:"repository"`
			URL        string `json:"url"`
			Tag        string `json:"tag"`
		} `json:"target"`
	} `json:"events"`
}

// ParseDistribution returns the manifest pushes of a CNCF distribution
// notification envelope. Pulls, deletes, blob events and other media
// types are skipped and counted in ignored.
func ParseDistribution(b []byte) (pushes []Push, ignored int, err error) {
	var env distributionEnvelope
	if err := decodeOne(b, &env); err != nil {
		return nil, 0, err
	}
	if env.Events == nil {
		return nil, 0, errors.New(`not a distribution notification: no "events" array`)
	}
	if len(*env.Events) > maxEvents {
		return nil, 0, fmt.Errorf("%d events in one envelope, more than %d", len(*env.Events), maxEvents)
	}
	for i, ev := range *env.Events {
		t := ev.Target
		if ev.Action != "push" || !manifestTypes[t.MediaType] {
			ignored++
			continue
		}
		p := Push{Host: hostOf(t.URL), Repository: t.Repository, Tag: t.Tag, Digest: t.Digest, MediaType: t.MediaType}
		if p.Digest == "" {
			return nil, 0, fmt.Errorf("event %d: push of %q without a digest", i, t.Repository)
		}
		if err := checkPush(p); err != nil {
			return nil, 0, fmt.Errorf("event %d: %w", i, err)
		}
		pushes = append(pushes, p)
	}
	return pushes, ignored, nil
}

// harborPayload is Harbor's default webhook payload.
type harborPayload struct {
	Type      string `json:"type"`
	EventData *struct {
		Resources []struct {
			Digest      string `json:"digest"`
			Tag         string `json:"tag"`
			ResourceURL string `json:"resource_url"`
		} `json:"resources"`
		Repository struct {
			RepoFullName string `json:"repo_full_name"`
		} `json:"repository"`
	} `json:"event_data"`
}

// ParseHarbor returns the pushes of a Harbor webhook payload; events
// other than PUSH_ARTIFACT are ignored.
func ParseHarbor(b []byte) (pushes []Push, ignored int, err error) {
	var p harborPayload
	if err := decodeOne(b, &p); err != nil {
		return nil, 0, err
	}
	if p.Type == "" || p.EventData == nil {
		return nil, 0, errors.New(`not a Harbor webhook: no "type" or "event_data"`)
	}
	if p.Type != "PUSH_ARTIFACT" {
		return nil, 1, nil
	}
	if len(p.EventData.Resources) > maxEvents {
		return nil, 0, fmt.Errorf("%d resources in one event, more than %d", len(p.EventData.Resources), maxEvents)
	}
	for i, r := range p.EventData.Resources {
		ps := Push{Host: hostOf(r.ResourceURL), Repository: p.EventData.Repository.RepoFullName, Tag: r.Tag, Digest: r.Digest}
		if err := checkPush(ps); err != nil {
			return nil, 0, fmt.Errorf("resource %d: %w", i, err)
		}
		pushes = append(pushes, ps)
	}
	return pushes, 0, nil
}

// dockerHubPayload is Docker Hub's repository webhook payload.
type dockerHubPayload struct {
	PushData *struct {
		Tag string `json:"tag"`
	} `json:"push_data"`
	Repository *struct {
		RepoName string `json:"repo_name"`
	} `json:"repository"`
}

// ParseDockerHub returns the push of a Docker Hub webhook payload. It
// names a tag but no digest.
func ParseDockerHub(b []byte) ([]Push, int, error) {
	var p dockerHubPayload
	if err := decodeOne(b, &p); err != nil {
		return nil, 0, err
	}
	if p.PushData == nil || p.Repository == nil {
		return nil, 0, errors.New(`not a Docker Hub webhook: no "push_data" or "repository"`)
	}
	ps := Push{Host: "index.docker.io", Repository: p.Repository.RepoName, Tag: p.PushData.Tag}
	if ps.Tag == "" {
		return nil, 0, errors.New("push without a tag")
	}
	if err := checkPush(ps); err != nil {
		return nil, 0, err
	}
	return []Push{ps}, 0, nil
}

// Parse dispatches to the parser of kind.
func (k WebhookKind) Parse(b []byte) ([]Push, int, error) {
	switch k {
	case KindDistribution:
		return ParseDistribution(b)
	case KindHarbor:
		return ParseHarbor(b)
	case KindDockerHub:
		return ParseDockerHub(b)
	}
	return nil, 0, fmt.Errorf("unknown webhook kind %q", k)
}

// Webhook is an http.Handler receiving push notifications for one
// registry.
type Webhook struct {
	// Kind is the payload format.
	Kind WebhookKind
	// Registry names the registry configuration the pushes belong to.
	Registry string
	// Secret must be presented as the Authorization header ("Bearer S",
	// "Token S" or just "S"); Docker Hub, which cannot send headers, may
	// give it as the token query parameter instead.
	Secret string
	// OnPush receives the new pushes (deduplicated by digest).
	OnPush func(ctx context.Context, registry string, pushes []Push) error
	// Now is the clock for deduplication (time.Now when nil).
	Now func() time.Time
	// DedupeWindow is how long a digest is remembered (10 min when 0).
	DedupeWindow time.Duration

	mu     sync.Mutex
	recent map[string]time.Time
}

// maxRecent bounds the digests remembered for deduplication.
const maxRecent = 10000

// WebhookResponse is the body of a 202 answer.
type WebhookResponse struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Ignored    int `json:"ignored"`
}

func webhookError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// authorized checks the shared secret in constant time.
func (h *Webhook) authorized(r *http.Request) bool {
	if len(h.Secret) < MinSecretLength {
		return false // deny when no usable secret is configured
	}
	got := strings.TrimSpace(r.Header.Get("Authorization"))
	for _, scheme := range []string{"Bearer ", "Token "} {
		if len(got) > len(scheme) && strings.EqualFold(got[:len(scheme)], scheme) {
			got = strings.TrimSpace(got[len(scheme):])
			break
		}
	}
	if got == "" && h.Kind == KindDockerHub {
		got = r.URL.Query().Get("token")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(h.Secret)) == 1
}

// fresh drops the pushes whose digest was seen within the window and
// reports how many were dropped.
func (h *Webhook) fresh(pushes []Push) ([]Push, int) {
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	window := h.DedupeWindow
	if window <= 0 {
		window = 10 * time.Minute
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.recent == nil || len(h.recent) > maxRecent {
		old := h.recent
		h.recent = map[string]time.Time{}
		for d, t := range old {
			if now.Sub(t) < window && len(h.recent) < maxRecent/2 {
				h.recent[d] = t
			}
		}
	}
	var out []Push
	dups := 0
	for _, p := range pushes {
		if p.Digest != "" {
			if t, ok := h.recent[p.Digest]; ok && now.Sub(t) < window {
				dups++
				continue
			}
			h.recent[p.Digest] = now
		}
		out = append(out, p)
	}
	return out, dups
}

// forget removes digests again, when OnPush failed and the sender will
// retry.
func (h *Webhook) forget(pushes []Push) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range pushes {
		delete(h.recent, p.Digest)
	}
}

// ServeHTTP handles one notification: 202 with counts, or 4xx naming the
// problem.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		webhookError(w, http.StatusMethodNotAllowed, "method_not_allowed", "webhooks must be POSTed")
		return
	}
	if !h.authorized(r) {
		webhookError(w, http.StatusUnauthorized, "unauthenticated", "webhook secret missing or wrong")
		return
	}
	if ct := strings.ToLower(r.Header.Get("Content-Type")); ct != "" && !strings.Contains(ct, "json") {
		webhookError(w, http.StatusUnsupportedMediaType, "bad_request", fmt.Sprintf("content type %q is not JSON", ct))
		return
	}
	b, err := inventory.ReadAllLimited(http.MaxBytesReader(w, r.Body, MaxWebhookBody+1), MaxWebhookBody)
	if err != nil {
		var tl *inventory.TooLargeError
		var mb *http.MaxBytesError
		if errors.As(err, &tl) || errors.As(err, &mb) {
			webhookError(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("webhook body is larger than %d bytes", MaxWebhookBody))
			return
		}
		webhookError(w, http.StatusBadRequest, "bad_request", "reading webhook body: "+err.Error())
		return
	}
	pushes, ignored, err := h.Kind.Parse(b)
	if err != nil {
		webhookError(w, http.StatusBadRequest, "invalid_json", fmt.Sprintf("%s webhook: %v", h.Kind, err))
		return
	}
	pushes, dups := h.fresh(pushes)
	if len(pushes) > 0 {
		if h.OnPush == nil {
			h.forget(pushes)
			webhookError(w, http.StatusServiceUnavailable, "unavailable", "webhook not connected to a scan queue")
			return
		}
		if err := h.OnPush(r.Context(), h.Registry, pushes); err != nil {
			h.forget(pushes)
			webhookError(w, http.StatusServiceUnavailable, "unavailable", "could not queue the pushed images; retry later")
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(WebhookResponse{Accepted: len(pushes), Duplicates: dups, Ignored: ignored})
}

// ImageForPush turns a push into the image to scan on r: the host is
// always r's (a webhook cannot redirect scans elsewhere), a push without
// a digest is resolved by reading its tag, and selected is false when
// r's repository or tag globs exclude it.
func ImageForPush(ctx context.Context, r Registry, p Push) (img Image, selectedImage bool, err error) {
	if err := checkPush(p); err != nil {
		return Image{}, false, fmt.Errorf("registry %q: push: %w", r.Name, err)
	}
	if !selected(p.Repository, r.Include, r.Exclude) || (len(r.Repositories) > 0 && !slices.Contains(r.Repositories, p.Repository)) {
		return Image{}, false, nil
	}
	if p.Tag != "" && !selected(p.Tag, r.Tags.Include, r.Tags.Exclude) {
		return Image{}, false, nil
	}
	img = Image{Registry: r.Name, Host: r.Host(), Repository: p.Repository, Tag: p.Tag, Digest: p.Digest, MediaType: p.MediaType}
	if img.Digest != "" {
		return img, true, nil
	}
	if err := r.Validate(); err != nil {
		return Image{}, false, err
	}
	rp, err := name.NewRepository(r.Host()+"/"+p.Repository, r.nameOptions()...)
	if err != nil {
		return Image{}, false, r.newError(p.Repository, "bad repository name", err)
	}
	img, err = r.resolve(rp, p.Tag, r.remoteOptions(ctx, Options{}))
	if err != nil {
		return Image{}, false, r.newError(p.Repository, fmt.Sprintf("reading tag %q", p.Tag), err)
	}
	return img, true, nil
}
