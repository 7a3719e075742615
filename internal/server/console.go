package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/auth"
	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/store"
	"github.com/mamorisec/mamori/internal/webui"
)

// newConsole builds the web console on the same authorization as the API.
func (s *Server) newConsole() (*webui.UI, error) {
	return webui.New(webui.Deps{
		Auth: s.auth, Log: s.cfg.Log,
		Images: func(r *http.Request, o store.ListOptions) (store.Page[store.Image], error) {
			ctx, err := s.consoleContext(r, rbac.Images)
			if err != nil {
				return store.Page[store.Image]{}, err
			}
			if o.Scope, err = listScope(ctx, rbac.View, rbac.Images); err != nil {
				return store.Page[store.Image]{}, err
			}
			return s.db.ListImages(ctx, o)
		},
		Image: func(r *http.Request, id int64) (store.Image, error) {
			ctx, err := s.consoleContext(r, rbac.Images)
			if err != nil {
				return store.Image{}, err
			}
			im, err := s.db.GetImage(ctx, id, nil)
			if err != nil {
				return im, err
			}
			return im, consoleErr(check(ctx, rbac.View, rbac.Images, imageAttrs(im)))
		},
		Report: func(r *http.Request, scanID int64) (*report.Scan, error) {
			ctx, err := s.consoleContext(r, rbac.Scans)
			if err != nil {
				return nil, err
			}
			sc, err := s.db.GetScan(ctx, scanID, nil)
			if err != nil {
				return nil, err
			}
			im, err := s.db.GetImage(ctx, sc.ImageID, nil)
			if err != nil {
				return nil, err
			}
			if err := consoleErr(check(ctx, rbac.View, rbac.Scans, imageAttrs(im))); err != nil {
				return nil, err
			}
			return s.db.ScanReport(ctx, scanID, nil)
		},
		Counts: func(r *http.Request) (webui.Counts, error) {
			c := webui.Counts{BySeverity: map[string]int64{}}
			ctx, err := s.consoleContext(r, rbac.Images)
			if err != nil {
				return c, err
			}
			sc, err := listScope(ctx, rbac.View, rbac.Images)
			if err != nil {
				return c, err
			}
			if c.Images, err = s.db.CountImages(ctx, store.ListOptions{Scope: sc}); err != nil {
				return c, err
			}
			if f := rbac.ListFilter(mustPrincipal(ctx), rbac.View, rbac.Vulnerabilities); f.Kind == rbac.FilterNone {
				return c, nil
			}
			if sc, err = listScope(ctx, rbac.View, rbac.Vulnerabilities); err != nil {
				return c, err
			}
			for _, sev := range []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNKNOWN"} {
				n, err := s.db.CountVulnerabilities(ctx, store.ListOptions{Filter: "severity=" + sev, Scope: sc})
				if err != nil {
					return c, err
				}
				c.BySeverity[sev] = n
			}
			return c, nil
		},
	})
}

func mustPrincipal(ctx context.Context) rbac.Principal {
	p, _ := principalFrom(ctx)
	return p
}

// consoleContext resolves the console user's roles and checks they may
// view the resource type in some scope.
func (s *Server) consoleContext(r *http.Request, t rbac.ResourceType) (context.Context, error) {
	ap, ok := auth.PrincipalFrom(r.Context())
	if !ok {
		return nil, webui.ErrForbidden
	}
	p, err := s.authz.resolve(r.Context(), ap)
	if err != nil {
		return nil, err
	}
	if f := rbac.ListFilter(p, rbac.View, t); f.Kind == rbac.FilterNone {
		return nil, webui.ErrForbidden
	}
	return context.WithValue(r.Context(), principalKey{}, p), nil
}

// consoleErr maps the API's object-check errors to the console's.
func consoleErr(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		if ae.Status == http.StatusNotFound {
			return store.ErrNotFound
		}
		return webui.ErrForbidden
	}
	return err
}

// isAPIPath reports whether a path belongs to the REST API and the
// operational endpoints rather than the console.
func isAPIPath(p string) bool {
	return strings.HasPrefix(p, "/api/") || p == "/healthz" || p == "/readyz" || p == "/metrics"
}
