package discovery

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/mamorisec/mamori/internal/fleet"
)

func meta(ns, name string, labels map[string]string, owner ...metav1.OwnerReference) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, UID: types.UID(ns + "/" + name), OwnerReferences: owner}
}

func ctrl(kind, name string) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{Kind: kind, Name: name, Controller: &yes}
}

func pod(ns, name string, phase corev1.PodPhase, labels map[string]string, owner ...metav1.OwnerReference) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: meta(ns, name, labels, owner...),
		Spec:       corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "main", Image: "registry.example/" + name + ":1"}}},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

// cluster is a small shop: an api Deployment (one running, one pending
// pod), a db StatefulSet with a privileged pod, a CronJob's running job, a
// bare debug pod, a frontend in another namespace, a failed DaemonSet pod,
// a NetworkPolicy and a Service.
func cluster() State {
	tcp := corev1.ProtocolTCP
	pgPort := intstr.FromInt32(5432)
	dbPod := pod("shop", "db-0", corev1.PodRunning, map[string]string{"app": "db"}, ctrl("StatefulSet", "db"))
	priv := true
	dbPod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &priv}
	dbPod.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/db"}}}}
	dbPod.Spec.ServiceAccountName = "db"
	return State{
		Namespaces: []*corev1.Namespace{
			{ObjectMeta: meta("", "shop", map[string]string{"team": "shop"})},
			{ObjectMeta: meta("", "web", map[string]string{"team": "web"})},
		},
		Deployments: []*appsv1.Deployment{
			{ObjectMeta: meta("shop", "api", map[string]string{"tier": "backend"})},
			{ObjectMeta: meta("web", "frontend", nil)},
		},
		ReplicaSets: []*appsv1.ReplicaSet{
			{ObjectMeta: meta("shop", "api-7f", nil, ctrl("Deployment", "api"))},
			{ObjectMeta: meta("web", "frontend-5c", nil, ctrl("Deployment", "frontend"))},
		},
		StatefulSets: []*appsv1.StatefulSet{{ObjectMeta: meta("shop", "db", map[string]string{"tier": "data"})}},
		CronJobs:     []*batchv1.CronJob{{ObjectMeta: meta("shop", "nightly", nil)}},
		Jobs:         []*batchv1.Job{{ObjectMeta: meta("shop", "nightly-29", nil, ctrl("CronJob", "nightly"))}},
		Pods: []*corev1.Pod{
			pod("shop", "api-7f-a", corev1.PodRunning, map[string]string{"app": "api"}, ctrl("ReplicaSet", "api-7f")),
			pod("shop", "api-7f-b", corev1.PodPending, map[string]string{"app": "api"}, ctrl("ReplicaSet", "api-7f")),
			dbPod,
			pod("shop", "nightly-29-x", corev1.PodRunning, map[string]string{"job": "nightly"}, ctrl("Job", "nightly-29")),
			pod("shop", "debug", corev1.PodRunning, map[string]string{"run": "debug"}),
			pod("shop", "agent-q", corev1.PodFailed, nil, ctrl("DaemonSet", "agent")),
			pod("web", "frontend-5c-z", corev1.PodRunning, map[string]string{"app": "frontend"}, ctrl("ReplicaSet", "frontend-5c")),
		},
		NetworkPolicies: []*networkingv1.NetworkPolicy{{
			ObjectMeta: meta("shop", "db-ingress", nil),
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{
					{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}}}},
						Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &pgPort}}},
					{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "web"}}}}},
					{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "192.0.2.0/24"}}}},
				},
			},
		}},
		Services: []*corev1.Service{{
			ObjectMeta: meta("shop", "api", nil),
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"},
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
		}},
		ClusterRoleBindings: []*rbacv1.ClusterRoleBinding{{
			ObjectMeta: meta("", "db-admin", nil),
			RoleRef:    rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "db", Namespace: "shop"}},
		}},
	}
}

func img(name string) []string { return []string{"registry.example/" + name + ":1"} }

func TestBuild(t *testing.T) {
	cases := []struct {
		name  string
		state State
		want  fleet.Inventory
	}{
		{name: "empty", state: State{}, want: fleet.Inventory{}},
		{
			name:  "shop",
			state: cluster(),
			want: fleet.Inventory{
				Workloads: []fleet.Workload{
					{Namespace: "shop", Kind: "CronJob", Name: "nightly", Pods: []fleet.Pod{{Name: "nightly-29-x", Node: "node-1", Images: img("nightly-29-x")}}},
					{Namespace: "shop", Kind: "Deployment", Name: "api", Labels: map[string]string{"tier": "backend"},
						Pods: []fleet.Pod{{Name: "api-7f-a", Node: "node-1", Images: img("api-7f-a")}}},
					{Namespace: "shop", Kind: "Pod", Name: "debug", Labels: map[string]string{"run": "debug"},
						Pods: []fleet.Pod{{Name: "debug", Node: "node-1", Images: img("debug")}}},
					{Namespace: "shop", Kind: "StatefulSet", Name: "db", Labels: map[string]string{"tier": "data"},
						Pods: []fleet.Pod{{Name: "db-0", Node: "node-1", Images: img("db-0"), Privileged: true}}},
					{Namespace: "web", Kind: "Deployment", Name: "frontend", Pods: []fleet.Pod{{Name: "frontend-5c-z", Node: "node-1", Images: img("frontend-5c-z")}}},
				},
				Connections: []fleet.Connection{
					{From: "service:shop/api", To: "shop/api", Port: 8080, Proto: "TCP"},
					{From: "shop/api", To: "shop/db", Port: 5432, Proto: "TCP"},
					{From: "web/frontend", To: "shop/db"},
				},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _ := json.MarshalIndent(Build(c.state), "", " ")
			want, _ := json.MarshalIndent(c.want, "", " ")
			if string(got) != string(want) {
				t.Errorf("Build:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestPosture(t *testing.T) {
	got := map[string]bool{}
	for _, f := range Posture(cluster()) {
		got[f.Workload+" "+f.Check] = true
	}
	for _, want := range []string{
		"shop/db privileged", "shop/db host-path", "shop/db cluster-admin", "shop/db run-as-root",
		"shop/api privilege-escalation",
	} {
		if !got[want] {
			t.Errorf("posture lacks %q (have %v)", want, got)
		}
	}
	for _, not := range []string{"shop/api privileged", "shop/api cluster-admin", "shop/agent run-as-root"} {
		if got[not] {
			t.Errorf("posture reports %q", not)
		}
	}
}
