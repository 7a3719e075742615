package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/audit"
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
		Vulnerabilities: func(r *http.Request, o store.ListOptions) (store.Page[store.Vulnerability], error) {
			ctx, err := s.consoleContext(r, rbac.Vulnerabilities)
			if err != nil {
				return store.Page[store.Vulnerability]{}, err
			}
			if o.Scope, err = listScope(ctx, rbac.View, rbac.Vulnerabilities); err != nil {
				return store.Page[store.Vulnerability]{}, err
			}
			return s.db.ListVulnerabilities(ctx, o)
		},
		Policies: func(r *http.Request) (store.Page[store.Policy], error) {
			ctx, err := s.consoleContext(r, rbac.AssurancePolicies)
			if err != nil {
				return store.Page[store.Policy]{}, err
			}
			return s.db.ListPolicies(ctx, store.PolicyAssurance, store.ListOptions{Limit: store.MaxLimit})
		},
		SavePolicy: s.consoleSavePolicy,
		Users: func(r *http.Request, o store.ListOptions) (store.Page[store.User], error) {
			ctx, err := s.consoleContext(r, rbac.Users)
			if err != nil {
				return store.Page[store.User]{}, err
			}
			return s.db.ListUsers(ctx, o)
		},
		Registries: func(r *http.Request) (store.Page[store.Registry], error) {
			ctx, err := s.consoleContext(r, rbac.Registries)
			if err != nil {
				return store.Page[store.Registry]{}, err
			}
			return s.db.ListRegistries(ctx, store.ListOptions{Limit: store.MaxLimit})
		},
		Audit: func(r *http.Request, o store.ListOptions) (store.Page[audit.Event], error) {
			var out store.Page[audit.Event]
			ctx, err := s.consoleContext(r, rbac.Audit)
			if err != nil {
				return out, err
			}
			p, err := s.db.ListAuditEvents(ctx, o)
			if err != nil {
				return out, err
			}
			out.Next = p.Next
			for _, raw := range p.Items {
				var e audit.Event
				if err := json.Unmarshal(raw, &e); err != nil {
					return out, err
				}
				out.Items = append(out.Items, e)
			}
			return out, nil
		},
		ChangePassword: func(r *http.Request, current, next string) error {
			ap, ok := auth.PrincipalFrom(r.Context())
			if !ok || ap.Method != auth.MethodSession {
				return webui.ErrForbidden
			}
			if _, err := s.auth.Login(r.Context(), ap.Username, current, s.auth.ClientIP(r)); err != nil {
				return webui.ErrWrongPassword
			}
			if err := s.auth.SetPassword(r.Context(), ap.UserID, next); err != nil {
				return err
			}
			return s.record(r, audit.ActionUserUpdate, rUsers, ap.UserID, nil, map[string]string{"change": "password"})
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

// consoleSavePolicy validates a policy written in the console (YAML or
// JSON), stores it as JSON (a new policy or a new version) and audits the
// change. Only users who may edit assurance policies everywhere may save.
func (s *Server) consoleSavePolicy(r *http.Request, definition []byte) error {
	ctx, err := s.consoleContext(r, rbac.AssurancePolicies)
	if err != nil {
		return err
	}
	if err := consoleErr(check(ctx, rbac.Edit, rbac.AssurancePolicies, rbac.Attributes{})); err != nil {
		return err
	}
	pol, err := assurance.Parse("policy", definition)
	if err != nil {
		return fmt.Errorf("%w: %v", webui.ErrInvalidPolicy, err)
	}
	def, err := yamlToJSON(definition)
	if err != nil {
		return fmt.Errorf("%w: %v", webui.ErrInvalidPolicy, err)
	}
	ap, _ := auth.PrincipalFrom(r.Context())
	old, err := s.db.GetPolicy(ctx, store.PolicyAssurance, pol.Name, 0)
	var saved store.Policy
	switch {
	case errors.Is(err, store.ErrNotFound):
		saved, err = s.db.CreatePolicy(ctx, store.PolicyAssurance, pol.Name, def, ap.Username)
		old = store.Policy{}
	case err == nil:
		saved, err = s.db.UpdatePolicy(ctx, store.PolicyAssurance, pol.Name, def, ap.Username)
	}
	if err != nil {
		return err
	}
	var before any
	if old.Version != 0 {
		before = old
	}
	return s.record(r, audit.ActionPolicyUpdate, "assurance_policies", pol.Name, before, saved)
}

// yamlToJSON converts a YAML (or JSON) document to JSON, keeping every
// scalar's text: "1.0" stays 1.0, so the policy parser reads the stored
// JSON exactly as it read the YAML.
func yamlToJSON(b []byte) (json.RawMessage, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := writeNode(&buf, &n, 0); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxPolicyDepth bounds a policy document's nesting.
const maxPolicyDepth = 16

// writeNode writes n as JSON with its scalars' types (package vulndb's
// converter keeps every scalar a string, as OSV needs; a policy's numbers
// must stay numbers). Aliases are refused: a policy has no use for them,
// and expanding them invites alias bombs.
func writeNode(buf *bytes.Buffer, n *yaml.Node, depth int) error {
	if depth > maxPolicyDepth {
		return errors.New("the policy is nested too deeply")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return errors.New("want one YAML document")
		}
		return writeNode(buf, n.Content[0], depth+1)
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				buf.WriteByte(',')
			}
			k, _ := json.Marshal(n.Content[i].Value)
			buf.Write(k)
			buf.WriteByte(':')
			if err := writeNode(buf, n.Content[i+1], depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeNode(buf, c, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int", "!!float", "!!bool":
			if json.Valid([]byte(n.Value)) {
				buf.WriteString(n.Value)
				return nil
			}
		case "!!null":
			buf.WriteString("null")
			return nil
		}
		v, _ := json.Marshal(n.Value)
		buf.Write(v)
	case yaml.AliasNode:
		return errors.New("YAML aliases are not allowed in policies")
	default:
		return errors.New("the policy is empty")
	}
	return nil
}
