package discovery

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/mamorisec/mamori/internal/fleet"
)

// State is one consistent view of the cluster objects the inventory is
// built from (the informers' caches, or objects a test makes up).
type State struct {
	Namespaces          []*corev1.Namespace
	Pods                []*corev1.Pod
	ReplicaSets         []*appsv1.ReplicaSet
	Deployments         []*appsv1.Deployment
	StatefulSets        []*appsv1.StatefulSet
	DaemonSets          []*appsv1.DaemonSet
	Jobs                []*batchv1.Job
	CronJobs            []*batchv1.CronJob
	Services            []*corev1.Service
	NetworkPolicies     []*networkingv1.NetworkPolicy
	Roles               []*rbacv1.Role
	RoleBindings        []*rbacv1.RoleBinding
	ClusterRoleBindings []*rbacv1.ClusterRoleBinding
}

// workload is a workload being assembled, with the running pods' labels
// kept for selector matching.
type workload struct {
	fleet.Workload
	podLabels []labels.Set
}

// key is how a workload is named in Connections: "namespace/name".
func (w *workload) key() string { return w.Namespace + "/" + w.Name }

// Build turns a cluster view into an inventory: every workload with at
// least one running pod (phase Running; Pending, Succeeded and Failed pods
// are left out), pods grouped under their top-level owner (ReplicaSet →
// Deployment, Job → CronJob, StatefulSet, DaemonSet; a pod without a known
// controller is its own workload of kind Pod), and the connections the
// cluster's configuration allows:
//
//   - NetworkPolicy ingress rules: From is a workload a rule's peer selects
//     (podSelector and namespaceSelector), To a workload the policy's
//     podSelector selects, one connection per port of the rule (no port:
//     any). ipBlock peers and rules without peers name no workload and are
//     left out.
//   - Services: From is "service:namespace/name", To a workload whose
//     running pods the service's selector selects, one connection per
//     service port (the target port when numeric).
//
// The result is sorted, so equal states give equal inventories.
func Build(s State) fleet.Inventory {
	index := newOwnerIndex(s)
	byKey := map[string]*workload{}
	for _, p := range s.Pods {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		kind, name, objLabels := index.top(p)
		k := p.Namespace + "/" + kind + "/" + name
		w := byKey[k]
		if w == nil {
			w = &workload{Workload: fleet.Workload{Namespace: p.Namespace, Kind: kind, Name: name, Labels: objLabels, Pods: []fleet.Pod{}}}
			byKey[k] = w
		}
		w.Pods = append(w.Pods, podOf(p))
		w.podLabels = append(w.podLabels, labels.Set(p.Labels))
	}
	ws := make([]*workload, 0, len(byKey))
	for _, w := range byKey {
		slices.SortFunc(w.Pods, func(a, b fleet.Pod) int { return strings.Compare(a.Name, b.Name) })
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b *workload) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Kind, b.Kind), strings.Compare(a.Name, b.Name))
	})
	inv := fleet.Inventory{}
	for _, w := range ws {
		inv.Workloads = append(inv.Workloads, w.Workload)
	}
	inv.Connections = connections(s, ws)
	return inv
}

// podOf is the inventory's view of a running pod.
func podOf(p *corev1.Pod) fleet.Pod {
	fp := fleet.Pod{Name: p.Name, Node: p.Spec.NodeName, Images: []string{}}
	for _, c := range p.Spec.Containers {
		fp.Images = append(fp.Images, c.Image)
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			fp.Privileged = true
		}
	}
	return fp
}

// ownerIndex resolves owner references through the cached controllers.
type ownerIndex struct {
	replicaSets map[string]*appsv1.ReplicaSet // namespace/name
	jobs        map[string]*batchv1.Job
	objLabels   map[string]map[string]string // namespace/kind/name
}

func newOwnerIndex(s State) *ownerIndex {
	ix := &ownerIndex{replicaSets: map[string]*appsv1.ReplicaSet{}, jobs: map[string]*batchv1.Job{}, objLabels: map[string]map[string]string{}}
	for _, o := range s.ReplicaSets {
		ix.replicaSets[o.Namespace+"/"+o.Name] = o
		ix.objLabels[o.Namespace+"/ReplicaSet/"+o.Name] = o.Labels
	}
	for _, o := range s.Jobs {
		ix.jobs[o.Namespace+"/"+o.Name] = o
		ix.objLabels[o.Namespace+"/Job/"+o.Name] = o.Labels
	}
	for _, o := range s.Deployments {
		ix.objLabels[o.Namespace+"/Deployment/"+o.Name] = o.Labels
	}
	for _, o := range s.StatefulSets {
		ix.objLabels[o.Namespace+"/StatefulSet/"+o.Name] = o.Labels
	}
	for _, o := range s.DaemonSets {
		ix.objLabels[o.Namespace+"/DaemonSet/"+o.Name] = o.Labels
	}
	for _, o := range s.CronJobs {
		ix.objLabels[o.Namespace+"/CronJob/"+o.Name] = o.Labels
	}
	return ix
}

