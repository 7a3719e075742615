package discovery

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/testenv"
)

// recorder is a Sink that keeps every inventory and when it came.
type recorder struct {
	mu    sync.Mutex
	invs  []fleet.Inventory
	times []time.Time
	ch    chan struct{}
}

func (r *recorder) sink(_ context.Context, inv fleet.Inventory) error {
	r.mu.Lock()
	r.invs = append(r.invs, inv)
	r.times = append(r.times, time.Now())
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
	return nil
}

// waitFor waits until the latest inventory's workloads in ns satisfy ok.
func (r *recorder) waitFor(t *testing.T, ns string, what string, ok func([]fleet.Workload) bool) fleet.Inventory {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		var last fleet.Inventory
		if len(r.invs) > 0 {
			last = r.invs[len(r.invs)-1]
		}
		r.mu.Unlock()
		var ws []fleet.Workload
		for _, w := range last.Workloads {
			if w.Namespace == ns {
				ws = append(ws, w)
			}
		}
		if ok(ws) {
			return last
		}
		select {
		case <-r.ch:
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no inventory with %s; last workloads in %s: %+v", what, ns, ws)
		}
	}
}

func podNames(ws []fleet.Workload, name string) []string {
	var out []string
	for _, w := range ws {
		if w.Name == name {
			for _, p := range w.Pods {
				out = append(out, p.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestWatcherRealAPIServer runs the watcher against a real kube-apiserver:
// a Deployment with its ReplicaSet and three pods, two of them marked
// Running through the status subresource (there are no kubelets), a
// NetworkPolicy and a Service. Only running pods appear; a pod turning
// Running, and a deleted pod, change the inventory.
func TestWatcherRealAPIServer(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Namespaces are never finalized (no controller manager): each run
	// takes a new one.
	ns := fmt.Sprintf("discovery-%d", time.Now().UnixNano())
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"team": "shop"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	labels := map[string]string{"app": "api"}
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "registry.example/api:1"}}}
	dep, err := client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Labels: map[string]string{"tier": "backend"}},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	rs, err := client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "api-7f", Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mkPod := func(name string, lbl map[string]string, running bool) *corev1.Pod {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbl}, Spec: spec}
		if lbl["app"] == "api" {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}
		}
		p, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if running {
			p = setRunning(ctx, t, client, p)
		}
		return p
	}
	mkPod("api-7f-a", labels, true)
	pending := mkPod("api-7f-b", labels, false)
	mkPod("db", map[string]string{"app": "db"}, true)

	port := intstr.FromInt32(5432)
	if _, err := client.NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "db-ingress"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: labels}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &port}},
			}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{ch: make(chan struct{}, 1)}
	const debounce = 300 * time.Millisecond
	w, err := New(Config{Client: client, AgentID: "kube-1", Host: "test-cluster", Sink: rec.sink, Debounce: debounce})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	inv := rec.waitFor(t, ns, "the running api pod and db", func(ws []fleet.Workload) bool {
		return slices.Equal(podNames(ws, "api"), []string{"api-7f-a"}) && slices.Equal(podNames(ws, "db"), []string{"db"})
	})
	if inv.AgentID != "kube-1" || inv.Host != "test-cluster" || inv.Time.IsZero() {
		t.Errorf("inventory header %q %q %v", inv.AgentID, inv.Host, inv.Time)
	}
	for _, wl := range inv.Workloads {
		if wl.Namespace == ns && wl.Name == "api" && (wl.Kind != "Deployment" || wl.Labels["tier"] != "backend") {
			t.Errorf("api pods are not under their Deployment: %+v", wl)
		}
	}
	if !slices.Contains(inv.Connections, fleet.Connection{From: ns + "/api", To: ns + "/db", Port: 5432, Proto: "TCP"}) {
		t.Errorf("no NetworkPolicy connection api → db in %+v", inv.Connections)
	}

	setRunning(ctx, t, client, pending)
	rec.waitFor(t, ns, "both api pods after the pending one runs", func(ws []fleet.Workload) bool {
		return slices.Equal(podNames(ws, "api"), []string{"api-7f-a", "api-7f-b"})
	})
	if err := client.CoreV1().Pods(ns).Delete(ctx, "db", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, ns, "db gone after its pod was deleted", func(ws []fleet.Workload) bool {
		return podNames(ws, "db") == nil
	})

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i := 1; i < len(rec.times); i++ {
		if gap := rec.times[i].Sub(rec.times[i-1]); gap < debounce-10*time.Millisecond {
			t.Errorf("inventories %d and %d only %v apart, debounce is %v", i-1, i, gap, debounce)
		}
	}
}

// setRunning marks a pod Running through the status subresource, as a
// kubelet would.
func setRunning(ctx context.Context, t *testing.T, client kubernetes.Interface, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	p = p.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	out, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("marking pod %s Running: %v", p.Name, err)
	}
	return out
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a client succeeded")
	}
	cs := &kubernetes.Clientset{}
	if _, err := New(Config{Client: cs}); err == nil {
		t.Error("New without a sink succeeded")
	}
}
