package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"gopkg.in/yaml.v3"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/audit"
	"github.com/mamorisec/mamori/internal/server/auth"
	"github.com/mamorisec/mamori/internal/server/jobs"
	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/store"
	"github.com/mamorisec/mamori/internal/webui"
)

// newConsole builds the web console on the same authorization as the API:
// every data source and action checks the caller's roles and application
// scopes exactly as the matching REST route does.
func (s *Server) newConsole() (*webui.UI, error) {
	d := webui.Deps{
		Auth: s.auth, Log: s.cfg.Log, SSO: s.oidc != nil,
		Dashboard: s.consoleDashboard,
		Images: func(r *http.Request, o store.ListOptions, scope string) (store.Page[store.Image], error) {
			ctx, err := s.consoleContext(r, rbac.Images)
			if err != nil {
				return store.Page[store.Image]{}, err
			}
			if o.Scope, err = listScope(ctx, rbac.View, rbac.Images); err != nil {
				return store.Page[store.Image]{}, err
			}
			if scope != "" {
				if o.Scope, err = s.narrowScope(ctx, o.Scope, scope); err != nil {
					return store.Page[store.Image]{}, err
				}
			}
			return s.db.ListImages(ctx, o)
		},
		ScopeNames: func(r *http.Request) ([]string, error) {
			ctx, err := s.consoleContext(r, rbac.Images)
			if err != nil {
				return nil, err
			}
			page, err := s.db.ListAppScopes(ctx, store.ListOptions{Limit: store.MaxLimit})
			if err != nil {
				return nil, err
			}
			var names []string
			for _, sc := range page.Items {
				names = append(names, sc.Name)
			}
			return names, nil
		},
		Image: func(r *http.Request, id int64) (store.Image, error) {
			ctx, err := s.consoleContext(r, rbac.Images)
			if err != nil {
				return store.Image{}, err
			}
			return s.consoleImage(ctx, id, rbac.View, rbac.Images)
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
			if _, err := s.consoleImage(ctx, sc.ImageID, rbac.View, rbac.Scans); err != nil {
				return nil, err
			}
			return s.db.ScanReport(ctx, scanID, nil)
		},
		ScanState:   s.consoleScanState,
		RequestScan: s.consoleRequestScan,
		Rescan: func(r *http.Request, id int64) error {
			ctx, err := s.consoleContext(r, rbac.Images)
			if err != nil {
				return err
			}
			im, err := s.consoleImage(ctx, id, rbac.View, rbac.Images)
			if err != nil {
				return err
			}
			// The stored image is named by its tag when it has one (a
			// scan by digest is stored as an image of its own).
			ref := im.Registry + "/" + im.Repository
			switch {
			case im.Tag != "":
				ref += ":" + im.Tag
			case im.Digest != "":
				ref += "@" + im.Digest
			}
			return s.consoleRequestScan(r, ref)
		},
		AddException: s.consoleAddException,
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
		ImagesWithVulnerability: func(r *http.Request, id string) (store.Page[store.Image], error) {
			ctx, err := s.consoleContext(r, rbac.Vulnerabilities)
			if err != nil {
				return store.Page[store.Image]{}, err
			}
			sc, err := listScope(ctx, rbac.View, rbac.Images)
			if err != nil {
				return store.Page[store.Image]{}, err
			}
			return s.db.ImagesWithVulnerability(ctx, id, store.CrossImageOptions{Scope: sc, Limit: 100})
		},
		Policies: func(r *http.Request) (store.Page[store.Policy], error) {
			ctx, err := s.consoleContext(r, rbac.AssurancePolicies)
			if err != nil {
				return store.Page[store.Policy]{}, err
			}
			return s.db.ListPolicies(ctx, store.PolicyAssurance, store.ListOptions{Limit: store.MaxLimit})
		},
		SavePolicy:       s.consoleSavePolicy,
		SetPolicyEnabled: s.consoleSetPolicyEnabled,
		ImportPolicies:   s.consoleImportPolicies,
		ExportPolicies:   s.consoleExportPolicies,
		Users: func(r *http.Request, o store.ListOptions) (store.Page[store.User], error) {
			ctx, err := s.consoleContext(r, rbac.Users)
			if err != nil {
				return store.Page[store.User]{}, err
			}
			return s.db.ListUsers(ctx, o)
		},
		Roles: func(r *http.Request) (store.Page[store.Role], error) {
			ctx, err := s.consoleContext(r, rbac.Roles)
			if err != nil {
				return store.Page[store.Role]{}, err
			}
			return s.db.ListRoles(ctx, store.ListOptions{Limit: store.MaxLimit})
		},
		Scopes: func(r *http.Request) (store.Page[store.AppScope], error) {
			ctx, err := s.consoleContext(r, rbac.Scopes)
			if err != nil {
				return store.Page[store.AppScope]{}, err
			}
			return s.db.ListAppScopes(ctx, store.ListOptions{Limit: store.MaxLimit})
		},
		SaveScope: s.consoleSaveScope,
		Tokens: func(r *http.Request) (store.Page[store.APIToken], error) {
			uid, err := s.consoleUser(r)
			if err != nil {
				return store.Page[store.APIToken]{}, err
			}
			return s.db.ListTokens(r.Context(), store.ListOptions{Filter: "user=" + strconv.FormatInt(uid, 10), Limit: store.MaxLimit})
		},
		CreateToken: s.consoleCreateToken,
		RevokeToken: s.consoleRevokeToken,
		Settings: func(r *http.Request) (store.Page[store.Setting], error) {
			ctx, err := s.consoleContext(r, rbac.Settings)
			if err != nil {
				return store.Page[store.Setting]{}, err
			}
			return s.db.ListSettings(ctx, store.ListOptions{Limit: store.MaxLimit})
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
			out.Items, err = decodeAudit(p.Items)
			return out, err
		},
		Events:             s.consoleEvents,
		ChangePassword:     s.consoleChangePassword,
		MustChangePassword: s.mustChangePassword,
		Denied: func(r *http.Request) {
			ap, _ := auth.PrincipalFrom(r.Context())
			s.auditDenied(r, ap, &api.Route{Method: r.Method, Path: r.URL.Path, Resource: "console"}, "the console refused the page or form")
		},
	}
	s.runtimeConsole(&d)
	return webui.New(d)
}

