// Package auth implements the console server's local authentication:
// argon2id password hashes, server-side sessions carried in a cookie, CSRF
// protection for cookie-authenticated requests, login throttling and
// lockout, scoped API tokens, and the HTTP middleware and login handlers
// that put an authenticated Principal into the request context.
//
// Persistence is abstracted by the small UserStore, SessionStore and
// TokenStore interfaces; MemStore implements them in memory.
package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"time"
)

// Identity is an authenticated user as returned by an Authenticator.
type Identity struct {
	// UserID is the stable user identifier.
	UserID string `json:"id"`
	// Username is the login name.
	Username string `json:"username"`
	// Groups are the groups the RBAC layer maps to roles.
	Groups []string `json:"groups"`
	// Source names the authenticator that verified the user ("local", "ldap").
	Source string `json:"source"`
}

// Errors returned by Authenticators.
var (
	// ErrUnknownUser means the authenticator does not know the user; the
	// next authenticator in the chain is tried.
	ErrUnknownUser = errors.New("unknown user")
	// ErrInvalidCredentials means the user is known but the password is
	// wrong or the account cannot log in; the chain stops.
	ErrInvalidCredentials = errors.New("invalid credentials")
)

// Authenticator verifies a username and password. It returns ErrUnknownUser
// if it does not know the user (so that the next authenticator is tried),
// ErrInvalidCredentials if the user is known but the password is wrong or
// the account is disabled, and any other error for failures of its backend.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (*Identity, error)
}

// Audit actions reported through AuditFunc.
const (
	ActionLogin       = "auth.login"
	ActionLoginFailed = "auth.login_failed"
	ActionLogout      = "auth.logout"
	ActionLocked      = "auth.locked"
)

// AuditEvent is an authentication event for the audit trail. It never
// contains a password, session ID or token secret.
type AuditEvent struct {
	// Time is when the event happened.
	Time time.Time
	// Actor is the username (as typed, for failed logins).
	Actor string
	// Action is one of the Action constants.
	Action string
	// ClientIP is the client address the request came from.
	ClientIP string
	// Reason explains a failure (for example "invalid_credentials",
	// "locked", "rate_limited"); empty on success.
	Reason string
	// Source names the authenticator that verified a successful login.
	Source string
}

// AuditFunc receives every authentication event.
type AuditFunc func(ctx context.Context, ev AuditEvent)

// Config configures a Service. Zero durations and counts take the defaults
// documented on each field.
type Config struct {
	// Users, Sessions and Tokens are the stores; all are required.
	Users    UserStore
	Sessions SessionStore
	Tokens   TokenStore

	// Authenticators are tried in order at login after the local user
	// store, for users it does not know (no such user, or no local
	// password), for example an LDAP directory.
	Authenticators []Authenticator

	// Params are the argon2id parameters for new hashes (DefaultParams).
	Params Params
	// MaxConcurrentHashes bounds concurrent password verifications
	// (runtime.GOMAXPROCS(0)); each holds Params.Memory KiB.
	MaxConcurrentHashes int

	// IdleTimeout ends a session not used for this long (30 minutes).
	IdleTimeout time.Duration
	// AbsoluteLifetime ends a session this long after login (12 hours).
	AbsoluteLifetime time.Duration

	// InsecureCookie drops the Secure attribute and the __Host- prefix of
	// the session cookie. Only for development over plain HTTP on a
	// loopback address.
	InsecureCookie bool

	// MaxFailures failed logins lock a username (5) for LockoutDuration
	// (15 minutes).
	MaxFailures     int
	LockoutDuration time.Duration
	// LoginRate is the sustained number of login attempts per second
	// allowed from one client address (1/6, 10 a minute) and LoginBurst
	// the burst (10).
	LoginRate  float64
	LoginBurst int

	// MaxTokenLifetime bounds the lifetime of API tokens (365 days).
	MaxTokenLifetime time.Duration

	// AllowedOrigins are the origins ("https://console.example.com")
	// accepted in the Origin header of unsafe requests. Empty means the
	// Origin's host must equal the request's Host.
	AllowedOrigins []string
	// FormLoginPaths are further login paths (the web console's form)
	// that, like LoginPath, need no CSRF token: they replace the session.
	FormLoginPaths []string

	// ClientIP returns the client address of a request. Nil uses the host
	// of RemoteAddr; set it to trust X-Forwarded-For from a known proxy.
	ClientIP func(*http.Request) string
	// Audit receives authentication events; nil discards them.
	Audit AuditFunc
	// Logger receives operational errors; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil uses time.Now.
	Now func() time.Time
}

