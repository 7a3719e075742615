package webui

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/assurance"
	"github.com/mamorisec/mamori/internal/report"
	"github.com/mamorisec/mamori/internal/server/query"
	"github.com/mamorisec/mamori/internal/server/store"
)

// severities are the rating names, most severe first.
var severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNKNOWN"}

// assuranceStates are the image statuses, worst first.
var assuranceStates = []string{store.AssuranceFail, store.AssuranceWarn, store.AssurancePass, store.AssuranceNone}

type severityCount struct {
	Name       string
	N, Fixable int64
	Width      int
}

type stateCount struct {
	Name  string
	N     int64
	Width int
}

// barWidth scales n against max to a percentage for a bar chart.
func barWidth(n, max int64) int {
	if max <= 0 || n <= 0 {
		return 0
	}
	w := int(n * 100 / max)
	if w < 1 {
		w = 1
	}
	return w
}

// shortDigest shortens a digest for display.
func shortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return d[:len(d)-len(hex)] + hex[:12]
	}
	return d
}

func (u *UI) dashboard(w http.ResponseWriter, r *http.Request) {
	d, err := u.d.Dashboard(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	var states []stateCount
	for _, s := range assuranceStates {
		states = append(states, stateCount{Name: s, N: d.ByAssurance[s], Width: barWidth(d.ByAssurance[s], d.Images)})
	}
	var sevs []severityCount
	var maxSev int64
	for _, s := range severities {
		maxSev = max(maxSev, d.BySeverity[s])
	}
	for _, s := range severities {
		sevs = append(sevs, severityCount{Name: s, N: d.BySeverity[s], Fixable: d.Fixable[s], Width: barWidth(d.BySeverity[s], maxSev)})
	}
	var maxTrend int64
	for _, t := range d.Trend {
		maxTrend = max(maxTrend, t.Critical+t.High)
	}
	data := map[string]any{
		"Images": d.Images, "States": states, "Severities": sevs, "SeeVulns": d.BySeverity != nil,
		"Trend": d.Trend, "TrendMax": maxTrend, "Risky": d.Risky, "Events": d.Events, "LastSeq": d.LastSeq,
	}
	if d.Agents != nil {
		data["SeeEnforcers"], data["Enforcers"] = true, groupsWithAgents(nil, d.Agents, u.now())
	}
	u.render(w, r, http.StatusOK, "dashboard", page{Page: "dashboard", Live: d.Events != nil, Data: data})
}

// imageFilter builds the images list filter from the filter form's fields
// (each value escaped) and the free-text filter.
func imageFilter(q url.Values) string {
	var conds []string
	add := func(field, op, v string) {
		if v = strings.TrimSpace(v); v != "" {
			conds = append(conds, field+op+query.EscapeValue(v))
		}
	}
	add("registry", "=", q.Get("registry"))
	add("repository", "~", q.Get("repository"))
	add("assurance", "=", q.Get("status"))
	switch q.Get("severity") {
	case "CRITICAL":
		conds = append(conds, "critical>0")
	case "HIGH":
		conds = append(conds, "high>0")
	}
	if q.Get("fixable") == "true" {
		conds = append(conds, "fixable>0")
	}
	if f := strings.TrimSpace(q.Get("filter")); f != "" {
		conds = append(conds, f)
	}
	return strings.Join(conds, ";")
}

func (u *UI) images(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	data := map[string]any{"Q": q, "States": assuranceStates, "Query": r.URL.RawQuery}
	names, err := u.d.ScopeNames(r)
	if err != nil && !errors.Is(err, ErrForbidden) {
		u.fail(w, r, err)
		return
	}
	data["Scopes"] = names
	p, err := u.d.Images(r, store.ListOptions{Filter: imageFilter(q), Cursor: q.Get("cursor"), Sort: sortParam(q.Get("sort")), Limit: 50}, q.Get("scope"))
	if errors.Is(err, store.ErrInvalid) {
		u.render(w, r, http.StatusBadRequest, "images", page{Page: "images", Error: err.Error(), Data: data})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	next := url.Values{}
	for k, v := range q {
		if k != "cursor" {
			next[k] = v
		}
	}
	if p.Next != "" {
		next.Set("cursor", p.Next)
		data["Next"] = next.Encode()
	}
	data["Images"] = p.Items
	u.render(w, r, http.StatusOK, "images", page{Page: "images", Data: data})
}

// sortParam keeps only the sort orders the images page offers.
func sortParam(s string) string {
	switch s {
	case "-critical,-high", "name", "-lastSeen":
		return s
	}
	return ""
}

// requestScan queues a scan of an image reference typed into the images
// page.
func (u *UI) requestScan(w http.ResponseWriter, r *http.Request) {
	ref := strings.TrimSpace(r.PostForm.Get("ref"))
	err := u.d.RequestScan(r, ref)
	switch {
	case errors.Is(err, store.ErrInvalid):
		u.render(w, r, http.StatusBadRequest, "images", page{Page: "images", Error: err.Error(), Data: map[string]any{"Q": url.Values{}, "States": assuranceStates, "Ref": ref}})
	case err != nil:
		u.fail(w, r, err)
	default:
		u.render(w, r, http.StatusAccepted, "images", page{Page: "images", Notice: "images.queued", Live: true, Data: map[string]any{"Q": url.Values{}, "States": assuranceStates, "Queued": ref}})
	}
}

// layerRow is one layer of an image with what it added.
type layerRow struct {
	Index    int
	DiffID   string
	History  string
	Packages []string
}

func (u *UI) image(w http.ResponseWriter, r *http.Request, idText, notice, problem string) {
	id, ok := pathID(idText)
	if !ok {
		u.fail(w, r, store.ErrNotFound)
		return
	}
	im, err := u.d.Image(r, id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	var rep *report.Scan
	if im.LatestScanID != 0 {
		if rep, err = u.d.Report(r, im.LatestScanID); err != nil {
			u.fail(w, r, err)
			return
		}
	}
	state, err := u.d.ScanState(r, id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	data := map[string]any{"Image": &im, "Report": rep, "State": state,
		"Busy": state == store.ScanQueued || state == store.ScanRunning}
	if rep != nil {
		data["Layers"] = layersOf(rep)
	}
	status := http.StatusOK
	if problem != "" {
		status = http.StatusBadRequest
	}
	u.render(w, r, status, "image", page{Page: "images", Notice: notice, Error: problem, Live: data["Busy"].(bool), Data: data})
}

// layersOf lists the image's layers with the history line that made each
// and the packages each added.
func layersOf(rep *report.Scan) []layerRow {
	var rows []layerRow
	if rep.Inventory == nil {
		return nil
	}
	byLayer := map[string]int{}
	for i, l := range rep.Inventory.Layers {
		rows = append(rows, layerRow{Index: i + 1, DiffID: l.DiffID, History: l.CreatedBy})
		byLayer[l.DiffID] = i
	}
	for _, p := range rep.Inventory.Packages {
		if i, ok := byLayer[p.Layer.DiffID]; ok && len(rows[i].Packages) < 200 {
			rows[i].Packages = append(rows[i].Packages, p.Name+" "+p.Version)
		}
	}
	return rows
}

func (u *UI) rescan(w http.ResponseWriter, r *http.Request, idText string) {
	id, ok := pathID(idText)
	if !ok {
		u.fail(w, r, store.ErrNotFound)
		return
	}
	if err := u.d.Rescan(r, id); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			u.image(w, r, idText, "", err.Error())
			return
		}
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/images/"+idText+"?queued=1", http.StatusSeeOther)
}

// maxExceptionDays bounds how long an exception made in the console lasts.
const maxExceptionDays = 730

// addException waives a finding (or a control) on this image for a time
// with a justification.
func (u *UI) addException(w http.ResponseWriter, r *http.Request, idText string) {
	id, ok := pathID(idText)
	if !ok {
		u.fail(w, r, store.ErrNotFound)
		return
	}
	im, err := u.d.Image(r, id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	f := r.PostForm
	e := assurance.Exception{Finding: strings.TrimSpace(f.Get("finding")),
		Control: strings.TrimSpace(f.Get("control")), Justification: strings.TrimSpace(f.Get("justification"))}
	days, err := strconv.Atoi(strings.TrimSpace(f.Get("days")))
	if err != nil || days < 1 || days > maxExceptionDays {
		u.image(w, r, idText, "", u.msg(r, "exception.badDays"))
		return
	}
	e.Expires = time.Now().Add(time.Duration(days) * 24 * time.Hour).UTC()
	if err := u.d.AddException(r, im, e); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			u.image(w, r, idText, "", err.Error())
			return
		}
		u.fail(w, r, err)
		return
	}
	u.image(w, r, idText, "exception.added", "")
}

func (u *UI) vulnerabilities(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := u.d.Vulnerabilities(r, store.ListOptions{Filter: q.Get("filter"), Cursor: q.Get("cursor"), Limit: 50})
	data := map[string]any{"Filter": q.Get("filter")}
	if errors.Is(err, store.ErrInvalid) {
		u.render(w, r, http.StatusBadRequest, "vulnerabilities", page{Page: "vulnerabilities", Error: err.Error(), Data: data})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	data["Items"], data["Next"] = p.Items, p.Next
	u.render(w, r, http.StatusOK, "vulnerabilities", page{Page: "vulnerabilities", Data: data})
}

// vulnerability shows one vulnerability ID: its findings and the images
// (and, once enforcers report them, the workloads) it affects.
func (u *UI) vulnerability(w http.ResponseWriter, r *http.Request, id string) {
	id, err := url.PathUnescape(id)
	if err != nil || id == "" || len(id) > 200 || strings.ContainsAny(id, "/\\") {
		u.fail(w, r, store.ErrNotFound)
		return
	}
	findings, err := u.d.Vulnerabilities(r, store.ListOptions{Filter: "vulnID=" + query.EscapeValue(id), Limit: 100})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	images, err := u.d.ImagesWithVulnerability(r, id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if len(findings.Items) == 0 && len(images.Items) == 0 {
		u.fail(w, r, store.ErrNotFound)
		return
	}
	data := map[string]any{"ID": id, "Findings": findings.Items, "Images": images.Items, "More": images.Next != ""}
	// Running pods and containers of the affected images, as agents
	// reported them (for callers who may see enforcers).
	invs, err := u.d.Inventory(r)
	switch {
	case errors.Is(err, ErrForbidden):
	case err != nil:
		u.fail(w, r, err)
		return
	case len(invs) > 0:
		refs, err := u.d.LookupImages(r, inventoryRefs(invs))
		if err != nil {
			u.fail(w, r, err)
			return
		}
		data["Reported"], data["Workloads"] = true, affectedWorkloads(invs, refs, images.Items)
	}
	u.render(w, r, http.StatusOK, "vulnerability", page{Page: "vulnerabilities", Title: id, Data: data})
}
