package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Summary is one entry of GET /containers/json.
type Summary struct {
	ID      string            `json:"Id"`
	Names   []string          `json:"Names"`
	Image   string            `json:"Image"`
	ImageID string            `json:"ImageID"`
	Labels  map[string]string `json:"Labels"`
	State   string            `json:"State"`
}

// Inspect is the part of GET /containers/{id}/json the enforcer uses.
type Inspect struct {
	ID      string `json:"Id"`
	Name    string `json:"Name"`
	Image   string `json:"Image"` // image id, sha256:...
	Created time.Time
	State   struct {
		Status    string    `json:"Status"`
		Running   bool      `json:"Running"`
		Pid       int       `json:"Pid"`
		StartedAt time.Time `json:"StartedAt"`
	} `json:"State"`
	Config struct {
		Image  string            `json:"Image"` // the reference it was run from
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
	HostConfig struct {
		CgroupParent string `json:"CgroupParent"`
		PidMode      string `json:"PidMode"`
	} `json:"HostConfig"`
	GraphDriver struct {
		Name string            `json:"Name"`
		Data map[string]string `json:"Data"`
	} `json:"GraphDriver"`
}

// LowerDirs returns the overlay lower (image) directories, topmost first.
func (i *Inspect) LowerDirs() []string {
	s := i.GraphDriver.Data["LowerDir"]
	if s == "" {
		return nil
	}
	return strings.Split(s, ":")
}

// Exec is the part of GET /exec/{id}/json the enforcer uses.
type Exec struct {
	ID            string `json:"ID"`
	ContainerID   string `json:"ContainerID"`
	Running       bool   `json:"Running"`
	Pid           int    `json:"Pid"`
	ProcessConfig struct {
		Entrypoint string   `json:"entrypoint"`
		Arguments  []string `json:"arguments"`
		User       string   `json:"user"`
	} `json:"ProcessConfig"`
}

// Event is one message of the /events stream.
type Event struct {
	Type string `json:"Type"` // container, image, network, ...
	// Action is the verb without its details: "start", "die", "destroy",
	// "exec_create", "exec_start", "exec_die", ...
	Action string `json:"-"`
	// Command is the exec'd command line of exec_create and exec_start
	// (the text after "exec_create: ").
	Command string `json:"-"`
	Actor   struct {
		ID         string            `json:"ID"`
		Attributes map[string]string `json:"Attributes"`
	} `json:"Actor"`
	TimeNano int64 `json:"timeNano"`
}

// Time returns when the event happened.
func (e *Event) Time() time.Time { return time.Unix(0, e.TimeNano) }

// ExecID returns the exec session's id of an exec_* event ("" when the
// Engine does not send it).
func (e *Event) ExecID() string { return e.Actor.Attributes["execID"] }

// DecodeList decodes the answer of GET /containers/json.
func DecodeList(b []byte) ([]Summary, error) {
	var l []Summary
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("bad container list JSON from the Docker Engine: %w", err)
	}
	for i, s := range l {
		if !validID(s.ID) {
			return nil, fmt.Errorf("bad container list JSON from the Docker Engine: entry %d has invalid id %q", i, s.ID)
		}
	}
	return l, nil
}

// DecodeInspect decodes the answer of GET /containers/{id}/json.
func DecodeInspect(b []byte) (*Inspect, error) {
	var in Inspect
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("bad container inspect JSON from the Docker Engine: %w", err)
	}
	if !validID(in.ID) {
		return nil, fmt.Errorf("bad container inspect JSON from the Docker Engine: invalid id %q", in.ID)
	}
	if in.State.Pid < 0 {
		return nil, fmt.Errorf("bad container inspect JSON from the Docker Engine: container %s has negative pid %d", in.ID, in.State.Pid)
	}
	return &in, nil
}

// DecodeExec decodes the answer of GET /exec/{id}/json.
func DecodeExec(b []byte) (*Exec, error) {
	var ex Exec
	if err := json.Unmarshal(b, &ex); err != nil {
		return nil, fmt.Errorf("bad exec inspect JSON from the Docker Engine: %w", err)
	}
	if ex.Pid < 0 {
		return nil, fmt.Errorf("bad exec inspect JSON from the Docker Engine: exec %s has negative pid %d", ex.ID, ex.Pid)
	}
	return &ex, nil
}

// DecodeEvent decodes one message of the /events stream and splits its
// action ("exec_start: sh -c id") into Action and Command.
func DecodeEvent(b []byte) (*Event, error) {
	var raw struct {
		Event
		RawAction string `json:"Action"`
		Status    string `json:"status"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("bad event JSON from the Docker Engine: %w", err)
	}
	ev := raw.Event
	a := raw.RawAction
	if a == "" {
		a = raw.Status
	}
	ev.Action, ev.Command, _ = strings.Cut(a, ": ")
	ev.Action = strings.TrimSpace(ev.Action)
	if ev.Action == "" {
		return nil, errors.New("bad event JSON from the Docker Engine: no Action")
	}
	if ev.Type == "container" && !validID(ev.Actor.ID) {
		return nil, fmt.Errorf("bad event JSON from the Docker Engine: %s event with invalid container id %q", ev.Action, ev.Actor.ID)
	}
	return &ev, nil
}