// narrowScope restricts the caller's image scope (nil: every image) to the
// images the named application scope covers: each clause of the caller's
// scope is combined with each clause of the named one. An unknown scope
// name is bad input.
func (s *Server) narrowScope(ctx context.Context, caller *store.Scope, name string) (*store.Scope, error) {
	if name == rbac.GlobalScopeName {
		return caller, nil
	}
	cat, err := s.authz.catalog(ctx)
	if err != nil {
		return nil, err
	}
	scopes, err := cat.Scopes([]string{name})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	var picked [][]string
	for _, c := range scopes[0].Clauses(rbac.Images) {
		if res, ok := clauseRegexps(c); ok {
			picked = append(picked, res)
		}
	}
	out := &store.Scope{}
	if caller == nil {
		out.Match = picked
		return out, nil
	}
	for _, mine := range caller.Match {
		for _, p := range picked {
			out.Match = append(out.Match, append(slices.Clone(mine), p...))
		}
	}
	return out, nil
}

// consoleImage loads an image and checks the caller may act on it; an
// image out of the caller's scopes is not found.
func (s *Server) consoleImage(ctx context.Context, id int64, action rbac.Action, t rbac.ResourceType) (store.Image, error) {
	im, err := s.db.GetImage(ctx, id, nil)
	if err != nil {
		return im, err
	}
	return im, consoleErr(check(ctx, action, t, imageAttrs(im)))
}

// consoleUser returns the session user's id.
func (s *Server) consoleUser(r *http.Request) (int64, error) {
	ap, ok := auth.PrincipalFrom(r.Context())
	if !ok || ap.Method != auth.MethodSession {
		return 0, webui.ErrForbidden
	}
	id, err := strconv.ParseInt(ap.UserID, 10, 64)
	if err != nil {
		return 0, webui.ErrForbidden
	}
	return id, nil
}

