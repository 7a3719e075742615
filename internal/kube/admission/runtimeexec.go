package admission

import (
	"fmt"
	"strings"

	"github.com/mamorisec/mamori/internal/runtimepolicy"
)

// RuntimeExec is the ExecPolicy of the runtime policies the console server
// distributes (internal/runtimepolicy): an exec into a pod is decided by
// the policies that apply to the pod (its namespace, name, labels and the
// cluster) exactly as the node enforcer decides a process of an exec
// session (runtimepolicy.Effective.Exec with ExecSession set), so
// blockExec's allowed processes, blockedExecutables and the
// reverse-shell and miner detections all apply. The command's argv[0] is
// the process path: an allowed process written as a base name ("env")
// matches any path, one written as a path ("/usr/bin/env") only that path.
// attach and port-forward into a pod under blockExec are denied (there is
// no process to allow).
type RuntimeExec struct {
	// Policies returns the compiled bundle in force, or nil when none has
	// been received yet (everything is then allowed).
	Policies func() *runtimepolicy.Set
	// Cluster is the cluster name matched by criteria on "cluster".
	Cluster string
}

// Decide implements ExecPolicy.
func (r RuntimeExec) Decide(namespace, pod string, labels map[string]string, command []string) (bool, string, string, string) {
	set := r.Policies()
	if set == nil || !set.Settings().ContainerProtection {
		return true, "", "", ""
	}
	e := set.For(runtimepolicy.Workload{Host: r.Cluster, Cluster: r.Cluster, Namespace: namespace, Pod: pod, Labels: labels})
	if e == nil {
		return true, "", "", ""
	}
	var d runtimepolicy.Decision
	if len(command) == 0 {
		if !e.Has(runtimepolicy.ControlBlockExec) {
			return true, "", "", ""
		}
		for _, a := range e.Active {
			if a.Control == runtimepolicy.ControlBlockExec {
				d = runtimepolicy.Decision{Action: runtimepolicy.Detect, Policy: a.Policy, Control: a.Control}
				if a.Mode == runtimepolicy.Enforce {
					d.Action = runtimepolicy.Block
					break
				}
			}
		}
		d.Reason = fmt.Sprintf("pod %s/%s is protected from attach and port-forward", namespace, pod)
	} else {
		d = e.Exec(runtimepolicy.ExecContext{Path: command[0], Args: command, ExecSession: true, FromImage: true})
		if d.Action == runtimepolicy.Allow {
			return true, "", "", ""
		}
		d.Reason = fmt.Sprintf("exec into pod %s/%s: %s", namespace, pod, strings.TrimSpace(d.Reason))
	}
	d.Reason += fmt.Sprintf(" (runtime policy %s)", d.Policy)
	mode := Audit
	if d.Action == runtimepolicy.Block {
		mode = Enforce
	}
	return false, string(mode), d.Policy, d.Reason
}