// top returns the kind, name and labels of the workload a pod belongs to.
// Labels come from the workload object when it is cached, else from the
// pod.
func (ix *ownerIndex) top(p *corev1.Pod) (kind, name string, objLabels map[string]string) {
	kind, name = "Pod", p.Name
	if ref := metav1.GetControllerOf(p); ref != nil {
		kind, name = ref.Kind, ref.Name
		switch ref.Kind {
		case "ReplicaSet":
			if rs := ix.replicaSets[p.Namespace+"/"+ref.Name]; rs != nil {
				if up := metav1.GetControllerOf(rs); up != nil && up.Kind == "Deployment" {
					kind, name = up.Kind, up.Name
				}
			}
		case "Job":
			if j := ix.jobs[p.Namespace+"/"+ref.Name]; j != nil {
				if up := metav1.GetControllerOf(j); up != nil && up.Kind == "CronJob" {
					kind, name = up.Kind, up.Name
				}
			}
		}
	}
	if l, ok := ix.objLabels[p.Namespace+"/"+kind+"/"+name]; ok && kind != "Pod" {
		return kind, name, l
	}
	return kind, name, p.Labels
}

// selects reports whether a selector matches any of a workload's running
// pods. A nil or invalid selector selects nothing.
func selects(sel labels.Selector, w *workload) bool {
	if sel == nil {
		return false
	}
	for _, l := range w.podLabels {
		if sel.Matches(l) {
			return true
		}
	}
	return false
}

func connections(s State, ws []*workload) []fleet.Connection {
	nsLabels := map[string]labels.Set{}
	for _, n := range s.Namespaces {
		nsLabels[n.Name] = labels.Set(n.Labels)
	}
	seen := map[fleet.Connection]bool{}
	var out []fleet.Connection
	add := func(c fleet.Connection) {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	for _, np := range s.NetworkPolicies {
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) && len(np.Spec.PolicyTypes) != 0 {
			continue
		}
		target, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			continue
		}
		for _, to := range ws {
			if to.Namespace != np.Namespace || !selects(target, to) {
				continue
			}
			for _, rule := range np.Spec.Ingress {
				for _, peer := range rule.From {
					for _, from := range ws {
						if peerSelects(peer, np.Namespace, nsLabels, from) {
							for _, pp := range portsOf(rule.Ports) {
								add(fleet.Connection{From: from.key(), To: to.key(), Port: pp.port, Proto: pp.proto})
							}
						}
					}
				}
			}
		}
	}
	for _, svc := range s.Services {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for _, to := range ws {
			if to.Namespace != svc.Namespace || !selects(sel, to) {
				continue
			}
			for _, p := range svc.Spec.Ports {
				port := int(p.Port)
				if p.TargetPort.IntValue() > 0 {
					port = p.TargetPort.IntValue()
				}
				add(fleet.Connection{From: "service:" + svc.Namespace + "/" + svc.Name, To: to.key(), Port: port, Proto: string(cmp.Or(p.Protocol, corev1.ProtocolTCP))})
			}
		}
	}
	slices.SortFunc(out, func(a, b fleet.Connection) int {
		return cmp.Or(strings.Compare(a.From, b.From), strings.Compare(a.To, b.To), cmp.Compare(a.Port, b.Port), strings.Compare(a.Proto, b.Proto))
	})
	return out
}

// peerSelects reports whether a NetworkPolicy peer (in policy namespace ns)
// selects a workload.
func peerSelects(peer networkingv1.NetworkPolicyPeer, ns string, nsLabels map[string]labels.Set, w *workload) bool {
	if peer.PodSelector == nil && peer.NamespaceSelector == nil {
		return false // ipBlock
	}
	if peer.NamespaceSelector == nil {
		if w.Namespace != ns {
			return false
		}
	} else {
		nsSel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
		if err != nil || !nsSel.Matches(nsLabels[w.Namespace]) {
			return false
		}
	}
	if peer.PodSelector == nil {
		return len(w.podLabels) > 0
	}
	podSel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
	return err == nil && selects(podSel, w)
}

type portProto struct {
	port  int
	proto string
}

