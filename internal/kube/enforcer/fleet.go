package enforcer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/kube/admission"
	"github.com/mamorisec/mamori/internal/kube/discovery"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
)

// Capabilities the kube-enforcer reports in its heartbeats.
var capabilities = []fleet.Capability{
	{Name: "admission.validating", Available: true, Detail: "image assurance gate and posture controls on pods and workloads"},
	{Name: "admission.exec", Available: true, Detail: "exec, attach and port-forward decided by the runtime policies' blockExec"},
	{Name: "discovery", Available: true, Detail: "namespaces, workloads and running pods reported as inventory"},
}

// errNotEnrolled is returned by the senders until enrollment succeeded.
var errNotEnrolled = errors.New("not enrolled yet")

// agentID returns the enrolled agent id, or "".
func (e *enforcer) agentID() string {
	if id := e.id.Load(); id != nil {
		return id.AgentID
	}
	return ""
}

// apply compiles a bundle and puts it in force.
func (e *enforcer) apply(b fleet.PolicyBundle) error {
	set, err := runtimepolicy.Compile(b, time.Now())
	if err != nil {
		return fmt.Errorf("policy bundle revision %d: %w", b.Revision, err)
	}
	e.policies.Store(set)
	e.mu.Lock()
	e.bundleBypass = slices.Clone(b.Bypass.Namespaces)
	e.mu.Unlock()
	return e.rebuild()
}

// enroll enrolls with the group's enrollment token and stores the
// identity.
func (e *enforcer) enroll(ctx context.Context) error {
	keyPEM, csrPEM, err := newCSR()
	if err != nil {
		return err
	}
	resp, err := e.backend.Enroll(ctx, fleet.EnrollRequest{Token: e.cfg.EnrollmentToken, Kind: fleet.KindKubeEnforcer,
		Hostname: e.cfg.Cluster, Version: e.cfg.Version, CSR: string(csrPEM)})
	if err != nil {
		return fmt.Errorf("enrolling: %w", err)
	}
	id := identity{AgentID: resp.AgentID, Group: resp.Group, Hostname: e.cfg.Cluster}
	if err := saveEnrollment(e.cfg.StateDir, id, keyPEM, resp); err != nil {
		return err
	}
	e.id.Store(&id)
	e.log.Info("enrolled", "agent", id.AgentID, "group", id.Group)
	return nil
}

// fleetLoop enrolls when needed, then sends heartbeats and fetches the
// policy bundle whenever its revision changes, until ctx ends. Failures
// are logged and retried with backoff up to the heartbeat interval.
func (e *enforcer) fleetLoop(ctx context.Context) {
	var have int64 = -1
	if set := e.policies.Load(); set != nil {
		have = set.Revision()
	}
	var settings fleet.GroupSettings
	if set := e.policies.Load(); set != nil {
		settings = set.Settings()
	}
	wait := time.Second
	for {
		err := e.fleetOnce(ctx, &have, &settings)
		next := e.cfg.HeartbeatInterval
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Warn("server", "err", err)
			next = min(wait, e.cfg.HeartbeatInterval)
			wait *= 2
		} else {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// fleetOnce is one round of fleetLoop.
func (e *enforcer) fleetOnce(ctx context.Context, have *int64, settings *fleet.GroupSettings) error {
	if e.agentID() == "" {
		if err := e.enroll(ctx); err != nil {
			return err
		}
	}
	id := e.agentID()
	reply, err := e.backend.Heartbeat(ctx, fleet.Heartbeat{AgentID: id, Hostname: e.cfg.Cluster, Version: e.cfg.Version,
		Capabilities: capabilities, PolicyRevision: max(*have, 0)})
	if err != nil {
		return err
	}
	if reply.PolicyRevision == *have && reply.Settings == *settings {
		return nil
	}
	b, err := e.backend.Policies(ctx, fleet.PolicyRequest{AgentID: id, Since: max(*have, 0)})
	if err != nil {
		return err
	}
	if err := e.apply(b); err != nil {
		return err
	}
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if err := writeFile(e.cfg.StateDir, bundleFile, data); err != nil {
		e.log.Warn("the policy bundle is in force but could not be cached", "err", err)
	}
	*have, *settings = b.Revision, b.Settings
	e.log.Info("policy bundle in force", "revision", b.Revision, "policies", len(b.Policies))
	return nil
}

// sink sends admission events (every decision: allow, detect and block) to
// the server's runtime-event trail, retrying a failed batch for as long as
// the queue allows (10 s).
type sink struct{ e *enforcer }

// Send implements admission.Sink.
func (s sink) Send(ctx context.Context, events []fleet.Event) error {
	id := s.e.agentID()
	if id == "" {
		return errNotEnrolled
	}
	batch := fleet.EventBatch{AgentID: id}
	for _, ev := range events {
		if ev.Status != fleet.StatusDetect && ev.Status != fleet.StatusBlock && ev.Status != fleet.StatusAllow {
			continue
		}
		ev.AgentID = id
		batch.Events = append(batch.Events, ev)
	}
	if len(batch.Events) == 0 {
		return nil
	}
	// Retried until the queue's deadline: only the queue's goroutine
	// waits, admission never does (the queue drops when full).
	for {
		_, err := s.e.backend.Events(ctx, batch)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-s.e.stopping: // shutting down: no more retries
		case <-time.After(time.Second):
			continue
		}
		s.e.log.Warn("admission events lost", "events", len(batch.Events), "err", err)
		return err
	}
}

var _ admission.Sink = sink{}

// discover runs the discovery watcher, whose inventories go to the
// server.
func (e *enforcer) discover(ctx context.Context) {
	w, err := discovery.New(discovery.Config{Client: e.cfg.Kube, Host: e.cfg.Cluster, Debounce: e.cfg.Debounce, Log: e.log,
		Sink: func(ctx context.Context, inv fleet.Inventory) error {
			id := e.agentID()
			if id == "" {
				return errNotEnrolled
			}
			inv.AgentID = id
			return e.backend.Inventory(ctx, inv)
		}})
	if err != nil {
		e.log.Error("discovery", "err", err)
		return
	}
	if err := w.Run(ctx); err != nil && ctx.Err() == nil {
		e.log.Error("discovery stopped", "err", err)
	}
}

// clientPods looks pod labels up with the API, for exec decisions.
type clientPods struct{ client kubernetes.Interface }

// Labels implements admission.Pods.
func (p clientPods) Labels(ctx context.Context, namespace, name string) (map[string]string, error) {
	pod, err := p.client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return pod.Labels, nil
}
