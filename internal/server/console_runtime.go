package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/query"
	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/store"
	"github.com/mamorisec/mamori/internal/webui"
)

// Console bounds for the runtime pages.
const (
	// maxConsoleAgents bounds the agents one page lists.
	maxConsoleAgents = 5000
	// maxImageLookups bounds the image references one page looks up.
	maxImageLookups = 500
)

// runtimeConsole adds the runtime-protection pages' data sources and
// actions, on the same authorization and store functions as the REST
// routes in runtime.go.
func (s *Server) runtimeConsole(d *webui.Deps) {
	d.RuntimePolicies = s.consoleRuntimePolicies
	d.SaveRuntimePolicy = s.consoleSaveRuntimePolicy
	d.SetRuntimePolicyEnabled = s.consoleSetRuntimeEnabled
	d.LoadBuiltinRuntimePolicy = s.consoleLoadBuiltin
	d.ImportRuntimePolicies = s.consoleImportRuntime
	d.ExportRuntimePolicies = s.consoleExportRuntime
	d.Bypass = s.consoleBypass
	d.SetBypass = s.consoleSetBypass
	d.EnforcerGroups = s.consoleGroups
	d.CreateEnforcerGroup = s.consoleCreateGroup
	d.UpdateEnforcerGroup = s.consoleUpdateGroup
	d.RotateEnrollmentToken = s.consoleRotateToken
	d.Agents = s.consoleAgents
	d.Inventory = s.consoleInventory
	d.LookupImages = s.consoleLookupImages
	d.Now = s.cfg.Now
}

// runtimeEdit resolves the caller for a change of runtime policies or the
// bypass: edit on the Global scope, as the REST routes require.
func (s *Server) runtimeEdit(r *http.Request) (context.Context, error) {
	ctx, err := s.consoleContext(r, rbac.RuntimePolicies)
	if err != nil {
		return nil, err
	}
	return ctx, consoleErr(check(ctx, rbac.Edit, rbac.RuntimePolicies, rbac.Attributes{}))
}

func (s *Server) consoleRuntimePolicies(r *http.Request) ([]store.RuntimePolicy, error) {
	ctx, err := s.consoleContext(r, rbac.RuntimePolicies)
	if err != nil {
		return nil, err
	}
	var out []store.RuntimePolicy
	for cursor := ""; ; {
		page, err := s.db.ListRuntimePolicies(ctx, store.ListOptions{Limit: store.MaxLimit, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if cursor = page.Next; cursor == "" {
			return out, nil
		}
	}
}

// invalidRuntime turns a validation or store refusal into the console's
// policy error.
func invalidRuntime(err error) error {
	if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w: %v", webui.ErrInvalidPolicy, err)
	}
	return err
}

// consoleSaveRuntimePolicy creates a runtime policy, or replaces the one
// of the same name (keeping its creation time, which a schedule counts
// from), and audits the change.
func (s *Server) consoleSaveRuntimePolicy(r *http.Request, def []byte) error {
	ctx, err := s.runtimeEdit(r)
	if err != nil {
		return err
	}
	p, err := runtimepolicy.Parse(def)
	if err != nil {
		return fmt.Errorf("%w: %v", webui.ErrInvalidPolicy, err)
	}
	now := s.cfg.Now().UTC()
	p.Created, p.Updated = now, now
	old, err := s.db.GetRuntimePolicy(ctx, p.Name)
	exists := err == nil
	switch {
	case exists:
		var prev runtimepolicy.Policy
		if json.Unmarshal(old.Document, &prev) == nil && !prev.Created.IsZero() {
			p.Created = prev.Created
		}
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	sp, err := parsedPolicy(p, callerName(r))
	if err != nil {
		return err
	}
	var before any
	if exists {
		before = old
		sp, err = s.db.UpdateRuntimePolicy(ctx, sp)
	} else {
		sp, err = s.db.CreateRuntimePolicy(ctx, sp)
	}
	if err != nil {
		return invalidRuntime(err)
	}
	return s.record(r, actionRuntimePolicy, rRuntime, sp.Name, before, sp)
}

func (s *Server) consoleSetRuntimeEnabled(r *http.Request, policy string, enabled bool) error {
	ctx, err := s.runtimeEdit(r)
	if err != nil {
		return err
	}
	old, err := s.db.GetRuntimePolicy(ctx, policy)
	if err != nil {
		return err
	}
	p, err := runtimepolicy.Parse(old.Document)
	if err != nil {
		return fmt.Errorf("%w: %v", webui.ErrInvalidPolicy, err)
	}
	p.Enabled, p.Updated = enabled, s.cfg.Now().UTC()
	sp, err := parsedPolicy(p, callerName(r))
	if err != nil {
		return err
	}
	if sp, err = s.db.UpdateRuntimePolicy(ctx, sp); err != nil {
		return invalidRuntime(err)
	}
	return s.record(r, actionRuntimePolicy, rRuntime, sp.Name, old, sp)
}

// consoleLoadBuiltin stores a built-in baseline as a runtime policy of
// its name; a policy of that name must not exist yet.
func (s *Server) consoleLoadBuiltin(r *http.Request, builtin string) error {
	ctx, err := s.runtimeEdit(r)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(runtimepolicy.Builtins(), func(p runtimepolicy.Policy) bool { return p.Name == builtin })
	if i < 0 {
		return store.ErrNotFound
	}
	p := runtimepolicy.Builtins()[i]
	now := s.cfg.Now().UTC()
	p.Created, p.Updated = now, now
	sp, err := parsedPolicy(p, callerName(r))
	if err != nil {
		return err
	}
	if sp, err = s.db.CreateRuntimePolicy(ctx, sp); err != nil {
		return invalidRuntime(err)
	}
	return s.record(r, actionRuntimePolicy, rRuntime, sp.Name, nil, sp)
}

// consoleImportRuntime stores a JSON array of runtime policies in one
// transaction: every one is valid and stored, or none is.
func (s *Server) consoleImportRuntime(r *http.Request, data []byte) (int, error) {
	ctx, err := s.runtimeEdit(r)
	if err != nil {
		return 0, err
	}
	if len(data) > maxPolicyImport {
		return 0, fmt.Errorf("%w: the import is larger than %d bytes", webui.ErrInvalidPolicy, maxPolicyImport)
	}
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")) {
		return 0, fmt.Errorf("%w: want a JSON array of runtime policies", webui.ErrInvalidPolicy)
	}
	ps, err := runtimepolicy.ParseBundle(data)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", webui.ErrInvalidPolicy, err)
	}
	now := s.cfg.Now().UTC()
	sps := make([]store.RuntimePolicy, 0, len(ps))
	for _, p := range ps {
		if p.Created.IsZero() {
			p.Created = now
		}
		p.Updated = now
		sp, err := parsedPolicy(p, callerName(r))
		if err != nil {
			return 0, err
		}
		sps = append(sps, sp)
	}
	if len(sps) == 0 {
		return 0, nil
	}
	stored, err := s.db.ImportRuntimePolicies(ctx, sps)
	if err != nil {
		return 0, invalidRuntime(err)
	}
	names := make([]string, len(stored))
	for i, p := range stored {
		names[i] = p.Name
	}
	return len(stored), s.record(r, actionRuntimePolicy, rRuntime, "import", nil, map[string]any{"imported": names})
}

