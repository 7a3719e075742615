// Package server is mamori's console server: it wires the database
// (package store), authentication (auth, ldapauth, oidcauth), authorization
// (rbac), the audit trail (audit), the scan queue (jobs) and the REST API
// (api) together. `mamori server` runs it.
//
// Every request passes authentication, CSRF protection for cookie
// sessions, the route's permission check and, for objects in application
// scopes, an object check; every change and login is appended to the
// hash-chained audit trail.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/mamorisec/mamori/internal/image"
	"github.com/mamorisec/mamori/internal/pipeline"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/scanner"
	"github.com/mamorisec/mamori/internal/server/api"
	"github.com/mamorisec/mamori/internal/server/audit"
	"github.com/mamorisec/mamori/internal/server/auth"
	"github.com/mamorisec/mamori/internal/server/firstrun"
	"github.com/mamorisec/mamori/internal/server/jobs"
	"github.com/mamorisec/mamori/internal/server/ldapauth"
	"github.com/mamorisec/mamori/internal/server/oidcauth"
	"github.com/mamorisec/mamori/internal/server/rbac"
	"github.com/mamorisec/mamori/internal/server/store"
	"github.com/mamorisec/mamori/internal/vulndb"
	"github.com/mamorisec/mamori/internal/webui"
)

// maxSessionLifetime bounds a session's stored expiry (auth enforces
// the idle timeout and absolute lifetime).
const maxSessionLifetime = 12 * time.Hour

// AdminUser is the name of the account created on first start.
const AdminUser = "admin"

// Config configures a server.
type Config struct {
	// DataDir holds the server key, the TLS certificate and, by default,
	// the SQLite database.
	DataDir string
	// DatabaseURL is "postgres://..." for PostgreSQL; empty means SQLite
	// in DataDir.
	DatabaseURL string
	// VulnDB is the vulnerability database file scans use.
	VulnDB string
	// AdminPasswordFile, or the environment variable
	// MAMORI_ADMIN_PASSWORD, sets the first admin password; without them
	// one is generated and reported once through FirstRun.
	AdminPasswordFile string
	// InsecureCookie drops the Secure cookie flag (plain HTTP on loopback
	// only).
	InsecureCookie bool
	// Workers is the number of local scan workers (default 1).
	Workers int
	// Log is the structured logger.
	Log *slog.Logger
	// LDAP, when set, is a directory whose users may log in after the
	// local users; role bindings on their group DNs grant their roles.
	LDAP *ldapauth.Config
	// OIDC, when set, is a single sign-on provider (authorization code +
	// PKCE); its RedirectURL must be this server's
	// /api/v1/auth/oidc/callback. An empty CookieKey is derived from the
	// server key.
	OIDC *oidcauth.Config
	// FirstRun receives the generated admin password on the first start.
	FirstRun func(username, password string)
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Server is a running console.
type Server struct {
	cfg     Config
	db      *store.Store
	auth    *auth.Service
	audit   *audit.Log
	authz   *authorizer
	queue   *jobs.Queue
	router  *api.Router
	metrics *api.Metrics
	handler http.Handler
	key     []byte
	data    *firstrun.Data
	// console is the web console; its live feeds end on Close.
	console *webui.UI
	cancel  context.CancelFunc
	done    chan struct{}
	hooks   webhooks
	oidc    *oidcauth.Provider
	bases   sync.Map // trusted base image reference -> layer diffIDs
	fleet   *fleetService
}

// New opens (or creates) the data directory and the database, runs the
// migrations, creates the first admin on first start, and builds the
// HTTP handler. Start begins background work; Close stops it.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	data, err := firstrun.Prepare(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	url := cfg.DatabaseURL
	if url == "" {
		url = filepath.Join(data.Dir, firstrun.DBFile)
	}
	db, err := store.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, db: db, key: data.Key, data: data, metrics: api.NewMetrics(), done: make(chan struct{})}
	if err := db.SetSecretKey(deriveKey(data.Key, "registry secrets")); err != nil {
		db.Close()
		return nil, err
	}
	if s.audit, err = audit.NewLog(auditStore{db}, audit.WithKey(deriveKey(data.Key, "audit"))); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.audit.CheckKey(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit trail: %w", err)
	}
	as := authStore{db}
	var chain []auth.Authenticator
	if cfg.LDAP != nil {
		dir, err := ldapauth.New(*cfg.LDAP)
		if err != nil {
			db.Close()
			return nil, err
		}
		chain = append(chain, directoryLogin{db: db, dir: dir})
	}
	s.auth, err = auth.New(auth.Config{
		Users: as, Sessions: as, Tokens: as, InsecureCookie: cfg.InsecureCookie, Authenticators: chain,
		FormLoginPaths: []string{webui.LoginPath},
		Audit:          s.auditAuth, Logger: cfg.Log, Now: cfg.Now,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	if cfg.OIDC != nil {
		oc := *cfg.OIDC
		if len(oc.CookieKey) == 0 {
			oc.CookieKey = deriveKey(data.Key, "oidc state cookie")
		}
		if s.oidc, err = oidcauth.New(ctx, oc); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := s.ensureAdmin(ctx); err != nil {
		db.Close()
		return nil, err
	}
	s.authz = &authorizer{db: db, denied: s.auditDenied}
	if s.fleet, err = newFleetService(s, data.Dir); err != nil {
		db.Close()
		return nil, err
	}
	s.queue = jobs.NewQueue(jobs.Config{Sink: scanSink{s}, Now: cfg.Now})
	s.router = api.NewRouter(cfg.Log, s.authz, s.metrics)
	s.routes()
	s.router.Mount("/api/v1/scanner/", jobs.NewHandler(s.queue, jobs.HandlerOptions{Authorize: s.authorizeScanner}))
	top := http.NewServeMux()
	// Registry push notifications carry the registry's webhook secret, not
	// a user's session or token: they skip user authentication.
	top.Handle("POST /api/v1/registries/{id}/webhook", s.router)
	console, err := s.newConsole()
	if err != nil {
		db.Close()
		return nil, err
	}
	s.console = console
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAPIPath(r.URL.Path) {
			s.router.ServeHTTP(w, r)
			return
		}
		console.ServeHTTP(w, r)
	})
	top.Handle("/", s.auth.Authenticate(s.auth.RequireCSRF(app)))
	s.handler = top
	return s, nil
}

