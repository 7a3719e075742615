package server

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/registry"
	"github.com/mamorisec/mamori/internal/server/store"
	"github.com/mamorisec/mamori/internal/vulndb"
)

// DefaultScanInterval is how often registries are discovered.
const DefaultScanInterval = 6 * time.Hour

// webhookInfo tells a registry administrator where to send push
// notifications and with which secret.
type webhookInfo struct {
	// Path is the webhook's path on this server.
	Path string `json:"path"`
	// Secret goes in the notification's Authorization header
	// ("Bearer SECRET" or the bare secret).
	Secret string `json:"secret"`
	// Kinds are the payload formats accepted (?kind=...).
	Kinds []string `json:"kinds"`
}

// webhookSecret is the registry's push secret, derived from the server
// key so nothing secret is stored for it.
func (s *Server) webhookSecret(id int64) string {
	return hex.EncodeToString(deriveKey(s.key, "webhook "+strconv.FormatInt(id, 10)))
}

// registryConfig turns a stored registry into discovery configuration
// with its credentials.
func (s *Server) registryConfig(ctx context.Context, reg store.Registry) (registry.Registry, error) {
	rc := registry.Registry{Name: reg.Name, URL: reg.URL, Type: registry.TypeGeneric, Insecure: reg.Insecure, Interval: DefaultScanInterval}
	secret, err := s.db.RegistrySecret(ctx, reg.ID)
	if err != nil {
		return rc, err
	}
	switch reg.AuthType {
	case store.AuthBasic:
		rc.Auth = registry.Auth{Type: registry.AuthBasic, Username: reg.Username, Password: secret}
	case store.AuthBearer:
		rc.Auth = registry.Auth{Type: registry.AuthBearer, Token: secret}
	default:
		rc.Auth = registry.Auth{Type: registry.AuthNone}
	}
	return rc, nil
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	reg, err := s.db.GetRegistry(r.Context(), id)
	if err != nil {
		return storeErr(err)
	}
	if err := s.registryCheck(r, reg); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, webhookInfo{Path: "/api/v1/registries/" + strconv.FormatInt(id, 10) + "/webhook", Secret: s.webhookSecret(id),
		Kinds: []string{string(registry.KindDistribution), string(registry.KindHarbor), string(registry.KindDockerHub)}})
	return nil
}

// webhooks keeps one handler per registry and payload kind, for their
// dedupe windows.
type webhooks struct {
	mu sync.Mutex
	m  map[string]*registry.Webhook
}

// receiveWebhook serves a registry's push notifications: the shared
// secret authenticates them, and every pushed image the registry's
// filters select is queued for a scan.
func (s *Server) receiveWebhook(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	reg, err := s.db.GetRegistry(r.Context(), id)
	if err != nil {
		return storeErr(err)
	}
	kind := registry.WebhookKind(r.URL.Query().Get("kind"))
	if kind == "" {
		kind = registry.KindDistribution
	}
	switch kind {
	case registry.KindDistribution, registry.KindHarbor, registry.KindDockerHub:
	default:
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Field: "kind", Message: "kind must be distribution, harbor or dockerhub"}
	}
	key := strconv.FormatInt(id, 10) + "/" + string(kind)
	s.hooks.mu.Lock()
	if s.hooks.m == nil {
		s.hooks.m = map[string]*registry.Webhook{}
	}
	h := s.hooks.m[key]
	if h == nil {
		h = &registry.Webhook{Kind: kind, Registry: reg.Name, Secret: s.webhookSecret(id), Now: s.cfg.Now,
			OnPush: func(ctx context.Context, _ string, pushes []registry.Push) error {
				cur, err := s.db.GetRegistry(ctx, id)
				if err != nil {
					return err
				}
				rc, err := s.registryConfig(ctx, cur)
				if err != nil {
					return err
				}
				for _, p := range pushes {
					img, ok, err := registry.ImageForPush(ctx, rc, p)
					if err != nil {
						return err
					}
					if ok {
						if _, _, err := s.queue.Enqueue(registry.JobRequest(img, registry.ReasonPush)); err != nil {
							return err
						}
					}
				}
				return nil
			}}
		s.hooks.m[key] = h
	}
	s.hooks.mu.Unlock()
	h.ServeHTTP(w, r)
	return nil
}

// registryCheck applies the object check to a registry.
func (s *Server) registryCheck(r *http.Request, reg store.Registry) error {
	u, err := url.Parse(reg.URL)
	if err != nil {
		return err
	}
	return check(r.Context(), "edit", "registries", registryAttrs(u.Host))
}

// scheduler discovers the stored registries' images on their interval
// and queues new and changed ones, and everything again when the
// vulnerability database changes.
func (s *Server) scheduler() *registry.Scheduler {
	return &registry.Scheduler{
		Registries: func(ctx context.Context) ([]registry.Registry, error) {
			page, err := s.db.ListRegistries(ctx, store.ListOptions{Limit: store.MaxLimit})
			if err != nil {
				return nil, err
			}
			var out []registry.Registry
			for _, reg := range page.Items {
				rc, err := s.registryConfig(ctx, reg)
				if err != nil {
					return nil, err
				}
				out = append(out, rc)
			}
			return out, nil
		},
		Discover: func(ctx context.Context, r registry.Registry) ([]registry.Image, error) {
			return registry.Discover(ctx, r, registry.Options{})
		},
		History: scanHistory{s.db},
		Enqueue: func(ctx context.Context, img registry.Image, reason registry.Reason) error {
			_, _, err := s.queue.Enqueue(registry.JobRequest(img, reason))
			return err
		},
		DBVersion: func() string {
			db, err := vulndb.Open(s.cfg.VulnDB)
			if err != nil {
				return ""
			}
			defer db.Close()
			return db.Info().Built.UTC().Format(time.RFC3339Nano)
		},
		Logf: func(format string, args ...any) {
			s.cfg.Log.Info(fmt.Sprintf(format, args...), "component", "registry-scheduler")
		},
	}
}

// scanHistory answers whether a digest has a finished scan.
type scanHistory struct{ db *store.Store }

func (h scanHistory) Scanned(ctx context.Context, digest string) (bool, error) {
	page, err := h.db.ListImages(ctx, store.ListOptions{Filter: "digest=" + escapeFilter(digest), Limit: 1})
	if err != nil {
		return false, err
	}
	return len(page.Items) > 0 && page.Items[0].LatestScanID != 0, nil
}

// escapeFilter escapes a value for the filter language.
func escapeFilter(v string) string {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == ',' || v[i] == ';' || v[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, v[i])
	}
	return string(out)
}
