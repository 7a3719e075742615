// Package discovery watches a Kubernetes cluster for the kube-enforcer and
// reports its workload inventory: client-go shared informers on the
// namespaces, pods, workload controllers, services, network policies,
// service accounts and RBAC bindings keep a local cache, and every change
// (debounced) rebuilds a fleet.Inventory and hands it to a sink, which
// sends it to the server through a gateway.
package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/mamorisec/mamori/internal/fleet"
)

// Sink receives each new inventory. An error is logged and the inventory is
// offered again after the next debounce interval.
type Sink func(ctx context.Context, inv fleet.Inventory) error

// DefaultDebounce is the shortest interval between two inventories.
const DefaultDebounce = 2 * time.Second

// Config configures a Watcher.
type Config struct {
	Client  kubernetes.Interface
	AgentID string
	// Host names the cluster in the inventory.
	Host string
	Sink Sink
	// Debounce is the shortest interval between two calls of Sink
	// (DefaultDebounce when zero).
	Debounce time.Duration
	// Resync is the informers' resync period (none when zero).
	Resync time.Duration
	Log    *slog.Logger
}

// Watcher keeps the cluster cache and feeds the sink.
type Watcher struct {
	cfg     Config
	factory informers.SharedInformerFactory
	changed chan struct{}
	last    []byte // the last inventory delivered, without its time
}

// New prepares a Watcher; Run starts it.
func New(cfg Config) (*Watcher, error) {
	if cfg.Client == nil {
		return nil, errors.New("discovery: no Kubernetes client")
	}
	if cfg.Sink == nil {
		return nil, errors.New("discovery: no inventory sink")
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{cfg: cfg, factory: informers.NewSharedInformerFactory(cfg.Client, cfg.Resync), changed: make(chan struct{}, 1)}
	notify := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.signal() },
		UpdateFunc: func(any, any) { w.signal() },
		DeleteFunc: func(any) { w.signal() },
	}
	f := w.factory
	for _, inf := range []cache.SharedIndexInformer{
		f.Core().V1().Namespaces().Informer(),
		f.Core().V1().Pods().Informer(),
		f.Core().V1().Services().Informer(),
		f.Core().V1().ServiceAccounts().Informer(),
		f.Apps().V1().Deployments().Informer(),
		f.Apps().V1().StatefulSets().Informer(),
		f.Apps().V1().DaemonSets().Informer(),
		f.Apps().V1().ReplicaSets().Informer(),
		f.Batch().V1().Jobs().Informer(),
		f.Batch().V1().CronJobs().Informer(),
		f.Networking().V1().NetworkPolicies().Informer(),
		f.Rbac().V1().Roles().Informer(),
		f.Rbac().V1().RoleBindings().Informer(),
		f.Rbac().V1().ClusterRoleBindings().Informer(),
	} {
		if _, err := inf.AddEventHandler(notify); err != nil {
			return nil, fmt.Errorf("discovery: watching: %w", err)
		}
	}
	return w, nil
}

// signal records a change without blocking.
func (w *Watcher) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// Run starts the informers, waits for their caches, delivers the first
// inventory and then one per burst of changes, at most one per debounce
// interval, until ctx ends. An inventory equal to the last delivered one
// is not sent again.
func (w *Watcher) Run(ctx context.Context) error {
	w.factory.Start(ctx.Done())
	defer w.factory.Shutdown()
	for typ, ok := range w.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("discovery: the %v cache did not sync", typ)
		}
	}
	w.signal()
	var lastSent time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.changed:
		}
		// Let the burst settle and keep to the debounce interval.
		wait := max(w.cfg.Debounce-time.Since(lastSent), 0)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		select { // changes during the wait are in this inventory
		case <-w.changed:
		default:
		}
		lastSent = time.Now()
		if err := w.deliver(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.cfg.Log.Warn("kube inventory not delivered; retrying", "err", err)
			w.signal()
		}
	}
}

// deliver builds the inventory and sends it when it changed.
func (w *Watcher) deliver(ctx context.Context) error {
	s, err := w.State()
	if err != nil {
		return err
	}
	inv := Build(s)
	key, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("discovery: encoding the inventory: %w", err)
	}
	if string(key) == string(w.last) {
		return nil
	}
	inv.AgentID, inv.Host, inv.Time = w.cfg.AgentID, w.cfg.Host, time.Now().UTC()
	if err := w.cfg.Sink(ctx, inv); err != nil {
		return err
	}
	w.last = key
	return nil
}

// State reads the informers' caches.
func (w *Watcher) State() (State, error) {
	f, all := w.factory, labels.Everything()
	var s State
	var errs []error
	collect := func(err error) { errs = append(errs, err) }
	var err error
	s.Namespaces, err = f.Core().V1().Namespaces().Lister().List(all)
	collect(err)
	s.Pods, err = f.Core().V1().Pods().Lister().List(all)
	collect(err)
	s.Services, err = f.Core().V1().Services().Lister().List(all)
	collect(err)
	s.Deployments, err = f.Apps().V1().Deployments().Lister().List(all)
	collect(err)
	s.StatefulSets, err = f.Apps().V1().StatefulSets().Lister().List(all)
	collect(err)
	s.DaemonSets, err = f.Apps().V1().DaemonSets().Lister().List(all)
	collect(err)
	s.ReplicaSets, err = f.Apps().V1().ReplicaSets().Lister().List(all)
	collect(err)
	s.Jobs, err = f.Batch().V1().Jobs().Lister().List(all)
	collect(err)
	s.CronJobs, err = f.Batch().V1().CronJobs().Lister().List(all)
	collect(err)
	s.NetworkPolicies, err = f.Networking().V1().NetworkPolicies().Lister().List(all)
	collect(err)
	s.Roles, err = f.Rbac().V1().Roles().Lister().List(all)
	collect(err)
	s.RoleBindings, err = f.Rbac().V1().RoleBindings().Lister().List(all)
	collect(err)
	s.ClusterRoleBindings, err = f.Rbac().V1().ClusterRoleBindings().Lister().List(all)
	collect(err)
	if err := errors.Join(errs...); err != nil {
		return State{}, fmt.Errorf("discovery: reading the cache: %w", err)
	}
	return s, nil
}