// consoleExportRuntime writes every runtime policy as the JSON array the
// import reads.
func (s *Server) consoleExportRuntime(r *http.Request) ([]byte, error) {
	ps, err := s.consoleRuntimePolicies(r)
	if err != nil {
		return nil, err
	}
	docs := make([]json.RawMessage, 0, len(ps))
	for _, p := range ps {
		docs = append(docs, p.Document)
	}
	return json.MarshalIndent(docs, "", "  ")
}

func (s *Server) consoleBypass(r *http.Request) (fleet.Bypass, error) {
	ctx, err := s.consoleContext(r, rbac.RuntimePolicies)
	if err != nil {
		return fleet.Bypass{}, err
	}
	return s.db.Bypass(ctx)
}

// consoleSetBypass replaces the global bypass after the REST API's
// checks, and audits the change.
func (s *Server) consoleSetBypass(r *http.Request, b fleet.Bypass) error {
	ctx, err := s.runtimeEdit(r)
	if err != nil {
		return err
	}
	if err := validBypass(b); err != nil {
		return fmt.Errorf("%w: %s", store.ErrInvalid, apiMessage(err))
	}
	old, err := s.db.Bypass(ctx)
	if err != nil {
		return err
	}
	if _, err := s.db.SetBypass(ctx, b); err != nil {
		return err
	}
	out, err := s.db.Bypass(ctx)
	if err != nil {
		return err
	}
	return s.record(r, actionBypassUpdate, rRuntime, "bypass", old, out)
}

// apiMessage is the message of an API error.
func apiMessage(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}