// Service implements authentication. Create it with New.
type Service struct {
	cfg      Config
	lockout  *Lockout
	limiter  *RateLimiter
	hashSem  chan struct{}
	local    *localAuthenticator
	auths    []Authenticator
	dummyMu  sync.Mutex
	dummy    string
	cookie   string
	now      func() time.Time
	logger   *slog.Logger
	clientIP func(*http.Request) string
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Users == nil || cfg.Sessions == nil || cfg.Tokens == nil {
		return nil, errors.New("auth config: Users, Sessions and Tokens stores are required")
	}
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams
	}
	if err := cfg.Params.validate(); err != nil {
		return nil, fmt.Errorf("auth config: %w", err)
	}
	setDefault(&cfg.MaxConcurrentHashes, runtime.GOMAXPROCS(0))
	setDefault(&cfg.IdleTimeout, 30*time.Minute)
	setDefault(&cfg.AbsoluteLifetime, 12*time.Hour)
	setDefault(&cfg.MaxFailures, 5)
	setDefault(&cfg.LockoutDuration, 15*time.Minute)
	setDefault(&cfg.LoginRate, 1.0/6)
	setDefault(&cfg.LoginBurst, 10)
	setDefault(&cfg.MaxTokenLifetime, 365*24*time.Hour)
	for _, o := range cfg.AllowedOrigins {
		if _, ok := parseOrigin(o); !ok {
			return nil, fmt.Errorf("auth config: allowed origin %q is not scheme://host[:port]", o)
		}
	}
	s := &Service{
		cfg:      cfg,
		hashSem:  make(chan struct{}, cfg.MaxConcurrentHashes),
		now:      cfg.Now,
		logger:   cfg.Logger,
		clientIP: cfg.ClientIP,
		cookie:   "__Host-mamori_session",
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.clientIP == nil {
		s.clientIP = remoteIP
	}
	if cfg.InsecureCookie {
		s.cookie = "mamori_session"
	}
	s.lockout = NewLockout(cfg.MaxFailures, cfg.LockoutDuration, s.now)
	s.limiter = NewRateLimiter(cfg.LoginRate, cfg.LoginBurst, s.now)
	s.local = &localAuthenticator{svc: s}
	s.auths = append([]Authenticator{s.local}, cfg.Authenticators...)
	return s, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// ClientIP is the client address of a request as the service sees it
// (Config.ClientIP, by default the host of r.RemoteAddr): login throttling,
// audit events and the rest of the server must agree on it.
func (s *Service) ClientIP(r *http.Request) string { return s.clientIP(r) }

// remoteIP returns the host part of r.RemoteAddr.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// rateKey is the rate-limiting key of a client address: IPv6 clients
// usually control a whole /64, so they share one bucket per /64.
func rateKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Unmap().Is4() {
		return ip
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// CookieName returns the name of the session cookie.
func (s *Service) CookieName() string { return s.cookie }

func (s *Service) audit(ctx context.Context, ev AuditEvent) {
	if s.cfg.Audit != nil {
		ev.Time = s.now()
		s.cfg.Audit(ctx, ev)
	}
}

// acquireHash waits for a password-hashing slot.
func (s *Service) acquireHash(ctx context.Context) error {
	select {
	case s.hashSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) releaseHash() { <-s.hashSem }

// dummyHash returns a hash with the configured parameters of a random
// password, used to spend the same time on unknown users as on known ones.
func (s *Service) dummyHash() string {
	s.dummyMu.Lock()
	defer s.dummyMu.Unlock()
	if s.dummy == "" {
		// Cannot fail: the parameters were validated by New and the
		// generated password is short.
		s.dummy, _ = HashPassword(GeneratePassword(), s.cfg.Params)
	}
	return s.dummy
}

// localAuthenticator verifies passwords against the UserStore.
type localAuthenticator struct{ svc *Service }

// Authenticate implements Authenticator. For unknown users and users
// without a local password it verifies against a dummy hash so that the
// response time does not reveal whether the user exists.
func (a *localAuthenticator) Authenticate(ctx context.Context, username, password string) (*Identity, error) {
	s := a.svc
	if err := s.acquireHash(ctx); err != nil {
		return nil, err
	}
	defer s.releaseHash()
	u, err := s.cfg.Users.UserByUsername(ctx, username)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("look up user %q: %w", username, err)
	}
	if u == nil || u.PasswordHash == "" {
		// Timing equalization: the result is deliberately ignored.
		_, _ = VerifyPassword(password, s.dummyHash())
		return nil, ErrUnknownUser
	}
	ok, err := VerifyPassword(password, u.PasswordHash)
	if err != nil {
		return nil, fmt.Errorf("verify password of user %q: %w", username, err)
	}
	if !ok || u.Disabled {
		return nil, ErrInvalidCredentials
	}
	if NeedsRehash(u.PasswordHash, s.cfg.Params) {
		if h, err := HashPassword(password, s.cfg.Params); err == nil {
			if err := s.cfg.Users.SetPasswordHash(ctx, u.ID, h); err != nil {
				s.logger.Error("rehash password", "user", u.Username, "err", err)
			}
		}
	}
	return &Identity{UserID: u.ID, Username: u.Username, Groups: u.Groups, Source: "local"}, nil
}

// SetPassword validates password against the policy for the user and
// stores its hash with the configured parameters.
func (s *Service) SetPassword(ctx context.Context, userID, password string) error {
	u, err := s.cfg.Users.UserByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if err := ValidatePassword(u.Username, password); err != nil {
		return err
	}
	h, err := HashPassword(password, s.cfg.Params)
	if err != nil {
		return fmt.Errorf("set password of user %q: %w", u.Username, err)
	}
	if err := s.cfg.Users.SetPasswordHash(ctx, userID, h); err != nil {
		return fmt.Errorf("set password of user %q: %w", u.Username, err)
	}
	return nil
}

// LoginError is returned by Login when a login is refused.
type LoginError struct {
	// Code is the stable API error code: "invalid_credentials",
	// "too_many_attempts" (the username is locked) or "rate_limited"
	// (the client address sent too many attempts).
	Code string
	// RetryAfter is set for "too_many_attempts" and "rate_limited".
	RetryAfter time.Duration
}

func (e *LoginError) Error() string { return "login refused: " + e.Code }

// Login checks the client rate limit and the username lockout, then tries
// the authenticator chain. It reports the outcome to the audit trail. A
// refused login returns a *LoginError whose code does not reveal whether
// the user exists; other errors are backend failures.
func (s *Service) Login(ctx context.Context, username, password, clientIP string) (*Identity, error) {
	fail := func(reason string) {
		s.audit(ctx, AuditEvent{Actor: username, Action: ActionLoginFailed, ClientIP: clientIP, Reason: reason})
	}
	if ok, retry := s.limiter.Allow(rateKey(clientIP)); !ok {
		fail("rate_limited")
		return nil, &LoginError{Code: "rate_limited", RetryAfter: retry}
	}
	if until, locked := s.lockout.Locked(username); locked {
		fail("locked")
		return nil, &LoginError{Code: "too_many_attempts", RetryAfter: until.Sub(s.now())}
	}
	var id *Identity
	var err error
	for _, a := range s.auths {
		id, err = a.Authenticate(ctx, username, password)
		if !errors.Is(err, ErrUnknownUser) {
			break
		}
	}
	switch {
	case err == nil && id != nil:
		s.lockout.Succeed(username)
		s.audit(ctx, AuditEvent{Actor: id.Username, Action: ActionLogin, ClientIP: clientIP, Source: id.Source})
		return id, nil
	case err == nil, errors.Is(err, ErrUnknownUser), errors.Is(err, ErrInvalidCredentials):
		fail("invalid_credentials")
		if s.lockout.Fail(username) {
			s.audit(ctx, AuditEvent{Actor: username, Action: ActionLocked, ClientIP: clientIP, Reason: "too_many_failures"})
		}
		return nil, &LoginError{Code: "invalid_credentials"}
	default:
		fail("backend_error")
		return nil, fmt.Errorf("login %q: %w", username, err)
	}
}
