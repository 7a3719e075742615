package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/image"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/audit"
	"github.com/mamorisec/mamori/internal/server/auth"
	"github.com/mamorisec/mamori/internal/server/jobs"
	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/store"
)

// deriveKey derives a purpose-specific key from the server key, so that
// the audit chain and other uses never share key material.
func deriveKey(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("mamori key derivation\x00" + purpose))
	return m.Sum(nil)
}

// auditStore adapts the database's append-only audit table to package
// audit, which computes the chain.
type auditStore struct {
	db *store.Store
}

var _ audit.Store = auditStore{}

func (a auditStore) Last(ctx context.Context) (audit.Event, bool, error) {
	b, ok, err := a.db.LastAuditEvent(ctx)
	if err != nil || !ok {
		return audit.Event{}, ok, err
	}
	var e audit.Event
	if err := json.Unmarshal(b, &e); err != nil {
		return e, false, fmt.Errorf("audit trail: last event: %w", err)
	}
	return e, true, nil
}

func (a auditStore) Append(ctx context.Context, e audit.Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	err = a.db.AppendAuditEvent(ctx, store.AuditRecord{
		Seq: e.Seq, Time: e.Time, Actor: e.Actor.Name, Action: e.Action, ResourceType: e.ResourceType,
		ResourceID: e.ResourceID, Outcome: string(e.Outcome), Hash: e.Hash, Event: b,
	})
	if err != nil && store.IsConflict(err) {
		return fmt.Errorf("%w: %v", audit.ErrConflict, err)
	}
	return err
}

func (a auditStore) Range(ctx context.Context, fromSeq int64, fn func(audit.Event) error) error {
	return a.db.RangeAuditEvents(ctx, fromSeq, func(b []byte) error {
		var e audit.Event
		if err := json.Unmarshal(b, &e); err != nil {
			return fmt.Errorf("audit trail: %w", err)
		}
		return fn(e)
	})
}

// scanSink stores finished scans (judged by the assurance policies in
// the scan itself, see Server.scan): the report with all its findings in
// one transaction, and the completion in the audit trail.
type scanSink struct{ s *Server }

func (k scanSink) SaveScan(ctx context.Context, job jobs.Job, rep *report.Scan) error {
	s := k.s
	im := imageOf(job.Ref, rep)
	sc, err := s.db.IngestScan(ctx, im, rep)
	if err != nil {
		return err
	}
	_, err = s.audit.Append(ctx, audit.Event{Actor: audit.Actor{Kind: audit.ActorSystem, ID: "scanner", Name: "scanner"}, Action: audit.ActionScanComplete,
		ResourceType: rScans, ResourceID: strconv.FormatInt(sc.ID, 10), Outcome: audit.Success,
		After: jsonBody(map[string]any{"image": im.Ref(), "job": job.ID, "assurance": sc.Assurance})})
	return err
}

// assurancePolicies loads the current assurance policies and the
// exceptions in force, for judging a scan.
func (s *Server) assurancePolicies(ctx context.Context) ([]*assurance.Policy, []assurance.Exception, error) {
	page, err := s.db.ListPolicies(ctx, store.PolicyAssurance, store.ListOptions{Limit: store.MaxLimit})
	if err != nil {
		return nil, nil, err
	}
	var out []*assurance.Policy
	for _, p := range page.Items {
		pol, err := assurance.Parse(p.Name, p.Definition)
		if err != nil {
			return nil, nil, fmt.Errorf("assurance policy %q: %w", p.Name, err)
		}
		if err := pol.ResolveBaseImages(func(ref string) ([]string, error) { return s.baseLayers(ctx, ref) }); err != nil {
			return nil, nil, fmt.Errorf("assurance policy %q: %w", p.Name, err)
		}
		out = append(out, pol)
	}
	exc, err := s.exceptions(ctx)
	return out, exc, err
}

// exceptions loads the exceptions in force.
func (s *Server) exceptions(ctx context.Context) ([]assurance.Exception, error) {
	page, err := s.db.ListExceptions(ctx, store.ListOptions{Limit: store.MaxLimit})
	if err != nil {
		return nil, err
	}
	var out []assurance.Exception
	for _, e := range page.Items {
		out = append(out, assurance.Exception{ID: strconv.FormatInt(e.ID, 10), Image: e.Scope, Finding: e.VulnID, Control: e.Rule,
			Expires: e.Expires, Justification: e.Justification, CreatedBy: e.CreatedBy})
	}
	return out, nil
}