func (s *Server) consoleGroups(r *http.Request) ([]store.EnforcerGroup, error) {
	ctx, err := s.consoleContext(r, rbac.Enforcers)
	if err != nil {
		return nil, err
	}
	var out []store.EnforcerGroup
	for cursor := ""; ; {
		page, err := s.db.ListEnforcerGroups(ctx, store.ListOptions{Limit: store.MaxLimit, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if cursor = page.Next; cursor == "" {
			return out, nil
		}
	}
}

// groupEdit resolves the caller for a change of enforcer groups: edit
// on the Global scope, as the REST routes require.
func (s *Server) groupEdit(r *http.Request) (context.Context, error) {
	ctx, err := s.consoleContext(r, rbac.Enforcers)
	if err != nil {
		return nil, err
	}
	return ctx, consoleErr(check(ctx, rbac.Edit, rbac.Enforcers, rbac.Attributes{}))
}

// consoleCreateGroup creates an enforcer group and returns its
// enrollment token, which only its hash is stored of.
func (s *Server) consoleCreateGroup(r *http.Request, groupName, description string, settings fleet.GroupSettings) (string, error) {
	ctx, err := s.groupEdit(r)
	if err != nil {
		return "", err
	}
	if !validText(groupName, 64) {
		return "", fmt.Errorf("%w: the name must be 1 to 64 printable characters", store.ErrInvalid)
	}
	token := newSecret("mamori-enroll-", 32)
	g, err := s.db.CreateEnforcerGroup(ctx, store.EnforcerGroup{Name: groupName, Description: description, Settings: settings}, hashToken(token))
	if err != nil {
		return "", err
	}
	return token, s.record(r, actionGroupUpdate, rEnforcers, g.Name, nil, g)
}

func (s *Server) consoleUpdateGroup(r *http.Request, groupName string, settings fleet.GroupSettings) error {
	ctx, err := s.groupEdit(r)
	if err != nil {
		return err
	}
	old, err := s.db.GetEnforcerGroup(ctx, groupName)
	if err != nil {
		return err
	}
	g := old
	g.Settings = settings
	if g, err = s.db.UpdateEnforcerGroup(ctx, g); err != nil {
		return err
	}
	return s.record(r, actionGroupUpdate, rEnforcers, g.Name, old, g)
}

// consoleRotateToken replaces a group's enrollment token; the old one
// stops working at once.
func (s *Server) consoleRotateToken(r *http.Request, groupName string) (string, error) {
	ctx, err := s.groupEdit(r)
	if err != nil {
		return "", err
	}
	if _, err := s.db.GetEnforcerGroup(ctx, groupName); err != nil {
		return "", err
	}
	token := newSecret("mamori-enroll-", 32)
	if err := s.db.SetEnforcerGroupToken(ctx, groupName, hashToken(token)); err != nil {
		return "", err
	}
	return token, s.record(r, actionGroupUpdate, rEnforcers, groupName, nil, map[string]string{"change": "enrollment token rotated"})
}

// consoleAgents lists the agents on hosts in the caller's scopes.
func (s *Server) consoleAgents(r *http.Request) ([]store.Agent, error) {
	ctx, err := s.consoleContext(r, rbac.Enforcers)
	if err != nil {
		return nil, err
	}
	return s.agentsIn(ctx)
}

func (s *Server) agentsIn(ctx context.Context) ([]store.Agent, error) {
	hs, err := hostScope((&http.Request{}).WithContext(ctx))
	if err != nil {
		return nil, err
	}
	var out []store.Agent
	for cursor := ""; len(out) < maxConsoleAgents; {
		page, err := s.db.ListAgents(ctx, store.ListOptions{Limit: store.MaxLimit, Cursor: cursor}, hs)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	return out, nil
}

// consoleInventory returns the inventories of the agents in the caller's
// scopes that reported recently, as GET /api/v1/inventory does.
func (s *Server) consoleInventory(r *http.Request) ([]store.AgentInventory, error) {
	ctx, err := s.consoleContext(r, rbac.Enforcers)
	if err != nil {
		return nil, err
	}
	invs, err := s.db.Inventories(ctx, s.cfg.Now().Add(-inventoryFreshness))
	if err != nil {
		return nil, err
	}
	p := mustPrincipal(ctx)
	out := invs[:0]
	for _, ai := range invs {
		if rbac.Decide(p, rbac.View, rbac.Enforcers, agentAttrs(ai.Agent)).Allow {
			out = append(out, ai)
		}
	}
	return out, nil
}

// consoleLookupImages finds the stored images, in the caller's scopes,
// that image references name: by digest when the reference has one, else
// by tag (the newest scan of the tag). A caller who may not see images
// gets none.
func (s *Server) consoleLookupImages(r *http.Request, refs []string) (map[string]store.Image, error) {
	out := map[string]store.Image{}
	ctx, err := s.consoleContext(r, rbac.Images)
	if errors.Is(err, webui.ErrForbidden) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	sc, err := listScope(ctx, rbac.View, rbac.Images)
	if err != nil {
		return nil, err
	}
	for i, ref := range refs {
		if i >= maxImageLookups {
			break
		}
		parsed, err := name.ParseReference(ref)
		if err != nil {
			continue
		}
		repo := parsed.Context()
		filter := "registry=" + query.EscapeValue(repo.RegistryStr()) + ";repository=" + query.EscapeValue(repo.RepositoryStr())
		switch id := parsed.(type) {
		case name.Digest:
			filter += ";digest=" + query.EscapeValue(id.DigestStr())
		case name.Tag:
			filter += ";tag=" + query.EscapeValue(id.TagStr())
		}
		page, err := s.db.ListImages(ctx, store.ListOptions{Filter: filter, Sort: "-lastSeen", Limit: 1, Scope: sc})
		if err != nil {
			return nil, err
		}
		if len(page.Items) == 1 {
			out[ref] = page.Items[0]
		}
	}
	return out, nil
}