func decodeAudit(raws []json.RawMessage) ([]audit.Event, error) {
	out := make([]audit.Event, 0, len(raws))
	for _, raw := range raws {
		var e audit.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("audit trail: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// dashboardDays is how far back the dashboard's trend goes.
const dashboardDays = 14

// consoleDashboard sums up what the caller may see: images by assurance
// status, findings by severity (all and fixable), the scan trend, the
// riskiest images and recent security events.
func (s *Server) consoleDashboard(r *http.Request) (webui.Dashboard, error) {
	d := webui.Dashboard{ByAssurance: map[string]int64{}}
	ctx, err := s.consoleContext(r, rbac.Images)
	if err != nil {
		return d, err
	}
	sc, err := listScope(ctx, rbac.View, rbac.Images)
	if err != nil {
		return d, err
	}
	if d.Images, err = s.db.CountImages(ctx, store.ListOptions{Scope: sc}); err != nil {
		return d, err
	}
	if d.ByAssurance, err = s.db.AssuranceSummary(ctx, store.ListOptions{Scope: sc}); err != nil {
		return d, err
	}
	risky, err := s.db.ListImages(ctx, store.ListOptions{Filter: "critical>0", Sort: "-critical,-high", Limit: 5, Scope: sc})
	if err != nil {
		return d, err
	}
	d.Risky = risky.Items
	if d.Trend, err = s.db.ScanTrend(ctx, s.cfg.Now().AddDate(0, 0, -dashboardDays), sc); err != nil {
		return d, err
	}
	p := mustPrincipal(ctx)
	if f := rbac.ListFilter(p, rbac.View, rbac.Vulnerabilities); f.Kind != rbac.FilterNone {
		vs, err := listScope(ctx, rbac.View, rbac.Vulnerabilities)
		if err != nil {
			return d, err
		}
		sum, err := s.db.VulnerabilitySummary(ctx, store.ListOptions{Scope: vs})
		if err != nil {
			return d, err
		}
		d.BySeverity, d.Fixable = map[string]int64{}, map[string]int64{}
		for sev, c := range sum {
			d.BySeverity[sev], d.Fixable[sev] = c.All, c.Fixable
		}
	}
	if rbac.ListFilter(p, rbac.View, rbac.Enforcers).Kind != rbac.FilterNone {
		// Enforcer health: the agents on hosts in the caller's scopes.
		if d.Agents, err = s.agentsIn(ctx); err != nil {
			return d, err
		}
		if d.Agents == nil {
			d.Agents = []store.Agent{}
		}
	}
	if rbac.ListFilter(p, rbac.View, rbac.Audit).Kind == rbac.FilterAll {
		// The newest security events among the last page of the trail.
		page, err := s.db.ListAuditEvents(ctx, store.ListOptions{Limit: store.MaxLimit})
		if err != nil {
			return d, err
		}
		evs, err := decodeAudit(page.Items)
		if err != nil {
			return d, err
		}
		d.Events = []audit.Event{}
		for _, e := range evs {
			d.LastSeq = max(d.LastSeq, e.Seq)
			if securityEvent(e) && len(d.Events) < 10 {
				d.Events = append(d.Events, e)
			}
		}
	}
	return d, nil
}

// securityEvent reports whether an audit event belongs in the console's
// security feed: refusals and failures, runtime detections and blocks,
// and scans that failed an assurance policy.
func securityEvent(e audit.Event) bool {
	if e.Action == actionRuntimeAllow {
		return false
	}
	if e.Outcome != audit.Success || strings.HasPrefix(e.Action, "runtime.") {
		return true
	}
	if e.Action == audit.ActionScanComplete {
		var after struct {
			Assurance string `json:"assurance"`
		}
		return json.Unmarshal(e.After, &after) == nil && after.Assurance == store.AssuranceFail
	}
	return false
}

// consoleEvents returns the security events among the audit events after
// seq (oldest first) for the live feed, and the last seq read. Only users
// who may read the whole audit trail get it.
func (s *Server) consoleEvents(r *http.Request, after int64, limit int) ([]audit.Event, int64, error) {
	ctx, err := s.consoleContext(r, rbac.Audit)
	if err != nil {
		return nil, after, err
	}
	if rbac.ListFilter(mustPrincipal(ctx), rbac.View, rbac.Audit).Kind != rbac.FilterAll {
		return nil, after, webui.ErrForbidden
	}
	page, err := s.db.ListAuditEvents(ctx, store.ListOptions{Filter: "seq>" + strconv.FormatInt(after, 10), Sort: "seq", Limit: limit})
	if err != nil {
		return nil, after, err
	}
	evs, err := decodeAudit(page.Items)
	if err != nil {
		return nil, after, err
	}
	var out []audit.Event
	for _, e := range evs {
		after = max(after, e.Seq)
		if securityEvent(e) {
			out = append(out, e)
		}
	}
	return out, after, nil
}

// consoleScanState tells the progress of an image's newest scan: a job
// still in the queue, else the stored result.
func (s *Server) consoleScanState(r *http.Request, id int64) (string, error) {
	ctx, err := s.consoleContext(r, rbac.Images)
	if err != nil {
		return "", err
	}
	im, err := s.consoleImage(ctx, id, rbac.View, rbac.Images)
	if err != nil {
		return "", err
	}
	repo := im.Registry + "/" + im.Repository
	var newest jobs.Job
	for _, j := range s.queue.List() {
		ref, err := name.ParseReference(j.Ref)
		if err != nil || ref.Context().RegistryStr()+"/"+ref.Context().RepositoryStr() != repo {
			continue
		}
		if id := ref.Identifier(); id != im.Tag && id != im.Digest {
			continue
		}
		if j.Created.After(newest.Created) {
			newest = j
		}
	}
	switch newest.State {
	case jobs.StateQueued:
		return store.ScanQueued, nil
	case jobs.StateRunning:
		return store.ScanRunning, nil
	case jobs.StateFailed:
		if newest.Updated.After(im.LastSeen) {
			return store.ScanFailed, nil
		}
	}
	if im.LatestScanID != 0 {
		return store.ScanDone, nil
	}
	return "none", nil
}

// consoleRequestScan queues a scan of a registry reference for a user
// who may request scans of that repository.
func (s *Server) consoleRequestScan(r *http.Request, refText string) error {
	ctx, err := s.consoleContext(r, rbac.Scans)
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(refText)
	if err != nil || refText == "" {
		return fmt.Errorf("%w: %q is not an image reference such as registry.example.com/team/app:1.0", store.ErrInvalid, refText)
	}
	repo := ref.Context()
	if err := consoleErr(check(ctx, rbac.Edit, rbac.Scans, rbac.Attributes{Registry: repo.RegistryStr(), Image: repo.RegistryStr() + "/" + repo.RepositoryStr()})); err != nil {
		return err
	}
	job, _, err := s.queue.Enqueue(jobs.Request{Ref: ref.Name(), Priority: jobs.PriorityPush, Registry: repo.RegistryStr()})
	if err != nil {
		return fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	return s.record(r, audit.ActionScanRequest, rScans, job.ID, nil, map[string]string{"image": ref.Name()})
}

// consoleAddException stores an exception for an image's repository, for
// a user who may edit exceptions on that image.
func (s *Server) consoleAddException(r *http.Request, im store.Image, e assurance.Exception) error {
	ctx, err := s.consoleContext(r, rbac.Exceptions)
	if err != nil {
		return err
	}
	if err := consoleErr(check(ctx, rbac.Edit, rbac.Exceptions, imageAttrs(im))); err != nil {
		return err
	}
	e.Image = im.Registry + "/" + im.Repository
	ap, _ := auth.PrincipalFrom(r.Context())
	e.CreatedBy = ap.Username
	e.ID = "exc-" + strconv.FormatInt(s.cfg.Now().UnixNano(), 36)
	if err := e.Validate(); err != nil {
		return fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	out, err := s.db.CreateException(ctx, store.Exception{Scope: e.Image, VulnID: e.Finding, Rule: e.Control, Expires: e.Expires,
		Justification: e.Justification, CreatedBy: e.CreatedBy})
	if err != nil {
		return err
	}
	return s.record(r, audit.ActionExceptionCreate, rExceptions, strconv.FormatInt(out.ID, 10), nil, e)
}

// consoleSetPolicyEnabled stores a new version of a policy with its
// enabled switch set.
func (s *Server) consoleSetPolicyEnabled(r *http.Request, policy string, enabled bool) error {
	ctx, err := s.consoleContext(r, rbac.AssurancePolicies)
	if err != nil {
		return err
	}
	old, err := s.db.GetPolicy(ctx, store.PolicyAssurance, policy, 0)
	if err != nil {
		return err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(old.Definition, &doc); err != nil {
		return fmt.Errorf("%w: policy %q: %v", webui.ErrInvalidPolicy, policy, err)
	}
	doc["enabled"] = json.RawMessage(strconv.FormatBool(enabled))
	def, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return s.consoleSavePolicy(r, def)
}

// consoleImportPolicies stores a JSON array of assurance policies: every
// one is validated first, and then all are stored, or none.
func (s *Server) consoleImportPolicies(r *http.Request, data []byte) (int, error) {
	ctx, err := s.consoleContext(r, rbac.AssurancePolicies)
	if err != nil {
		return 0, err
	}
	if err := consoleErr(check(ctx, rbac.Edit, rbac.AssurancePolicies, rbac.Attributes{})); err != nil {
		return 0, err
	}
	docs, err := webui.ReadImport(bytes.NewReader(data))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", webui.ErrInvalidPolicy, err)
	}
	seen := map[string]bool{}
	for i, d := range docs {
		pol, err := assurance.Parse(fmt.Sprintf("[%d]", i), d)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", webui.ErrInvalidPolicy, err)
		}
		if seen[pol.Name] {
			return 0, fmt.Errorf("%w: policy %q is in the import twice", webui.ErrInvalidPolicy, pol.Name)
		}
		seen[pol.Name] = true
	}
	for _, d := range docs {
		if err := s.consoleSavePolicy(r, d); err != nil {
			return 0, err
		}
	}
	return len(docs), nil
}

// consoleExportPolicies writes every current assurance policy as a JSON
// array that consoleImportPolicies reads back.
func (s *Server) consoleExportPolicies(r *http.Request) ([]byte, error) {
	ctx, err := s.consoleContext(r, rbac.AssurancePolicies)
	if err != nil {
		return nil, err
	}
	page, err := s.db.ListPolicies(ctx, store.PolicyAssurance, store.ListOptions{Limit: store.MaxLimit})
	if err != nil {
		return nil, err
	}
	defs := make([]json.RawMessage, 0, len(page.Items))
	for _, p := range page.Items {
		defs = append(defs, p.Definition)
	}
	return json.MarshalIndent(defs, "", "  ")
}

// consoleSaveScope creates or replaces an application scope.
func (s *Server) consoleSaveScope(r *http.Request, def []byte) error {
	ctx, err := s.consoleContext(r, rbac.Scopes)
	if err != nil {
		return err
	}
	if err := consoleErr(check(ctx, rbac.Edit, rbac.Scopes, rbac.Attributes{})); err != nil {
		return err
	}
	sc, err := rbac.ParseScope(def)
	if err != nil {
		return fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	old, err := s.db.GetAppScope(ctx, sc.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if _, err := s.db.CreateAppScope(ctx, store.AppScope{Name: sc.Name, Description: sc.Description, Definition: jsonBody(sc)}); err != nil {
			return err
		}
		return s.record(r, audit.ActionScopeUpdate, rScopes, sc.Name, nil, sc)
	case err != nil:
		return err
	}
	upd := old
	upd.Description, upd.Definition = sc.Description, jsonBody(sc)
	if err := s.db.UpdateAppScope(ctx, upd); err != nil {
		return err
	}
	return s.record(r, audit.ActionScopeUpdate, rScopes, sc.Name, old, sc)
}

// consoleCreateToken issues an API token to the session user, limited to
// viewing (access "view") or carrying all of the user's own rights
// ("edit"); a token never has more rights than its owner.
func (s *Server) consoleCreateToken(r *http.Request, tokenName, access string, ttl time.Duration) (string, error) {
	if access != string(rbac.View) && access != string(rbac.Edit) {
		return "", fmt.Errorf("%w: access %q: want view or edit", store.ErrInvalid, access)
	}
	var perms []string
	for _, t := range rbac.ResourceTypes() {
		perms = append(perms, string(t)+":"+access)
	}
	ctx, err := s.consoleContext(r, rbac.Tokens)
	if err != nil {
		return "", err
	}
	if err := consoleErr(check(ctx, rbac.Edit, rbac.Tokens, rbac.Attributes{})); err != nil {
		return "", err
	}
	ap, _ := auth.PrincipalFrom(r.Context())
	secret, t, err := s.auth.IssueToken(ctx, ap.UserID, tokenName, perms, ttl)
	if err != nil {
		return "", fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	return secret, s.record(r, audit.ActionTokenCreate, rTokens, t.ID, nil, map[string]string{"name": tokenName, "access": access, "ttl": ttl.String()})
}

// consoleRevokeToken revokes one of the session user's tokens.
func (s *Server) consoleRevokeToken(r *http.Request, id string) error {
	uid, err := s.consoleUser(r)
	if err != nil {
		return err
	}
	t, err := s.db.TokenByPrefix(r.Context(), id)
	if err != nil {
		return err
	}
	if t.UserID != uid {
		return store.ErrNotFound
	}
	if err := s.db.DeleteToken(r.Context(), id); err != nil {
		return err
	}
	return s.record(r, audit.ActionTokenRevoke, rTokens, id, t, nil)
}

// passwordChangeSetting lists the local users who must replace a
// generated password before using the console.
const passwordChangeSetting = "console.password_change_required"

// mustChangePassword reports whether the session user still has the
// password generated on the first start.
func (s *Server) mustChangePassword(r *http.Request) bool {
	ap, ok := auth.PrincipalFrom(r.Context())
	if !ok || ap.Method != auth.MethodSession {
		return false
	}
	return slices.Contains(s.passwordChangeList(r.Context()), ap.Username)
}

func (s *Server) passwordChangeList(ctx context.Context) []string {
	st, err := s.db.GetSetting(ctx, passwordChangeSetting)
	if err != nil {
		return nil
	}
	var names []string
	if json.Unmarshal(st.Value, &names) != nil {
		return nil
	}
	return names
}

// consoleChangePassword changes the session user's password after
// checking the current one, and lifts a required change.
func (s *Server) consoleChangePassword(r *http.Request, current, next string) error {
	ap, ok := auth.PrincipalFrom(r.Context())
	if !ok || ap.Method != auth.MethodSession {
		return webui.ErrForbidden
	}
	if _, err := s.auth.Login(r.Context(), ap.Username, current, s.auth.ClientIP(r)); err != nil {
		return webui.ErrWrongPassword
	}
	if current == next {
		return &auth.PolicyError{Reason: "the new password must differ from the current one"}
	}
	if err := s.auth.SetPassword(r.Context(), ap.UserID, next); err != nil {
		return err
	}
	if names := s.passwordChangeList(r.Context()); slices.Contains(names, ap.Username) {
		rest := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == ap.Username })
		if err := s.db.SetSetting(r.Context(), passwordChangeSetting, jsonBody(rest)); err != nil {
			return err
		}
	}
	return s.record(r, audit.ActionUserUpdate, rUsers, ap.UserID, nil, map[string]string{"change": "password"})
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
