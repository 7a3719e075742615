package webui

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
	"github.com/mamorisec/mamori/internal/server/store"
)

// healthyWithin is how recent an agent's last heartbeat must be for the
// console to call it healthy.
const healthyWithin = 2 * time.Minute

// runtimeRow is one runtime policy in the list.
type runtimeRow struct {
	store.RuntimePolicy
	Description string
	// EnforceFrom and EnforceAfterDays are the scheduled switch to
	// enforce mode, if any.
	EnforceFrom      time.Time
	EnforceAfterDays int
	Scopes           []string
	Criteria         string
	// Controls name the controls the policy switches on, each with its
	// own mode when it sets one.
	Controls []controlSummary
	Problem  string
}

type controlSummary struct{ Name, Mode string }

// controlsOf lists the controls a policy switches on, in name order.
func controlsOf(c runtimepolicy.Controls) []controlSummary {
	b, err := json.Marshal(c)
	if err != nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	var out []controlSummary
	for name, raw := range m {
		// A control is a switch (true or false), a list, or an object
		// with its settings and mode.
		var mode struct {
			Mode    string `json:"mode"`
			Enabled *bool  `json:"enabled"`
		}
		_ = json.Unmarshal(raw, &mode)
		if s := string(raw); s == "false" || s == "null" || (mode.Enabled != nil && !*mode.Enabled) {
			continue
		}
		out = append(out, controlSummary{Name: name, Mode: mode.Mode})
	}
	slices.SortFunc(out, func(a, b controlSummary) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// runtimePolicies shows the runtime policy list, the editor, the
// built-in baselines and the import form; definition is the text to show
// again in the editor.
func (u *UI) runtimePolicies(w http.ResponseWriter, r *http.Request, status int, notice, problem, definition string) {
	ps, err := u.d.RuntimePolicies(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	var rows []runtimeRow
	for _, sp := range ps {
		row := runtimeRow{RuntimePolicy: sp}
		if p, err := runtimepolicy.Parse(sp.Document); err != nil {
			row.Problem = err.Error()
		} else {
			row.Description, row.Scopes, row.Criteria, row.Controls = p.Description, p.Scopes, p.Criteria, controlsOf(p.Controls)
			if p.Schedule != nil {
				if p.Schedule.EnforceFrom != nil {
					row.EnforceFrom = *p.Schedule.EnforceFrom
				}
				row.EnforceAfterDays = p.Schedule.EnforceAfterDays
			}
		}
		rows = append(rows, row)
	}
	if edit := r.URL.Query().Get("edit"); edit != "" && definition == "" {
		for _, sp := range ps {
			if sp.Name == edit {
				if p, err := runtimepolicy.Parse(sp.Document); err == nil {
					// Created and Updated are the server's; leave them out
					// of the text to edit.
					p.Created, p.Updated = time.Time{}, time.Time{}
					if b, err := p.Export(); err == nil {
						definition = string(b)
					}
				}
			}
		}
	}
	var builtins []runtimepolicy.Policy
	for _, b := range runtimepolicy.Builtins() {
		if !slices.ContainsFunc(ps, func(sp store.RuntimePolicy) bool { return sp.Name == b.Name }) {
			builtins = append(builtins, b)
		}
	}
	u.render(w, r, status, "runtime-policies", page{Page: "runtime-policies", Error: problem, Notice: notice,
		Data: map[string]any{"Items": rows, "Definition": definition, "Builtins": builtins}})
}

// policyProblem is the text of a policy validation error.
func policyProblem(err error) string {
	return strings.TrimPrefix(err.Error(), ErrInvalidPolicy.Error()+": ")
}

// runtimeOutcome renders the policies page after a change.
func (u *UI) runtimeOutcome(w http.ResponseWriter, r *http.Request, err error, notice, definition string) {
	switch {
	case errors.Is(err, ErrInvalidPolicy):
		u.runtimePolicies(w, r, http.StatusBadRequest, "", policyProblem(err), definition)
	case err != nil:
		u.fail(w, r, err)
	default:
		u.runtimePolicies(w, r, http.StatusOK, notice, "", "")
	}
}

func (u *UI) saveRuntimePolicy(w http.ResponseWriter, r *http.Request) {
	def := r.PostForm.Get("definition")
	u.runtimeOutcome(w, r, u.d.SaveRuntimePolicy(r, []byte(def)), "policies.saved", def)
}

func (u *UI) toggleRuntimePolicy(w http.ResponseWriter, r *http.Request) {
	err := u.d.SetRuntimePolicyEnabled(r, r.PostForm.Get("name"), r.PostForm.Get("enabled") == "true")
	u.runtimeOutcome(w, r, err, "policies.saved", "")
}

func (u *UI) loadBuiltin(w http.ResponseWriter, r *http.Request) {
	u.runtimeOutcome(w, r, u.d.LoadBuiltinRuntimePolicy(r, r.PostForm.Get("name")), "runtime.loaded", "")
}

// importRuntimePolicies stores a JSON array of runtime policies, all or
// none.
func (u *UI) importRuntimePolicies(w http.ResponseWriter, r *http.Request) {
	n, err := u.d.ImportRuntimePolicies(r, []byte(r.PostForm.Get("policies")))
	if err == nil && n == 0 {
		u.runtimePolicies(w, r, http.StatusBadRequest, "", u.msg(r, "policies.importEmpty"), "")
		return
	}
	u.runtimeOutcome(w, r, err, "policies.imported", "")
}

// exportRuntimePolicies downloads every runtime policy as the JSON array
// the import reads.
func (u *UI) exportRuntimePolicies(w http.ResponseWriter, r *http.Request) {
	b, err := u.d.ExportRuntimePolicies(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="mamori-runtime-policies.json"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// agentRow is one agent with its health.
type agentRow struct {
	store.Agent
	// Health is "healthy" (a heartbeat within two minutes), "stale" or
	// "never" (no heartbeat since enrollment).
	Health string
}

// groupView is one enforcer group with its agents.
type groupView struct {
	store.EnforcerGroup
	Agents                 []agentRow
	Healthy, Stale, Silent int
}

func (u *UI) now() time.Time {
	if u.d.Now != nil {
		return u.d.Now()
	}
	return time.Now()
}

// health tells whether an agent is reporting.
func health(a store.Agent, now time.Time) string {
	switch {
	case a.LastSeen.IsZero():
		return "never"
	case now.Sub(a.LastSeen) < healthyWithin:
		return "healthy"
	}
	return "stale"
}

// groupsWithAgents sorts agents into their groups (groups the caller
// cannot list but whose agents they see are added by name).
func groupsWithAgents(groups []store.EnforcerGroup, agents []store.Agent, now time.Time) []*groupView {
	var out []*groupView
	byName := map[string]*groupView{}
	for _, g := range groups {
		v := &groupView{EnforcerGroup: g}
		out = append(out, v)
		byName[g.Name] = v
	}
	for _, a := range agents {
		v := byName[a.Group]
		if v == nil {
			v = &groupView{EnforcerGroup: store.EnforcerGroup{Name: a.Group}}
			out = append(out, v)
			byName[a.Group] = v
		}
		row := agentRow{Agent: a, Health: health(a, now)}
		switch row.Health {
		case "healthy":
			v.Healthy++
		case "stale":
			v.Stale++
		default:
			v.Silent++
		}
		v.Agents = append(v.Agents, row)
	}
	return out
}

// enforcers shows the enforcer groups with their agents, and the global
// bypass; p carries a new enrollment token (shown once) or a problem.
func (u *UI) enforcers(w http.ResponseWriter, r *http.Request, status int, p page) {
	groups, err := u.d.EnforcerGroups(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	agents, err := u.d.Agents(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	data, _ := p.Data.(map[string]any)
	if data == nil {
		data = map[string]any{}
	}
	data["Groups"] = groupsWithAgents(groups, agents, u.now())
	bypass, err := u.d.Bypass(r)
	switch {
	case err == nil:
		data["Bypass"] = map[string]string{"Namespaces": strings.Join(bypass.Namespaces, "\n"), "Labels": strings.Join(bypass.Labels, "\n")}
	case !errors.Is(err, ErrForbidden):
		u.fail(w, r, err)
		return
	}
	p.Page, p.Data = "enforcers", data
	u.render(w, r, status, "enforcers", p)
}

// settingsForm reads a group's switches from a form.
func settingsForm(r *http.Request) fleet.GroupSettings {
	on := func(k string) bool { return r.PostForm.Get(k) == "on" }
	return fleet.GroupSettings{AuditOnly: on("auditOnly"), ContainerProtection: on("containerProtection"),
		HostProtection: on("hostProtection"), FailClosed: on("failClosed")}
}

// enforcerOutcome renders the enforcers page after a change.
func (u *UI) enforcerOutcome(w http.ResponseWriter, r *http.Request, err error, ok page) {
	switch {
	case errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrConflict):
		u.enforcers(w, r, http.StatusBadRequest, page{Error: err.Error()})
	case err != nil:
		u.fail(w, r, err)
	default:
		u.enforcers(w, r, http.StatusOK, ok)
	}
}

func (u *UI) createGroup(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	token, err := u.d.CreateEnforcerGroup(r, name, strings.TrimSpace(r.PostForm.Get("description")), settingsForm(r))
	u.enforcerOutcome(w, r, err, page{Notice: "enforcers.created", Data: map[string]any{"Token": token, "TokenGroup": name}})
}

func (u *UI) updateGroup(w http.ResponseWriter, r *http.Request) {
	err := u.d.UpdateEnforcerGroup(r, r.PostForm.Get("name"), settingsForm(r))
	u.enforcerOutcome(w, r, err, page{Notice: "enforcers.saved"})
}

func (u *UI) rotateGroupToken(w http.ResponseWriter, r *http.Request) {
	name := r.PostForm.Get("name")
	token, err := u.d.RotateEnrollmentToken(r, name)
	u.enforcerOutcome(w, r, err, page{Notice: "enforcers.rotated", Data: map[string]any{"Token": token, "TokenGroup": name}})
}

// lines splits a text area into its non-empty trimmed lines.
func lines(s string) []string {
	out := []string{}
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (u *UI) saveBypass(w http.ResponseWriter, r *http.Request) {
	err := u.d.SetBypass(r, fleet.Bypass{Namespaces: lines(r.PostForm.Get("namespaces")), Labels: lines(r.PostForm.Get("labels"))})
	u.enforcerOutcome(w, r, err, page{Notice: "enforcers.bypassSaved"})
}
