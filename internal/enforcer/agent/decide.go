package agent

import (
	"fmt"

	"github.com/mamorisec/mamori/internal/enforcer/container"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
)

// preExecControls are the controls whose enforce mode is a pre-exec
// denial by fanotify.
var preExecControls = map[string]bool{
	runtimepolicy.ControlBlockExec:          true,
	runtimepolicy.ControlDriftPrevention:    true,
	runtimepolicy.ControlAllowedExecutables: true,
	runtimepolicy.ControlBlockedExecutables: true,
}

// killControls are the controls whose enforce mode kills the process once
// its exec is seen (arguments and file descriptors are only known then).
var killControls = map[string]bool{
	runtimepolicy.ControlReverseShell: true,
	runtimepolicy.ControlCryptoMiner:  true,
}

// workload is what policies are matched against for container c on host.
func workload(c *container.Container, host string) runtimepolicy.Workload {
	return runtimepolicy.Workload{
		Host:      host,
		Container: c.Name,
		Image:     c.Image,
		Labels:    c.Labels,
		Namespace: c.Namespace,
		Pod:       c.Pod,
	}
}

// needsGuard reports whether eff has a control that the fanotify guard
// decides: any exec control (in audit mode too, so that exec sessions and
// drift are judged while the process still exists), and an enforce-mode
// cryptoMiner (a known miner's file is denied before it runs).
func needsGuard(eff *runtimepolicy.Effective) bool {
	if eff == nil {
		return false
	}
	for _, a := range eff.Active {
		if preExecControls[a.Control] || a.Control == runtimepolicy.ControlCryptoMiner && a.Mode == runtimepolicy.Enforce {
			return true
		}
	}
	return false
}

// auditOnly reports whether no control of eff that the guard decides is
// in enforce mode: then nothing needs an exec to wait, and the fanotify
// watcher (notification events) replaces the guard. Any enforce-mode
// pre-exec control, mixed with audit ones or not, keeps the guard.
func auditOnly(eff *runtimepolicy.Effective) bool {
	if eff == nil {
		return false
	}
	for _, a := range eff.Active {
		if a.Mode == runtimepolicy.Enforce && (preExecControls[a.Control] || a.Control == runtimepolicy.ControlCryptoMiner) {
			return false
		}
	}
	return true
}

// guardActs reports whether the guard acts on decision d: the exec
// controls, and a blocked miner (its file is known by its path). The other
// argument-based decisions are left to the exec events, which see the
// arguments; acting on them in the guard too would report them twice.
func guardActs(d runtimepolicy.Decision) bool {
	switch {
	case d.Action == runtimepolicy.Allow:
		return false
	case preExecControls[d.Control]:
		return true
	default:
		return d.Control == runtimepolicy.ControlCryptoMiner && d.Action == runtimepolicy.Block
	}
}

// outcome is what the agent does with a decision made on an exec event
// seen after the fact (the BPF monitor), given whether the container is
// guarded by fanotify and whether a kill is possible.
type outcome struct {
	// Report is false when the decision was already made (and reported)
	// by the fanotify guard.
	Report bool
	// Status is the event status.
	Status string
	// Kill asks for the process to be killed.
	Kill bool
	// Note is added to the event's message.
	Note string
}

// afterExec maps a decision on an exec that already happened to what the
// agent does: pre-exec controls of a guarded container were decided by
// the guard; a block that came too late to deny is a kill for the
// reverse-shell and miner controls and a detection otherwise.
func afterExec(d runtimepolicy.Decision, guarded bool) outcome {
	if d.Action == runtimepolicy.Allow {
		return outcome{}
	}
	if guarded && preExecControls[d.Control] {
		return outcome{}
	}
	if d.Action == runtimepolicy.Detect {
		return outcome{Report: true, Status: fleet.StatusDetect}
	}
	if killControls[d.Control] {
		return outcome{Report: true, Status: fleet.StatusBlock, Kill: true, Note: "killed after exec"}
	}
	return outcome{Report: true, Status: fleet.StatusDetect, Note: "not blocked: pre-exec denial (fanotify) unavailable for this container"}
}

// newEvent builds the event of decision d about container c.
func newEvent(d runtimepolicy.Decision, status string, c *container.Container, host string, p fleet.Process, parents []fleet.Process, note string) fleet.Event {
	msg := d.Reason
	if note != "" {
		msg = fmt.Sprintf("%s (%s)", msg, note)
	}
	return fleet.Event{
		Host:        host,
		Status:      status,
		Policy:      d.Policy,
		Control:     d.Control,
		Message:     msg,
		Container:   c.Name,
		ContainerID: c.ID,
		Image:       c.Image,
		Namespace:   c.Namespace,
		Pod:         c.Pod,
		Process:     p,
		Parents:     parents,
		Count:       1,
	}
}

// controlCapabilities reports, for every control in force in enforce mode
// on some container, whether this host can enforce it: an enforce-mode
// control whose mechanism is unavailable is reported as not enforceable,
// with what it degrades to.
func controlCapabilities(active map[string]bool, have func(string) bool) []fleet.Capability {
	var out []fleet.Capability
	add := func(control string, ok bool, detail string) {
		if active[control] {
			out = append(out, fleet.Capability{Name: "enforce." + control, Available: ok, Detail: detail})
		}
	}
	for _, c := range []string{runtimepolicy.ControlBlockExec, runtimepolicy.ControlDriftPrevention, runtimepolicy.ControlAllowedExecutables, runtimepolicy.ControlBlockedExecutables} {
		if have(preflightFanotify) {
			add(c, true, "pre-exec denial with fanotify FAN_OPEN_EXEC_PERM")
		} else {
			add(c, false, "fanotify unavailable: degraded to detect (exec events)")
		}
	}
	for _, c := range []string{runtimepolicy.ControlReverseShell, runtimepolicy.ControlCryptoMiner} {
		if have(preflightExecEvents) {
			add(c, true, "process killed (SIGKILL) when its exec event is seen")
		} else {
			add(c, false, "exec events unavailable: not detected")
		}
	}
	if have(preflightPids) {
		add(runtimepolicy.ControlForkGuard, true, "pids cgroup pids.max")
	} else {
		add(runtimepolicy.ControlForkGuard, false, "pids cgroup unavailable: not enforced")
	}
	if have(preflightNFT) {
		add(runtimepolicy.ControlFirewall, true, "nftables in the container's network namespace")
	} else {
		add(runtimepolicy.ControlFirewall, false, "nftables unavailable: not enforced")
	}
	add(runtimepolicy.ControlBlockedSyscalls, false, "seccomp applies at container start only: use mamori enforcer seccomp-profile")
	if have(haveFIM) {
		add(runtimepolicy.ControlFileIntegrity, true, "writes reported with fanotify; blockWrites files bind-mounted read-only in the container")
	} else {
		add(runtimepolicy.ControlFileIntegrity, false, "fanotify notification group or mount namespace entry unavailable: not enforced")
	}
	add(runtimepolicy.ControlBlockUnapprovedImages, false, "not implemented by this enforcer (use the kube-enforcer's admission webhook)")
	return out
}
