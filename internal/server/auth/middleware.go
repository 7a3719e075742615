package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Method says how a request was authenticated.
type Method string

// Authentication methods of a Principal.
const (
	MethodSession Method = "session"
	MethodToken   Method = "token"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	// UserID, Username and Groups identify the user.
	UserID   string
	Username string
	Groups   []string
	// Method is how the request was authenticated.
	Method Method
	// Scopes are the scopes of the API token (MethodToken only); the RBAC
	// layer intersects them with the user's permissions. Sessions have no
	// scopes: they act with all of the user's permissions.
	Scopes []string
	// TokenID is the ID of the API token (MethodToken only).
	TokenID string

	sessionHash string // stored hash of the session ID (MethodSession)
	csrf        string // CSRF token of the session (MethodSession)
}

type principalKey struct{}

// WithPrincipal returns a context carrying p. Authenticate uses it; other
// packages use it in tests.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of an authenticated request. It
// returns false for unauthenticated requests, which must be denied unless
// the endpoint is public.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// Authenticate resolves the caller from an "Authorization: Bearer" API
// token or, without an Authorization header, from the session cookie, and
// stores the Principal in the request context. A request with an invalid
// Authorization header is rejected with 401 invalid_token; a request
// without credentials or with an unknown or expired session cookie passes
// through without a principal (the cookie is cleared).
func (s *Service) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if h := r.Header.Get("Authorization"); h != "" {
			p, status, code, msg := s.tokenPrincipal(ctx, h)
			if p == nil {
				if status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="mamori"`)
				}
				writeError(w, status, code, msg)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(ctx, p)))
			return
		}
		c, err := r.Cookie(s.cookie)
		if err != nil || c.Value == "" {
			next.ServeHTTP(w, r)
			return
		}
		p, err := s.sessionPrincipal(ctx, c.Value)
		switch {
		case err == nil:
			r = r.WithContext(WithPrincipal(ctx, p))
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrSessionExpired), errors.Is(err, ErrInvalidCredentials):
			s.clearSessionCookie(w)
		default:
			s.logger.Error("resolve session", "err", err)
			writeError(w, http.StatusInternalServerError, "internal_error", "cannot check the session")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenPrincipal resolves an Authorization header value. On failure it
// returns a nil principal and the HTTP status, error code and message.
func (s *Service) tokenPrincipal(ctx context.Context, header string) (p *Principal, status int, code, msg string) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, http.StatusUnauthorized, "invalid_token", "Authorization header must be \"Bearer <token>\""
	}
	t, err := s.VerifyToken(ctx, strings.TrimSpace(tok))
	switch {
	case errors.Is(err, ErrTokenExpired):
		return nil, http.StatusUnauthorized, "invalid_token", "the API token has expired"
	case errors.Is(err, ErrMalformedToken), errors.Is(err, ErrInvalidToken), errors.Is(err, ErrTokenRevoked):
		return nil, http.StatusUnauthorized, "invalid_token", "the API token is not valid"
	case err != nil:
		s.logger.Error("verify API token", "err", err)
		return nil, http.StatusInternalServerError, "internal_error", "cannot check the API token"
	}
	u, err := s.cfg.Users.UserByID(ctx, t.UserID)
	switch {
	case errors.Is(err, ErrNotFound) || (err == nil && u.Disabled):
		return nil, http.StatusUnauthorized, "invalid_token", "the API token is not valid"
	case err != nil:
		s.logger.Error("look up token owner", "token", t.ID, "err", err)
		return nil, http.StatusInternalServerError, "internal_error", "cannot check the API token"
	}
	return &Principal{UserID: u.ID, Username: u.Username, Groups: u.Groups, Method: MethodToken, Scopes: t.Scopes, TokenID: t.ID}, 0, "", ""
}

// sessionPrincipal resolves a session cookie value. Local users are looked
// up again so that disabling a user or changing its groups takes effect
// immediately; it returns ErrInvalidCredentials (after deleting the
// session) for a user that is gone or disabled.
func (s *Service) sessionPrincipal(ctx context.Context, sid string) (*Principal, error) {
	sess, err := s.LookupSession(ctx, sid)
	if err != nil {
		return nil, err
	}
	id := sess.Identity
	if id.Source == "local" {
		u, err := s.cfg.Users.UserByID(ctx, id.UserID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if u == nil || u.Disabled {
			if err := s.cfg.Sessions.DeleteSession(ctx, sess.IDHash); err != nil {
				s.logger.Error("delete session of disabled user", "err", err)
			}
			return nil, ErrInvalidCredentials
		}
		id.Username, id.Groups = u.Username, u.Groups
	}
	return &Principal{UserID: id.UserID, Username: id.Username, Groups: id.Groups, Method: MethodSession,
		sessionHash: sess.IDHash, csrf: csrfToken(sid)}, nil
}

// CSRFHeader is the request header carrying the CSRF token.
const CSRFHeader = "X-CSRF-Token"

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// RequireCSRF protects unsafe methods (anything but GET, HEAD, OPTIONS and
// TRACE). It must run after Authenticate. Requests authenticated by an API
// token are exempt, since browsers never attach bearer tokens on their own.
// Other requests are rejected with 403 csrf_failed if Sec-Fetch-Site says
// they are cross-site or their Origin is not allowed; session-authenticated
// requests other than login must also carry the session's CSRF token in
// X-CSRF-Token.
func (s *Service) RequireCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if safeMethod(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		p, ok := PrincipalFrom(r.Context())
		if ok && p.Method == MethodToken {
			next.ServeHTTP(w, r)
			return
		}
		if msg := s.checkOrigin(r); msg != "" {
			writeError(w, http.StatusForbidden, "csrf_failed", msg)
			return
		}
		// Login acts on the submitted credentials, not on the session, so
		// it needs no token even when an old session cookie is present
		// (it replaces that session); the origin checks above still apply.
		if ok && p.Method == MethodSession && r.URL.Path != LoginPath && !slices.Contains(s.cfg.FormLoginPaths, r.URL.Path) {
			got := r.Header.Get(CSRFHeader)
			if got == "" && isForm(r) {
				// HTML forms cannot set headers: they send the token as
				// the csrf_token field.
				r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
				got = r.PostFormValue(CSRFFormField)
			}
			if got == "" {
				writeError(w, http.StatusForbidden, "csrf_failed", "missing "+CSRFHeader+" header")
				return
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(p.csrf)) != 1 {
				writeError(w, http.StatusForbidden, "csrf_failed", "wrong "+CSRFHeader+" header")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// CSRFFormField carries the CSRF token in HTML form posts.
const CSRFFormField = "csrf_token"

// maxFormBody bounds a form body read for its CSRF token.
const maxFormBody = 1 << 20

func isForm(r *http.Request) bool {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded")
}

// CSRFToken is the session's CSRF token, for HTML forms ("" for token
// principals).
func (p *Principal) CSRFToken() string { return p.csrf }

// checkOrigin returns why r looks cross-origin, or "" if it does not.
// Requests without Sec-Fetch-Site and Origin (non-browser clients) pass.
func (s *Service) checkOrigin(r *http.Request) string {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return "cross-site request refused (Sec-Fetch-Site)"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return ""
	}
	origin, ok := parseOrigin(o)
	if !ok {
		return "cross-origin request refused (malformed Origin)"
	}
	if len(s.cfg.AllowedOrigins) == 0 {
		u, _ := url.Parse(origin)
		if strings.EqualFold(u.Host, r.Host) {
			return ""
		}
		return "cross-origin request refused (Origin does not match Host)"
	}
	for _, a := range s.cfg.AllowedOrigins {
		if allowed, _ := parseOrigin(a); allowed == origin {
			return ""
		}
	}
	return "cross-origin request refused (Origin not allowed)"
}

// parseOrigin normalises an origin "scheme://host[:port]" to lower case.
// "null" and anything with a path, query, fragment or user is rejected.
func parseOrigin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}
