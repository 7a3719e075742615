package webui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"

	"github.com/mamorisec/mamori/internal/server/audit"
)

// Live feed bounds: one stream lasts at most liveMaxAge (the browser's
// EventSource reconnects on its own, from the last event it saw), sends a
// keep-alive comment every liveKeepAlive, and at most liveBatch events a
// poll.
const (
	liveMaxAge    = 10 * time.Minute
	liveKeepAlive = 15 * time.Second
	liveBatch     = 50
)

// liveEvent is what the feed sends for one audit event; the script puts
// it on the page as text, never as markup.
type liveEvent struct {
	Seq      int64  `json:"seq"`
	Time     string `json:"time"`
	Action   string `json:"action"`
	Actor    string `json:"actor"`
	Resource string `json:"resource"`
	Outcome  string `json:"outcome"`
	// Detail says what a runtime event was (detect or block, the policy
	// and control, the message and where), or why a request was refused.
	Detail string `json:"detail,omitempty"`
}

// maxDetail bounds an event's detail line.
const maxDetail = 300

// eventDetail describes an audit event for the feed: for a runtime
// detection or block its status, policy, control, message and
// workload; otherwise the reason the trail recorded.
func eventDetail(e audit.Event) string {
	var parts []string
	if strings.HasPrefix(e.Action, "runtime.") {
		var ev fleet.Event
		if json.Unmarshal(e.After, &ev) == nil {
			where := ev.Container
			if ev.Pod != "" {
				where = ev.Namespace + "/" + ev.Pod
			}
			for _, p := range []string{ev.Status, strings.Trim(ev.Policy+"/"+ev.Control, "/"), ev.Message, where, ev.Image} {
				if p != "" {
					parts = append(parts, p)
				}
			}
		}
	} else if e.Outcome != audit.Success && e.Reason != "" {
		parts = append(parts, e.Reason)
	}
	s := strings.Join(parts, " · ")
	if r := []rune(s); len(r) > maxDetail {
		s = string(r[:maxDetail-1]) + "…"
	}
	return s
}

// live streams server-sent events: new audit events after ?after= (or
// the Last-Event-ID the browser resends), for users who may read the
// audit trail, and changes of an image's scan state when ?image= names
// one. static/live.js shows them.
func (u *UI) live(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	q := r.URL.Query()
	after, err := strconv.ParseInt(q.Get("after"), 10, 64)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		after, err = strconv.ParseInt(id, 10, 64)
	}
	if err != nil && q.Get("after") != "" {
		http.Error(w, "after: want an audit sequence number", http.StatusBadRequest)
		return
	}
	var image int64
	if s := q.Get("image"); s != "" {
		var ok bool
		if image, ok = pathID(s); !ok {
			http.Error(w, "image: want an image id", http.StatusBadRequest)
			return
		}
	}
	// Check access before the stream starts, so a refusal is a plain
	// HTTP error.
	auditOK := true
	if _, _, err := u.d.Events(r, after, 1); errors.Is(err, ErrForbidden) {
		auditOK = false
	} else if err != nil {
		u.fail(w, r, err)
		return
	}
	state := ""
	if image != 0 {
		if state, err = u.d.ScanState(r, image); err != nil {
			u.fail(w, r, err)
			return
		}
	}
	if !auditOK && image == 0 {
		u.fail(w, r, ErrForbidden)
		return
	}
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 3000\n\n")
	if image != 0 {
		fmt.Fprintf(w, "event: scan\ndata: %s\n\n", state)
	}
	fl.Flush()
	tick := time.NewTicker(u.poll)
	defer tick.Stop()
	end := time.After(liveMaxAge)
	lastSent := time.Now()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-end:
			return
		case <-u.stop:
			return
		case <-tick.C:
		}
		sent := false
		if auditOK {
			evs, last, err := u.d.Events(r, after, liveBatch)
			if err != nil {
				return
			}
			for _, e := range evs {
				writeAuditEvent(w, e)
				sent = true
			}
			if last > after {
				after = last
				if !sent {
					// Tell a reconnecting browser where to resume.
					fmt.Fprintf(w, "id: %d\n\n", after)
					sent = true
				}
			}
		}
		if image != 0 {
			s, err := u.d.ScanState(r, image)
			if err != nil {
				return
			}
			if s != state {
				state, sent = s, true
				fmt.Fprintf(w, "event: scan\ndata: %s\n\n", state)
			}
		}
		if !sent && time.Since(lastSent) >= liveKeepAlive {
			fmt.Fprint(w, ": keep-alive\n\n")
			sent = true
		}
		if sent {
			lastSent = time.Now()
			fl.Flush()
		}
	}
}

func writeAuditEvent(w http.ResponseWriter, e audit.Event) {
	res := e.ResourceType
	if e.ResourceID != "" {
		res += " " + e.ResourceID
	}
	b, _ := json.Marshal(liveEvent{Seq: e.Seq, Time: e.Time.UTC().Format("2006-01-02 15:04:05"), Action: e.Action,
		Actor: e.Actor.Name, Resource: res, Outcome: string(e.Outcome), Detail: eventDetail(e)})
	fmt.Fprintf(w, "id: %d\nevent: audit\ndata: %s\n\n", e.Seq, b)
}
