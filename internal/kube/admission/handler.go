package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/inventory"
)

// MaxReviewSize bounds an AdmissionReview body: the API server's request
// limit is 3 MiB per object and a review of an update carries two.
const MaxReviewSize = 8 << 20

// PodLabelNamespace is the label the kubelet and CRI put on pods naming
// their namespace; a pod carrying a bypassed namespace in it is bypassed.
const PodLabelNamespace = "io.kubernetes.pod.namespace"

// Pods looks up the labels of a pod, for exec decisions (a CONNECT review
// carries the exec options, not the pod).
type Pods interface {
	Labels(ctx context.Context, namespace, name string) (map[string]string, error)
}

// Handler serves AdmissionReview v1 requests.
type Handler struct {
	cfg    Config
	images ImageVerdicts
	exec   ExecPolicy
	pods   Pods
	events *Queue
	now    func() time.Time
}

// NewHandler returns a handler for cfg. images may be nil only when the
// image gate is off; exec and pods may be nil (exec is then allowed;
// without pods, exec decisions see no labels); events may be nil.
func NewHandler(cfg Config, images ImageVerdicts, exec ExecPolicy, pods Pods, events *Queue) (*Handler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if images == nil && cfg.Images.Mode != Off {
		return nil, fmt.Errorf("kube-enforcer: the image gate is %s but no image verdict source is configured", cfg.Images.Mode)
	}
	return &Handler{cfg: cfg, images: images, exec: exec, pods: pods, events: events, now: time.Now}, nil
}

// DecodeReview parses an AdmissionReview v1 request body.
func DecodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("admission review: %w", err)
	}
	if r.APIVersion != "admission.k8s.io/v1" || r.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("admission review: apiVersion %q kind %q, want admission.k8s.io/v1 AdmissionReview", r.APIVersion, r.Kind)
	}
	if r.Request == nil {
		return nil, fmt.Errorf("admission review: no request")
	}
	if r.Request.UID == "" {
		return nil, fmt.Errorf("admission review: request has no uid")
	}
	return &r, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "admission reviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		http.Error(w, fmt.Sprintf("content type %q is not application/json", ct), http.StatusUnsupportedMediaType)
		return
	}
	body, err := inventory.ReadAllLimited(r.Body, MaxReviewSize)
	if err != nil {
		http.Error(w, fmt.Sprintf("reading admission review: %v", err), http.StatusRequestEntityTooLarge)
		return
	}
	review, err := DecodeReview(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := h.Review(r.Context(), review.Request)
	out, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// Review decides one admission request.
func (h *Handler) Review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if h.cfg.bypassed(req.Namespace) {
		return resp
	}
	var (
		vs   []violation
		ev   fleet.Event
		deny error
	)
	ev.Namespace, ev.Pod = req.Namespace, req.Name
	switch {
	case req.Operation == admissionv1.Connect && req.Resource.Resource == "pods" &&
		(req.SubResource == "exec" || req.SubResource == "attach" || req.SubResource == "portforward"):
		var bypass bool
		vs, ev.Process, bypass, deny = h.reviewConnect(ctx, req)
		if bypass {
			return resp
		}
	case req.Operation == admissionv1.Create || req.Operation == admissionv1.Update:
		var spec *corev1.PodSpec
		var labels map[string]string
		spec, labels, deny = podSpec(req)
		if deny != nil {
			break
		}
		if spec == nil {
			return resp // not a kind the handler reviews
		}
		if h.cfg.bypassed(labels[PodLabelNamespace]) {
			return resp
		}
		var old *corev1.PodSpec
		if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
			oldReq := *req
			oldReq.Object = req.OldObject
			old, _, _ = podSpec(&oldReq)
		}
		vs = h.reviewPodSpec(ctx, spec, old)
		if len(spec.Containers) > 0 {
			ev.Image = spec.Containers[0].Image
		}
	default:
		return resp
	}
	if deny != nil {
		// A request whose object cannot be read is denied: the API server
		// only sends well-formed objects, so this is a forged or broken
		// review.
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusBadRequest, Reason: metav1.StatusReasonBadRequest, Message: "mamori: " + deny.Error()}
		return resp
	}
	h.decide(req, resp, vs, ev)
	return resp
}

// decide turns violations into the response and records the events.
func (h *Handler) decide(req *admissionv1.AdmissionRequest, resp *admissionv1.AdmissionResponse, vs []violation, base fleet.Event) {
	var denials []string
	now := h.now()
	for i, v := range vs {
		mode := v.mode
		if h.cfg.Mode == Audit {
			mode = Audit
		}
		ev := base
		ev.ID = fmt.Sprintf("%s-%d", req.UID, i)
		ev.Time, ev.AgentID, ev.Host = now, h.cfg.AgentID, h.cfg.Cluster
		ev.Policy, ev.Control, ev.Message, ev.Count = v.policy, v.control, v.message, 1
		if v.image != "" {
			ev.Image = v.image
		}
		if mode == Enforce {
			ev.Status = fleet.StatusBlock
			denials = append(denials, fmt.Sprintf("[%s] %s", v.control, v.message))
		} else {
			ev.Status = fleet.StatusDetect
			resp.Warnings = append(resp.Warnings, fmt.Sprintf("mamori audit [%s] %s", v.control, v.message))
		}
		h.record(ev)
	}
	if len(vs) == 0 {
		ev := base
		ev.ID, ev.Time, ev.AgentID, ev.Host = string(req.UID), now, h.cfg.AgentID, h.cfg.Cluster
		ev.Status, ev.Control, ev.Count = StatusAllow, "admission", 1
		ev.Message = fmt.Sprintf("%s %s admitted", strings.ToLower(string(req.Operation)), resourceName(req))
		h.record(ev)
	}
	if len(denials) > 0 {
		resp.Allowed = false
		resp.Result = &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusForbidden,
			Reason:  metav1.StatusReasonForbidden,
			Message: "mamori denied " + resourceName(req) + ": " + strings.Join(denials, "; "),
		}
	}
}