// SelfSignedTLS is the TLS configuration with the data directory's
// self-signed certificate for hosts (created on first use).
func (s *Server) SelfSignedTLS(hosts []string) (*tls.Config, error) { return s.data.TLSConfig(hosts) }

// VerifyAudit checks the audit chain of the server whose data directory
// and database are given, writes the result to w and reports whether the
// chain is intact.
func VerifyAudit(ctx context.Context, dataDir, databaseURL string, w io.Writer) (bool, error) {
	data, err := firstrun.Prepare(dataDir)
	if err != nil {
		return false, err
	}
	url := databaseURL
	if url == "" {
		url = filepath.Join(data.Dir, firstrun.DBFile)
	}
	db, err := store.Open(ctx, url)
	if err != nil {
		return false, err
	}
	defer db.Close()
	r, err := audit.Verify(ctx, auditStore{db}, audit.VerifyOptions{Key: deriveKey(data.Key, "audit")})
	if err != nil {
		return false, err
	}
	_, err = fmt.Fprintln(w, r.String())
	return r.OK(), err
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Routes is the API route table.
func (s *Server) Routes() []*api.Route { return s.router.Routes() }

// OpenAPI is the API's OpenAPI 3.1 document.
func (s *Server) OpenAPI() map[string]any {
	return api.OpenAPI(api.Info{Title: "mamori console API", Version: "1",
		Description: "The REST API of mamori's console: images and their scans, vulnerabilities across images, policies, users, roles, application scopes, API tokens and the audit trail."},
		s.router.Routes())
}

// Start runs the local scan workers and periodic upkeep until Close.
func (s *Server) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		go s.queue.RunWorkers(ctx, s.scan, jobs.PoolOptions{Workers: s.cfg.Workers})
		go func() {
			if err := s.scheduler().Run(ctx, time.Minute); err != nil && ctx.Err() == nil {
				s.cfg.Log.Error("registry scheduler stopped", "err", err)
			}
		}()
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := s.auth.PurgeExpiredSessions(ctx); err != nil {
					s.cfg.Log.Warn("purging expired sessions", "err", err)
				}
			}
		}
	}()
}

// Close stops background work and closes the database.
func (s *Server) Close() error {
	s.console.Stop()
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	return s.db.Close()
}

// Serve serves HTTP(S) on l until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.cfg.Log.Handler(), slog.LevelWarn)}
	// Live feeds are long requests: end them when shutting down.
	hs.RegisterOnShutdown(s.console.Stop)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ensureAdmin stores the built-in roles (so bindings can name them) and