// portsOf lists a rule's numeric ports (a named port is kept as port 0
// with its protocol); no ports means any port.
func portsOf(ps []networkingv1.NetworkPolicyPort) []portProto {
	if len(ps) == 0 {
		return []portProto{{}}
	}
	out := make([]portProto, 0, len(ps))
	for _, p := range ps {
		pp := portProto{proto: string(corev1.ProtocolTCP)}
		if p.Protocol != nil {
			pp.proto = string(*p.Protocol)
		}
		if p.Port != nil {
			pp.port = p.Port.IntValue()
		}
		out = append(out, pp)
	}
	return out
}

// Finding is one posture problem of a workload.
type Finding struct {
	Workload string // namespace/name
	Kind     string // the workload's kind
	Check    string // privileged, host-pid, host-network, host-ipc, host-path, added-capability, privilege-escalation, run-as-root, cluster-admin, wildcard-role
	Detail   string
}

// Posture checks the running workloads' pod specs and service-account
// bindings for the usual runtime risks: privileged containers, host
// namespaces, hostPath volumes, added capabilities, privilege escalation
// not forbidden, root not forbidden, service accounts bound to
// cluster-admin, and service accounts bound to a Role granting every verb
// on every resource of its namespace.
func Posture(s State) []Finding {
	index := newOwnerIndex(s)
	wildcard := map[string]bool{} // namespace/role
	for _, r := range s.Roles {
		for _, rule := range r.Rules {
			if slices.Contains(rule.Verbs, "*") && slices.Contains(rule.Resources, "*") {
				wildcard[r.Namespace+"/"+r.Name] = true
			}
		}
	}
	clusterAdmin := map[string]bool{} // namespace/serviceaccount
	wildcardSA := map[string]string{} // namespace/serviceaccount → role
	bind := func(ns string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		for _, sub := range subjects {
			if sub.Kind != rbacv1.ServiceAccountKind {
				continue
			}
			sa := cmp.Or(sub.Namespace, ns) + "/" + sub.Name
			switch {
			case ref.Kind == "ClusterRole" && ref.Name == "cluster-admin":
				clusterAdmin[sa] = true
			case ref.Kind == "Role" && wildcard[ns+"/"+ref.Name]:
				wildcardSA[sa] = ref.Name
			}
		}
	}
	for _, b := range s.ClusterRoleBindings {
		bind("", b.RoleRef, b.Subjects)
	}
	for _, b := range s.RoleBindings {
		bind(b.Namespace, b.RoleRef, b.Subjects)
	}
	seen := map[Finding]bool{}
	var out []Finding
	for _, p := range s.Pods {
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		kind, name, _ := index.top(p)
		add := func(check, detail string) {
			f := Finding{Workload: p.Namespace + "/" + name, Kind: kind, Check: check, Detail: detail}
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
		spec := p.Spec
		if spec.HostPID {
			add("host-pid", "shares the node's process namespace")
		}
		if spec.HostNetwork {
			add("host-network", "shares the node's network namespace")
		}
		if spec.HostIPC {
			add("host-ipc", "shares the node's IPC namespace")
		}
		for _, v := range spec.Volumes {
			if v.HostPath != nil {
				add("host-path", fmt.Sprintf("volume %s mounts %s from the node", v.Name, v.HostPath.Path))
			}
		}
		podNonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			sc := c.SecurityContext
			if sc != nil && sc.Privileged != nil && *sc.Privileged {
				add("privileged", "container "+c.Name+" is privileged")
			}
			if sc != nil && sc.Capabilities != nil {
				for _, cap := range sc.Capabilities.Add {
					add("added-capability", fmt.Sprintf("container %s adds %s", c.Name, cap))
				}
			}
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				add("privilege-escalation", "container "+c.Name+" does not set allowPrivilegeEscalation: false")
			}
			nonRoot := podNonRoot
			if sc != nil && sc.RunAsNonRoot != nil {
				nonRoot = *sc.RunAsNonRoot
			}
			if !nonRoot {
				add("run-as-root", "container "+c.Name+" may run as root (runAsNonRoot not set)")
			}
		}
		sa := p.Namespace + "/" + cmp.Or(spec.ServiceAccountName, "default")
		if clusterAdmin[sa] {
			add("cluster-admin", "service account "+sa+" is bound to cluster-admin")
		}
		if r, ok := wildcardSA[sa]; ok {
			add("wildcard-role", "service account "+sa+" is bound to role "+r+", which grants every verb on every resource")
		}
	}
	slices.SortFunc(out, func(a, b Finding) int {
		return cmp.Or(strings.Compare(a.Workload, b.Workload), strings.Compare(a.Check, b.Check), strings.Compare(a.Detail, b.Detail))
	})
	return out
}
