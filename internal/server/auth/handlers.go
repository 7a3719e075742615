package auth

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// Routes of the authentication API.
const (
	LoginPath   = "/api/v1/auth/login"
	LogoutPath  = "/api/v1/auth/logout"
	SessionPath = "/api/v1/auth/session"
)

// maxUsernameLength bounds usernames accepted at login, in bytes.
const maxUsernameLength = 256

// maxLoginBody bounds the login request body.
const maxLoginBody = 8 << 10

// Mount registers the login, logout and session handlers on mux. The mux
// must be served through Authenticate and RequireCSRF, for example
// svc.Authenticate(svc.RequireCSRF(mux)).
func (s *Service) Mount(mux *http.ServeMux) {
	mux.HandleFunc("POST "+LoginPath, s.HandleLogin)
	mux.HandleFunc("POST "+LogoutPath, s.HandleLogout)
	mux.HandleFunc("GET "+SessionPath, s.HandleSession)
}

// errorBody is the JSON error format of the API.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError writes {"error":{"code":code,"message":msg}} with status.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// The client may have gone; there is nobody to report an error to.
	_ = json.NewEncoder(w).Encode(v)
}

// userJSON is the user in login and session responses.
type userJSON struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Groups   []string `json:"groups"`
}

// SessionResponse is the body of successful login and session responses.
type SessionResponse struct {
	User userJSON `json:"user"`
	// AuthMethod is "session" or "token".
	AuthMethod Method `json:"auth_method"`
	// CSRFToken must be sent in X-CSRF-Token with unsafe requests
	// (session authentication only).
	CSRFToken string `json:"csrf_token,omitempty"`
	// ExpiresAt is the end of the session's absolute lifetime (login only).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Scopes are the API token's scopes (token authentication only).
	Scopes []string `json:"scopes,omitempty"`
}

func groupsOrEmpty(g []string) []string {
	if g == nil {
		return []string{}
	}
	return g
}

// HandleLogin serves POST /api/v1/auth/login with a JSON body
// {"username":...,"password":...}. On success it deletes any session the
// client already had (so a planted session ID is never promoted), starts a
// new session, sets the session cookie and returns a SessionResponse. A
// refused login gives 401 invalid_credentials or 429 too_many_attempts /
// rate_limited with Retry-After; the response never says whether the user
// exists.
func (s *Service) HandleLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the login body must be application/json")
		return
	}
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the login body must be a JSON object {\"username\":...,\"password\":...} of at most 8 KiB")
		return
	}
	if req.Username == "" || len(req.Username) > maxUsernameLength || !utf8.ValidString(req.Username) ||
		req.Password == "" || len(req.Password) > MaxPasswordLength {
		writeError(w, http.StatusBadRequest, "invalid_request", "username and password are required (username at most 256 bytes, password at most 1024 bytes)")
		return
	}
	ctx := r.Context()
	id, err := s.Login(ctx, req.Username, req.Password, s.clientIP(r))
	if err != nil {
		var le *LoginError
		if !errors.As(err, &le) {
			s.logger.Error("login", "err", err)
			writeError(w, http.StatusInternalServerError, "internal_error", "login failed because of a server error")
			return
		}
		switch le.Code {
		case "invalid_credentials":
			writeError(w, http.StatusUnauthorized, le.Code, "invalid username or password")
		case "too_many_attempts":
			setRetryAfter(w, le.RetryAfter)
			writeError(w, http.StatusTooManyRequests, le.Code, "too many failed logins for this username; try again later")
		default:
			setRetryAfter(w, le.RetryAfter)
			writeError(w, http.StatusTooManyRequests, le.Code, "too many login attempts from this address; try again later")
		}
		return
	}
	// Session fixation: never reuse a session ID the client sent.
	if c, err := r.Cookie(s.cookie); err == nil && c.Value != "" {
		if err := s.DeleteSession(ctx, c.Value); err != nil {
			s.logger.Error("delete previous session at login", "err", err)
		}
	}
	sid, sess, err := s.CreateSession(ctx, id)
	if err != nil {
		s.logger.Error("login", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "login failed because of a server error")
		return
	}
	s.setSessionCookie(w, sid)
	exp := sess.CreatedAt.Add(s.cfg.AbsoluteLifetime)
	writeJSON(w, http.StatusOK, SessionResponse{
		User:       userJSON{ID: id.UserID, Username: id.Username, Groups: groupsOrEmpty(id.Groups)},
		AuthMethod: MethodSession,
		CSRFToken:  csrfToken(sid),
		ExpiresAt:  &exp,
	})
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int((d + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
}

// HandleLogout serves POST /api/v1/auth/logout: it deletes the session on
// the server, clears the cookie and answers 204. It needs a session
// (401 unauthenticated otherwise); RequireCSRF checks its CSRF token.
func (s *Service) HandleLogout(w http.ResponseWriter, r *http.Request) {
	p, ok := PrincipalFrom(r.Context())
	if !ok || p.Method != MethodSession {
		writeError(w, http.StatusUnauthorized, "unauthenticated", "logout needs a session")
		return
	}
	if err := s.EndSession(w, r); err != nil {
		s.logger.Error("logout", "err", err)
		writeError(w, http.StatusInternalServerError, "internal_error", "logout failed because of a server error")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// EndSession logs the request's session out: it is deleted on the server,
// its cookie cleared and the logout audited. Without a session it does
// nothing.
func (s *Service) EndSession(w http.ResponseWriter, r *http.Request) error {
	p, ok := PrincipalFrom(r.Context())
	if !ok || p.Method != MethodSession {
		return nil
	}
	if err := s.cfg.Sessions.DeleteSession(r.Context(), p.sessionHash); err != nil {
		return err
	}
	s.clearSessionCookie(w)
	s.audit(r.Context(), AuditEvent{Actor: p.Username, Action: ActionLogout, ClientIP: s.clientIP(r)})
	return nil
}

// HandleSession serves GET /api/v1/auth/session: the current user, how it
// was authenticated and, for sessions, the CSRF token. Unauthenticated
// requests get 401 unauthenticated.
func (s *Service) HandleSession(w http.ResponseWriter, r *http.Request) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		writeError(w, http.StatusUnauthorized, "unauthenticated", "not logged in")
		return
	}
	writeJSON(w, http.StatusOK, SessionResponse{
		User:       userJSON{ID: p.UserID, Username: p.Username, Groups: groupsOrEmpty(p.Groups)},
		AuthMethod: p.Method,
		CSRFToken:  p.csrf,
		Scopes:     p.Scopes,
	})
}