// imageOf names the stored image for a scanned reference.
func imageOf(ref string, rep *report.Scan) store.Image {
	im := store.Image{Registry: "local", Repository: ref}
	if r, err := name.ParseReference(ref); err == nil {
		im.Registry, im.Repository = r.Context().RegistryStr(), r.Context().RepositoryStr()
		if t, ok := r.(name.Tag); ok {
			im.Tag = t.TagStr()
		}
		if d, ok := r.(name.Digest); ok {
			im.Digest = d.DigestStr()
		}
	}
	if info := rep.Inventory.Image; info.Digest != "" {
		im.Digest = info.Digest
	}
	im.ImageID = rep.Inventory.Image.ID
	return im
}

// authorizeScanner admits remote scanners: an authenticated principal
// allowed to edit scans of every image (the built-in Scanner role on the
// Global scope, usually through an API token).
func (s *Server) authorizeScanner(r *http.Request) error {
	ap, ok := auth.PrincipalFrom(r.Context())
	if !ok {
		return api.Errorf(http.StatusUnauthorized, api.CodeUnauthenticated, "a scanner token is required")
	}
	p, err := s.authz.resolve(r.Context(), ap)
	if err != nil {
		return err
	}
	if f := rbac.ListFilter(p, rbac.Edit, rbac.Scans); f.Kind != rbac.FilterAll {
		return api.Errorf(http.StatusForbidden, api.CodeForbidden, "remote scanners need edit on scans in the Global scope")
	}
	return nil
}

// auditDenied records a request the route check refused: access to
// something the caller holds no permission for is a security event.
func (s *Server) auditDenied(r *http.Request, ap *auth.Principal, rt *api.Route, reason string) {
	_, err := s.audit.Append(r.Context(), audit.Event{Actor: actorOf(ap), ActorIP: s.auth.ClientIP(r), Action: audit.ActionAccessDenied,
		ResourceType: rt.Resource, ResourceID: rt.Method + " " + rt.Path, Outcome: audit.Denied, Reason: reason})
	if err != nil {
		s.cfg.Log.ErrorContext(r.Context(), "audit trail append failed", "action", audit.ActionAccessDenied, "err", err)
	}
}

// baseLayers returns the layer diffIDs of a trusted base image, looked up
// in its registry with the stored credentials (and remembered for the
// server's lifetime: a base image tag that moves needs a restart or the
// digest in the policy).
func (s *Server) baseLayers(ctx context.Context, ref string) ([]string, error) {
	if v, ok := s.bases.Load(ref); ok {
		return v.([]string), nil
	}
	opts, err := s.registryOptions(ctx, ref)
	if err != nil {
		return nil, err
	}
	img, err := image.Open(ctx, "registry:"+ref, opts)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	var ids []string
	for _, l := range img.Layers {
		ids = append(ids, l.DiffID())
	}
	s.bases.Store(ref, ids)
	return ids, nil
}

// policiesFor keeps the policies whose application scopes include the
// image (a policy without scopes judges every image).
func (s *Server) policiesFor(ctx context.Context, ref string, pols []*assurance.Policy) ([]*assurance.Policy, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	attrs := rbac.Attributes{Registry: r.Context().RegistryStr(), Image: r.Context().RegistryStr() + "/" + r.Context().RepositoryStr()}
	cat, err := s.authz.catalog(ctx)
	if err != nil {
		return nil, err
	}
	var out []*assurance.Policy
	for _, p := range pols {
		if len(p.Scopes) == 0 {
			out = append(out, p)
			continue
		}
		scopes, err := cat.Scopes(p.Scopes)
		if err != nil {
			return nil, fmt.Errorf("assurance policy %q: %w", p.Name, err)
		}
		for _, sc := range scopes {
			if sc.Matches(rbac.Images, attrs) {
				out = append(out, p)
				break
			}
		}
	}
	return out, nil
}