// creates the admin account, bound to Administrator on the Global scope,
// when the database has no user.
func (s *Server) ensureAdmin(ctx context.Context) error {
	for _, r := range rbac.BuiltinRoles() {
		if _, err := s.db.GetRole(ctx, r.Name); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		sr := store.Role{Name: r.Name, Description: r.Description}
		for t, a := range r.Permissions {
			sr.Permissions = append(sr.Permissions, string(t)+":"+string(a))
		}
		if _, err := s.db.CreateRole(ctx, sr); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	page, err := s.db.ListUsers(ctx, store.ListOptions{Limit: 1})
	if err != nil {
		return err
	}
	if len(page.Items) > 0 {
		return nil
	}
	pw, generated, err := auth.AdminPassword(AdminUser, s.cfg.AdminPasswordFile, "MAMORI_ADMIN_PASSWORD", os.Getenv("MAMORI_ADMIN_PASSWORD"))
	if err != nil {
		return fmt.Errorf("first admin password: %w", err)
	}
	hash, err := auth.HashPassword(pw, auth.DefaultParams)
	if err != nil {
		return err
	}
	u, err := s.db.CreateUser(ctx, store.User{Username: AdminUser, DisplayName: "Administrator", PasswordHash: hash, Source: store.SourceLocal})
	if err != nil {
		return err
	}
	if _, err := s.db.CreateRoleBinding(ctx, store.RoleBinding{SubjectKind: store.SubjectUser, Subject: AdminUser, Role: "Administrator", Scopes: []string{rbac.GlobalScopeName}}); err != nil {
		return err
	}
	if _, err := s.audit.Append(ctx, audit.Event{Actor: audit.Actor{Kind: audit.ActorSystem, ID: "server", Name: "mamori"}, Action: "user.create",
		ResourceType: "users", ResourceID: strconv.FormatInt(u.ID, 10), After: jsonBody(map[string]any{"username": AdminUser, "role": "Administrator", "scope": rbac.GlobalScopeName}),
		Outcome: audit.Success, Reason: "first start"}); err != nil {
		return err
	}
	if generated {
		// A generated password travels through logs and terminals: the
		// console makes the admin replace it on the first login.
		if err := s.db.SetSetting(ctx, passwordChangeSetting, jsonBody([]string{AdminUser})); err != nil {
			return err
		}
		if s.cfg.FirstRun != nil {
			s.cfg.FirstRun(AdminUser, pw)
		}
	}
	return nil
}

// scan runs one scan job with the server's vulnerability database and
// the stored credentials of the image's registry.
func (s *Server) scan(ctx context.Context, ref string) (*report.Scan, error) {
	db, err := vulndb.Open(s.cfg.VulnDB)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	opts, err := s.registryOptions(ctx, ref)
	if err != nil {
		return nil, err
	}
	pols, exc, err := s.assurancePolicies(ctx)
	if err != nil {
		return nil, err
	}
	if pols, err = s.policiesFor(ctx, ref, pols); err != nil {
		return nil, err
	}
	// The reference is explicitly a registry image: a server never reads
	// local paths or the host's Docker Engine on a user's behalf.
	return pipeline.Run(ctx, "registry:"+ref, pipeline.Config{DB: db, Now: s.cfg.Now, Inventory: scanner.Options{Image: opts},
		Policies: pols, Exceptions: exc})
}

// registryOptions finds the stored registry whose URL names ref's host
// and returns its credentials.
func (s *Server) registryOptions(ctx context.Context, ref string) (image.Options, error) {
	var opts image.Options
	r, err := name.ParseReference(ref)
	if err != nil {
		return opts, err
	}
	host := r.Context().RegistryStr()
	page, err := s.db.ListRegistries(ctx, store.ListOptions{Limit: store.MaxLimit})
	if err != nil {
		return opts, err
	}
	for _, reg := range page.Items {
		u, err := url.Parse(reg.URL)
		if err != nil || u.Host != host {
			continue
		}
		secret, err := s.db.RegistrySecret(ctx, reg.ID)
		if err != nil {
			return opts, err
		}
		switch reg.AuthType {
		case store.AuthBearer:
			opts.RegistryToken = secret
		case store.AuthBasic:
			opts.Username, opts.Password = reg.Username, secret
		}
		opts.Insecure = reg.Insecure
		break
	}
	return opts, nil
}