func (h *Handler) record(e fleet.Event) {
	if h.events != nil {
		h.events.Add(e)
	}
}

// resourceName names the request's object: "pods/exec web-1".
func resourceName(req *admissionv1.AdmissionRequest) string {
	r := req.Resource.Resource
	if req.SubResource != "" {
		r += "/" + req.SubResource
	}
	if req.Name != "" {
		r += " " + req.Name
	}
	return r
}

// reviewPodSpec runs the posture controls and the image gate on a pod spec.
// On an update (old not nil) only what the update introduces counts: an
// object admitted before (or before the webhook existed) can still have
// its labels or replicas changed.
func (h *Handler) reviewPodSpec(ctx context.Context, spec, old *corev1.PodSpec) []violation {
	vs := h.posture(spec)
	seen := map[string]bool{}
	if old != nil {
		had := map[string]bool{}
		for _, v := range h.posture(old) {
			had[v.control+"\x00"+v.message] = true
		}
		vs = slices.DeleteFunc(vs, func(v violation) bool { return had[v.control+"\x00"+v.message] })
		for _, c := range containers(old) {
			seen[c.image] = true
		}
	}
	if h.cfg.Images.Mode == Off {
		return vs
	}
	for _, c := range containers(spec) {
		if c.image == "" || seen[c.image] {
			continue
		}
		seen[c.image] = true
		if msg := h.imageViolation(ctx, c.image); msg != "" {
			vs = append(vs, violation{control: ControlImage, mode: h.cfg.Images.Mode, policy: "image-assurance", image: c.image, message: msg})
		}
	}
	return vs
}

// reviewConnect decides an exec, attach or port-forward.
// bypass reports a pod in a bypassed namespace (by its namespace label).
func (h *Handler) reviewConnect(ctx context.Context, req *admissionv1.AdmissionRequest) (vs []violation, proc fleet.Process, bypass bool, err error) {
	if h.exec == nil {
		return nil, proc, false, nil
	}
	var command []string
	if req.SubResource == "exec" {
		var opts corev1.PodExecOptions
		if err := json.Unmarshal(req.Object.Raw, &opts); err != nil {
			return nil, proc, false, fmt.Errorf("pods/exec options of %s/%s: %w", req.Namespace, req.Name, err)
		}
		command = opts.Command
		if len(command) == 0 {
			// The API server requires a command; an empty one is denied
			// as an unknown process.
			command = []string{""}
		}
		proc.Path, proc.Args = command[0], command[1:]
	}
	var labels map[string]string
	if h.pods != nil {
		l, err := h.pods.Labels(ctx, req.Namespace, req.Name)
		if err == nil {
			labels = l
		}
	}
	if h.cfg.bypassed(labels[PodLabelNamespace]) {
		return nil, proc, true, nil
	}
	allow, mode, policy, reason := h.exec.Decide(req.Namespace, req.Name, labels, command)
	if allow {
		return nil, proc, false, nil
	}
	m := Mode(mode)
	if m == "" {
		m = h.cfg.Exec
	}
	if m == Off {
		return nil, proc, false, nil
	}
	what := map[string]string{"exec": "exec", "attach": "attach", "portforward": "port-forward"}[req.SubResource]
	return []violation{{control: ControlExec, mode: m, policy: policy, message: what + " denied: " + reason}}, proc, false, nil
}

// podSpec extracts the pod spec and pod labels of a Pod or workload
// object; a nil spec means the kind is not one the handler reviews.
func podSpec(req *admissionv1.AdmissionRequest) (*corev1.PodSpec, map[string]string, error) {
	if req.SubResource != "" && !(req.Resource.Resource == "pods" && req.SubResource == "ephemeralcontainers") {
		return nil, nil, nil
	}
	raw := req.Object.Raw
	decode := func(v any) error {
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("%s %s/%s: %w", req.Kind.Kind, req.Namespace, req.Name, err)
		}
		return nil
	}
	switch req.Kind.Group + "/" + req.Kind.Kind {
	case "/Pod":
		var o corev1.Pod
		err := decode(&o)
		return &o.Spec, o.Labels, err
	case "apps/Deployment":
		var o appsv1.Deployment
		err := decode(&o)
		return &o.Spec.Template.Spec, o.Spec.Template.Labels, err
	case "apps/StatefulSet":
		var o appsv1.StatefulSet
		err := decode(&o)
		return &o.Spec.Template.Spec, o.Spec.Template.Labels, err
	case "apps/DaemonSet":
		var o appsv1.DaemonSet
		err := decode(&o)
		return &o.Spec.Template.Spec, o.Spec.Template.Labels, err
	case "apps/ReplicaSet":
		var o appsv1.ReplicaSet
		err := decode(&o)
		return &o.Spec.Template.Spec, o.Spec.Template.Labels, err
	case "batch/Job":
		var o batchv1.Job
		err := decode(&o)
		return &o.Spec.Template.Spec, o.Spec.Template.Labels, err
	case "batch/CronJob":
		var o batchv1.CronJob
		err := decode(&o)
		return &o.Spec.JobTemplate.Spec.Template.Spec, o.Spec.JobTemplate.Spec.Template.Labels, err
	}
	return nil, nil, nil
}
