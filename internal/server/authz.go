package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/auth"
	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/store"
)

// Token scope strings: "RESOURCE:ACTION" grants at most that permission,
// "scope:NAME" limits the token to an application scope. A token without
// permission entries can do nothing.
const tokenScopePrefix = "scope:"

type principalKey struct{}

// principalFrom returns the RBAC principal the authorizer resolved.
func principalFrom(ctx context.Context) (rbac.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(rbac.Principal)
	return p, ok
}

// authorizer resolves the authenticated user's role bindings from the
// database on every request (so a revoked binding applies at once) and
// checks the route's permission. Object-level checks on scoped resources
// happen in the handlers, against the object's attributes.
type authorizer struct {
	db *store.Store
	// denied records a refused request in the audit trail.
	denied func(r *http.Request, ap *auth.Principal, rt *api.Route, reason string)
}

// resolve builds the RBAC principal for an authenticated request.
func (a *authorizer) resolve(ctx context.Context, ap *auth.Principal) (rbac.Principal, error) {
	kind := rbac.KindUser
	id := ap.UserID
	if ap.Method == auth.MethodToken {
		kind, id = rbac.KindToken, ap.TokenID
	}
	p := rbac.Principal{Kind: kind, ID: id, Name: ap.Username}
	bound, err := a.db.BindingsFor(ctx, ap.Username, ap.Groups)
	if err != nil {
		return p, err
	}
	cat, err := a.catalog(ctx)
	if err != nil {
		return p, err
	}
	refs := make([]rbac.BindingRef, 0, len(bound))
	for _, b := range bound {
		refs = append(refs, rbac.BindingRef{Role: b.Role, Scopes: b.Scopes, Source: b.SubjectKind})
	}
	if p.Bindings, err = cat.Resolve(refs); err != nil {
		return p, err
	}
	if ap.Method == auth.MethodToken {
		r := &rbac.Restriction{Permissions: rbac.Permissions{}}
		var scopeNames []string
		for _, s := range ap.Scopes {
			if name, ok := strings.CutPrefix(s, tokenScopePrefix); ok {
				scopeNames = append(scopeNames, name)
				continue
			}
			t, act, ok := strings.Cut(s, ":")
			if ok && rbac.ResourceType(t).Valid() && rbac.Action(act).Valid() {
				r.Permissions[rbac.ResourceType(t)] = rbac.Action(act)
			}
		}
		if len(scopeNames) > 0 {
			if r.Scopes, err = cat.Scopes(scopeNames); err != nil {
				return p, err
			}
		}
		p.Restriction = r
	}
	return p, nil
}

// catalog loads the custom roles and application scopes.
func (a *authorizer) catalog(ctx context.Context) (*rbac.Catalog, error) {
	var roles []rbac.Role
	for cursor := ""; ; {
		page, err := a.db.ListRoles(ctx, store.ListOptions{Limit: store.MaxLimit, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		for _, r := range page.Items {
			if _, builtin := rbac.BuiltinRole(r.Name); builtin {
				continue
			}
			role := rbac.Role{Name: r.Name, Description: r.Description, Permissions: rbac.Permissions{}}
			for _, perm := range r.Permissions {
				t, act, _ := strings.Cut(perm, ":")
				role.Permissions[rbac.ResourceType(t)] = rbac.Action(act)
			}
			roles = append(roles, role)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	var scopes []rbac.ApplicationScope
	for cursor := ""; ; {
		page, err := a.db.ListAppScopes(ctx, store.ListOptions{Limit: store.MaxLimit, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		for _, s := range page.Items {
			sc, err := rbac.ParseScope(s.Definition)
			if err != nil {
				return nil, fmt.Errorf("application scope %q: %w", s.Name, err)
			}
			scopes = append(scopes, sc)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	return rbac.NewCatalog(roles, scopes)
}

// Authorize implements api.Authorizer: no principal is 401; a principal
// that holds the route's permission on no scope at all is 403.
func (a *authorizer) Authorize(r *http.Request, rt *api.Route) error {
	ap, ok := auth.PrincipalFrom(r.Context())
	if !ok {
		return api.Errorf(http.StatusUnauthorized, api.CodeUnauthenticated, "authentication required")
	}
	p, err := a.resolve(r.Context(), ap)
	if err != nil {
		return err
	}
	f := rbac.ListFilter(p, rbac.Action(rt.Action), rbac.ResourceType(rt.Resource))
	if f.Kind == rbac.FilterNone {
		if a.denied != nil {
			a.denied(r, ap, rt, f.Reason)
		}
		return api.Errorf(http.StatusForbidden, api.CodeForbidden, "%s", f.Reason)
	}
	*r = *r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
	return nil
}

// check decides an action on one object; a denial of something the
// caller may not even see is answered as not found, so that IDs outside a
// scope cannot be probed.
func check(ctx context.Context, action rbac.Action, t rbac.ResourceType, attrs rbac.Attributes) error {
	p, ok := principalFrom(ctx)
	if !ok {
		return api.Errorf(http.StatusUnauthorized, api.CodeUnauthenticated, "authentication required")
	}
	if d := rbac.Decide(p, action, t, attrs); !d.Allow {
		if rbac.Decide(p, rbac.View, t, attrs).Allow {
			return api.Errorf(http.StatusForbidden, api.CodeForbidden, "%s", d.Reason)
		}
		return api.Errorf(http.StatusNotFound, api.CodeNotFound, "no such %s", strings.TrimSuffix(string(t), "s"))
	}
	return nil
}

// listScope turns the caller's list filter for an image-related resource
// into the store's scope restriction: nil for everything, an empty scope
// for nothing, else one conjunction of regular expressions over
// "registry/repository" per clause. A clause on attributes images do not
// have (clusters, namespaces) matches no image.
func listScope(ctx context.Context, action rbac.Action, t rbac.ResourceType) (*store.Scope, error) {
	p, ok := principalFrom(ctx)
	if !ok {
		return nil, api.Errorf(http.StatusUnauthorized, api.CodeUnauthenticated, "authentication required")
	}
	f := rbac.ListFilter(p, action, t)
	switch f.Kind {
	case rbac.FilterAll:
		return nil, nil
	case rbac.FilterNone:
		return &store.Scope{}, nil
	}
	sc := &store.Scope{}
	for _, c := range f.Any {
		if res, ok := clauseRegexps(c); ok {
			sc.Match = append(sc.Match, res)
		}
	}
	return sc, nil
}

// clauseRegexps is one clause as regular expressions over
// "registry/repository" that must all match.
func clauseRegexps(c rbac.Clause) ([]string, bool) {
	var out []string
	for _, cond := range c.All {
		var alts []string
		for _, g := range cond.Globs {
			alts = append(alts, strings.TrimSuffix(strings.TrimPrefix(g.Regexp(), "^"), "$"))
		}
		alt := "(?:" + strings.Join(alts, "|") + ")"
		switch cond.Attr {
		case rbac.AttrRegistry:
			out = append(out, "^"+alt+"/")
		case rbac.AttrImage:
			out = append(out, "^"+alt+"$")
		default:
			return nil, false
		}
	}
	return out, len(out) > 0
}

// registryAttrs are the RBAC attributes of a registry.
func registryAttrs(host string) rbac.Attributes { return rbac.Attributes{Registry: host} }

// imageAttrs are the RBAC attributes of a stored image.
func imageAttrs(im store.Image) rbac.Attributes {
	return rbac.Attributes{Registry: im.Registry, Image: im.Registry + "/" + im.Repository, Labels: im.Labels}
}

// jsonBody marshals v for audit before/after values.
func jsonBody(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
