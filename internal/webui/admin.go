package webui

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/server/auth"
	"github.com/mamorisec/mamori/internal/server/query"
	"github.com/mamorisec/mamori/internal/server/store"
)

// policyRow is one assurance policy in the list.
type policyRow struct {
	store.Policy
	Disabled    bool
	Mode        string
	EnforceFrom time.Time
	Scopes      []string
	Problem     string
}

// policies shows the policy list and the editor; notice and problem are
// the outcome of a save, definition the text to show again.
func (u *UI) policies(w http.ResponseWriter, r *http.Request, status int, notice, problem, definition string) {
	p, err := u.d.Policies(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	var rows []policyRow
	for _, sp := range p.Items {
		row := policyRow{Policy: sp}
		if pol, err := assurance.Parse(sp.Name, sp.Definition); err != nil {
			row.Problem = err.Error()
		} else {
			row.Disabled, row.Mode, row.EnforceFrom, row.Scopes = pol.Disabled, pol.Mode, pol.EnforceFrom, pol.Scopes
		}
		rows = append(rows, row)
	}
	if edit := r.URL.Query().Get("edit"); edit != "" && definition == "" {
		for _, sp := range p.Items {
			if sp.Name == edit {
				definition = string(sp.Definition)
			}
		}
	}
	u.render(w, r, status, "policies", page{Page: "policies", Error: problem, Notice: notice,
		Data: map[string]any{"Items": rows, "Definition": definition}})
}

func (u *UI) savePolicy(w http.ResponseWriter, r *http.Request) {
	def := r.PostForm.Get("definition")
	err := u.d.SavePolicy(r, []byte(def))
	switch {
	case errors.Is(err, ErrInvalidPolicy):
		u.policies(w, r, http.StatusBadRequest, "", strings.TrimPrefix(err.Error(), ErrInvalidPolicy.Error()+": "), def)
	case err != nil:
		u.fail(w, r, err)
	default:
		u.policies(w, r, http.StatusOK, "policies.saved", "", "")
	}
}

// togglePolicy enables or disables a policy.
func (u *UI) togglePolicy(w http.ResponseWriter, r *http.Request) {
	name := r.PostForm.Get("name")
	err := u.d.SetPolicyEnabled(r, name, r.PostForm.Get("enabled") == "true")
	switch {
	case errors.Is(err, ErrInvalidPolicy):
		u.policies(w, r, http.StatusBadRequest, "", strings.TrimPrefix(err.Error(), ErrInvalidPolicy.Error()+": "), "")
	case err != nil:
		u.fail(w, r, err)
	default:
		u.policies(w, r, http.StatusOK, "policies.saved", "", "")
	}
}

// importPolicies stores a JSON array of policies pasted or uploaded as a
// file; nothing is stored unless every policy is valid.
func (u *UI) importPolicies(w http.ResponseWriter, r *http.Request) {
	data := []byte(r.PostForm.Get("policies"))
	n, err := u.d.ImportPolicies(r, data)
	switch {
	case errors.Is(err, ErrInvalidPolicy):
		u.policies(w, r, http.StatusBadRequest, "", strings.TrimPrefix(err.Error(), ErrInvalidPolicy.Error()+": "), "")
	case err != nil:
		u.fail(w, r, err)
	case n == 0:
		u.policies(w, r, http.StatusBadRequest, "", u.msg(r, "policies.importEmpty"), "")
	default:
		u.policies(w, r, http.StatusOK, "policies.imported", "", "")
	}
}

// exportPolicies downloads every assurance policy as one JSON array, the
// format the import takes.
func (u *UI) exportPolicies(w http.ResponseWriter, r *http.Request) {
	b, err := u.d.ExportPolicies(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="mamori-assurance-policies.json"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// auditFields are the audit log's filter form fields.
var auditFields = []struct{ Param, Field, Op string }{
	{"actor", "actor", "~"}, {"action", "action", "~"}, {"resourceType", "resourceType", "="},
	{"outcome", "outcome", "="},
}

// auditFilter builds the audit filter from the form.
func auditFilter(q url.Values) (string, error) {
	var conds []string
	for _, f := range auditFields {
		if v := strings.TrimSpace(q.Get(f.Param)); v != "" {
			conds = append(conds, f.Field+f.Op+query.EscapeValue(v))
		}
	}
	for _, b := range []struct{ param, op string }{{"since", ">="}, {"until", "<"}} {
		v := strings.TrimSpace(q.Get(b.param))
		if v == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return "", errors.New(b.param + ": want a date such as 2026-11-24")
		}
		conds = append(conds, "time"+b.op+t.Format(time.RFC3339))
	}
	return strings.Join(conds, ";"), nil
}

func (u *UI) auditLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	data := map[string]any{"Q": q, "Outcomes": []string{"success", "failure", "denied"}}
	filter, err := auditFilter(q)
	if err != nil {
		u.render(w, r, http.StatusBadRequest, "audit", page{Page: "audit", Error: err.Error(), Data: data})
		return
	}
	p, err := u.d.Audit(r, store.ListOptions{Filter: filter, Cursor: q.Get("cursor"), Limit: 100})
	if errors.Is(err, store.ErrInvalid) {
		u.render(w, r, http.StatusBadRequest, "audit", page{Page: "audit", Error: err.Error(), Data: data})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	exp := url.Values{"format": {"csv"}}
	if filter != "" {
		exp.Set("filter", filter)
	}
	data["Items"], data["Export"] = p.Items, "/api/v1/audit/export?"+exp.Encode()
	if p.Next != "" {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("cursor", p.Next)
		data["Next"] = next.Encode()
	}
	u.render(w, r, http.StatusOK, "audit", page{Page: "audit", Live: true, Data: data})
}

// scopes lists application scopes and edits them as JSON.
func (u *UI) scopes(w http.ResponseWriter, r *http.Request, status int, notice, problem, definition string) {
	p, err := u.d.Scopes(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	roles, err := u.d.Roles(r)
	if err != nil && !errors.Is(err, ErrForbidden) {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, status, "scopes", page{Page: "scopes", Notice: notice, Error: problem,
		Data: map[string]any{"Items": p.Items, "Roles": roles.Items, "Definition": definition}})
}

func (u *UI) saveScope(w http.ResponseWriter, r *http.Request) {
	def := r.PostForm.Get("definition")
	err := u.d.SaveScope(r, []byte(def))
	switch {
	case errors.Is(err, store.ErrInvalid) || errors.Is(err, ErrInvalidPolicy):
		u.scopes(w, r, http.StatusBadRequest, "", err.Error(), def)
	case err != nil:
		u.fail(w, r, err)
	default:
		u.scopes(w, r, http.StatusOK, "scopes.saved", "", "")
	}
}

// tokens lists the session user's API tokens; p carries a new token's
// secret (shown once) or a problem.
func (u *UI) tokens(w http.ResponseWriter, r *http.Request, status int, p page) {
	list, err := u.d.Tokens(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	data, _ := p.Data.(map[string]any)
	if data == nil {
		data = map[string]any{}
	}
	data["Items"] = list.Items
	p.Page, p.Data = "tokens", data
	u.render(w, r, status, "tokens", p)
}

// maxTokenDays bounds the lifetime of a token made in the console.
const maxTokenDays = 366

func (u *UI) createToken(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	days, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("days")))
	if err != nil || days < 1 || days > maxTokenDays {
		u.tokens(w, r, http.StatusBadRequest, page{Error: u.msg(r, "tokens.badDays")})
		return
	}
	secret, err := u.d.CreateToken(r, name, r.PostForm.Get("access"), time.Duration(days)*24*time.Hour)
	switch {
	case errors.Is(err, store.ErrInvalid):
		u.tokens(w, r, http.StatusBadRequest, page{Error: err.Error()})
	case err != nil:
		u.fail(w, r, err)
	default:
		u.tokens(w, r, http.StatusCreated, page{Notice: "tokens.created", Data: map[string]any{"Secret": secret}})
	}
}

func (u *UI) revokeToken(w http.ResponseWriter, r *http.Request) {
	if err := u.d.RevokeToken(r, r.PostForm.Get("id")); err != nil {
		u.fail(w, r, err)
		return
	}
	u.tokens(w, r, http.StatusOK, page{Notice: "tokens.revoked"})
}

// settings shows the server settings.
func (u *UI) settings(w http.ResponseWriter, r *http.Request) {
	p, err := u.d.Settings(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "settings", page{Page: "settings", Data: map[string]any{"Items": p.Items}})
}

// account shows the password form; on the first login with the generated
// password it says why the user is here.
func (u *UI) account(w http.ResponseWriter, r *http.Request, status int, p page) {
	p.Page = "account"
	data := map[string]any{"Required": u.d.MustChangePassword(r)}
	p.Data = data
	u.render(w, r, status, "account", p)
}

func (u *UI) changePassword(w http.ResponseWriter, r *http.Request) {
	err := u.d.ChangePassword(r, r.PostForm.Get("current"), r.PostForm.Get("new"))
	var pe *auth.PolicyError
	switch {
	case errors.Is(err, ErrWrongPassword):
		u.account(w, r, http.StatusForbidden, page{Error: u.msg(r, "account.wrong")})
	case errors.As(err, &pe):
		u.account(w, r, http.StatusBadRequest, page{Error: u.msg(r, "account.weak") + " " + pe.Error()})
	case err != nil:
		u.fail(w, r, err)
	default:
		u.account(w, r, http.StatusOK, page{Notice: "account.changed"})
	}
}

// maxImportSize bounds an imported policy file.
const maxImportSize = 1 << 20

// ReadImport reads a policy import body: a JSON array of policy
// documents, bounded in size.
func ReadImport(rd io.Reader) ([]json.RawMessage, error) {
	b, err := io.ReadAll(io.LimitReader(rd, maxImportSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxImportSize {
		return nil, errors.New("the import is larger than 1 MiB")
	}
	var docs []json.RawMessage
	if err := json.Unmarshal(b, &docs); err != nil {
		return nil, errors.New("want a JSON array of policies: " + err.Error())
	}
	return docs, nil
}
