// Package enforcer is the kube-enforcer process (`mamori kube-enforcer`): it
// serves the admission webhook of package admission over HTTPS with a
// certificate from package webhookcert (or given files), answers image
// verdicts from the console server (admission.ServerVerdicts), decides
// kubectl exec with the runtime policies the server distributes
// (admission.RuntimeExec), sends the admission decisions to the server's
// audit trail and the cluster's workload inventory (package discovery) to
// the server, and sends heartbeats.
//
// The kube-enforcer speaks to the server's REST API directly, with one API
// token: images:view and scans:view (scans:edit for unscanned: scan) for
// the image verdicts, and enforcers:edit (the Gateway role's permission)
// for the fleet relay at fleet.Path*. It enrolls there as
// fleet.KindKubeEnforcer with its enforcer group's enrollment token; the
// client certificate the server signs is kept in the state directory but
// not used, since the REST relay authenticates by the API token. The
// identity and the last policy bundle live in the state directory, so a
// kube-enforcer restarted while the server is down keeps deciding exec
// with the last bundle it received.
package enforcer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/fleet/restclient"
	"github.com/mamorisec/mamori/internal/kube/admission"
	"github.com/mamorisec/mamori/internal/kube/webhookcert"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
)

// Defaults of Config.
const (
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultCertCheckInterval = time.Minute
	DefaultEventQueue        = 10000
	// verdictTimeout bounds one image verdict request to the server, well
	// below the webhook's timeoutSeconds.
	verdictTimeout = 3 * time.Second
)

// Config configures the kube-enforcer.
type Config struct {
	// Kube is the cluster's API client.
	Kube kubernetes.Interface
	// Admission is the admission policy (admission.ParseConfig).
	Admission admission.Config
	// Cluster names the cluster: the hostname the kube-enforcer enrolls
	// with, the Host of its events and inventory.
	Cluster string
	// Version is reported at enrollment and in heartbeats.
	Version string

	// WebhookAddr is the address to serve the webhook on, or Listener a
	// listener to serve it on (tests: 127.0.0.1:0).
	WebhookAddr string
	Listener    net.Listener
	// CertFile and KeyFile, when set, are the serving certificate (issued
	// by the installer, e.g. the Helm chart): it is read again on every
	// check and the webhook configurations are not touched. Otherwise a
	// private CA and serving certificate are generated (webhookcert) for
	// Service.Namespace, DNSNames and IPs, and their CA bundle is kept in
	// ValidatingWebhook and MutatingWebhook.
	CertFile, KeyFile  string
	Service, Namespace string
	DNSNames           []string
	IPs                []net.IP
	ValidatingWebhook  string
	MutatingWebhook    string

	// Server is the console server's URL (https), ServerCA the CA to
	// verify it by (the system roots when nil), Token the API token.
	Server   string
	ServerCA *x509.CertPool
	Token    string
	// EnrollmentToken is the enforcer group's enrollment token, needed
	// until the kube-enforcer has enrolled once.
	EnrollmentToken string
	// StateDir keeps the identity and the last policy bundle.
	StateDir string

	// HeartbeatInterval, CertCheckInterval and EventQueue default to the
	// constants above; Debounce is the inventory's (discovery's default
	// when zero).
	HeartbeatInterval time.Duration
	CertCheckInterval time.Duration
	EventQueue        int
	Debounce          time.Duration
	Log               *slog.Logger
}

// enforcer is one running kube-enforcer.
type enforcer struct {
	cfg     Config
	log     *slog.Logger
	backend fleet.Backend
	// id is the enrolled identity (nil until enrolled).
	id atomic.Pointer[identity]
	// policies is the compiled bundle in force (nil until one is known).
	policies atomic.Pointer[runtimepolicy.Set]
	// handler is rebuilt when the bundle's bypass changes.
	handler atomic.Pointer[admission.Handler]
	// build makes a handler with extra bypass namespaces.
	build func(bypass []string) (*admission.Handler, error)
	mu    sync.Mutex
	// stopping is closed when Run is shutting down.
	stopping chan struct{}
	// bundleBypass is the bypass namespaces of the bundle in force,
	// bypass those the current handler was built with.
	bundleBypass, bypass []string
}

// Run serves the webhook and talks to the server until ctx ends. Only a
// configuration error (or a listener that cannot be opened) is returned:
// an unreachable server is retried, admission keeps answering meanwhile.
func Run(ctx context.Context, cfg Config) error {
	if err := check(&cfg); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("kube-enforcer: state directory: %w", err)
	}
	backend, err := restclient.New(restclient.Config{URL: cfg.Server, Token: cfg.Token, CA: cfg.ServerCA, Timeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("kube-enforcer: %w", err)
	}
	e := &enforcer{cfg: cfg, log: cfg.Log, backend: backend, stopping: make(chan struct{})}
	var id identity
	if ok, err := readJSON(cfg.StateDir, identityFile, &id); err != nil {
		return fmt.Errorf("kube-enforcer: %w", err)
	} else if ok && id.AgentID != "" && id.Hostname == cfg.Cluster {
		e.id.Store(&id)
	}
	if cfg.EnrollmentToken == "" && e.id.Load() == nil {
		return errors.New("kube-enforcer: not enrolled yet and no enrollment token given")
	}
	var bundle fleet.PolicyBundle
	if ok, err := readJSON(cfg.StateDir, bundleFile, &bundle); err != nil {
		e.log.Warn("ignoring the cached policy bundle", "err", err)
	} else if ok {
		if err := e.apply(bundle); err != nil {
			e.log.Warn("ignoring the cached policy bundle", "err", err)
		}
	}

	// Admission: image verdicts from the server, exec from the bundle,
	// events to the server.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.ServerCA}
	verdicts := &admission.ServerVerdicts{URL: cfg.Server, Token: cfg.Token,
		Client: &http.Client{Transport: tr, Timeout: verdictTimeout}}
	queue := admission.NewQueue(sink{e}, cfg.EventQueue)
	defer queue.Close()
	defer close(e.stopping) // runs before queue.Close: its flush does not retry
	exec := admission.RuntimeExec{Policies: e.policies.Load, Cluster: cfg.Cluster}
	pods := clientPods{cfg.Kube}
	e.build = func(extra []string) (*admission.Handler, error) {
		ac := cfg.Admission
		ac.AgentID, ac.Cluster = "", cfg.Cluster
		var ns []string
		if ac.BypassNamespaces != nil {
			ns = slices.Clone(*ac.BypassNamespaces)
		}
		for _, n := range extra {
			if !slices.Contains(ns, n) {
				ns = append(ns, n)
			}
		}
		ac.BypassNamespaces = &ns
		return admission.NewHandler(ac, verdicts, exec, pods, queue)
	}
	if err := e.rebuild(); err != nil {
		return fmt.Errorf("kube-enforcer: admission: %w", err)
	}

	tlsCfg, certLoop, err := e.serving()
	if err != nil {
		return err
	}
	l := cfg.Listener
	if l == nil {
		if l, err = net.Listen("tcp", cfg.WebhookAddr); err != nil {
			return fmt.Errorf("kube-enforcer: webhook: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.handler.Load().ServeHTTP(w, r) }))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelDebug)}
	srv.TLSConfig = tlsCfg

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	start := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	start(func() { certLoop(ctx) })
	start(func() { e.fleetLoop(ctx) })
	start(func() { e.discover(ctx) })
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(l, "", "") }()
	e.log.Info("kube-enforcer serving the admission webhook", "addr", l.Addr().String(), "server", cfg.Server)
	select {
	case <-ctx.Done():
	case err = <-served:
		cancel()
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	srv.Shutdown(sctx)
	scancel()
	wg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("kube-enforcer: webhook: %w", err)
	}
	return nil
}

// check validates cfg and fills its defaults.
func check(cfg *Config) error {
	switch {
	case cfg.Kube == nil:
		return errors.New("kube-enforcer: no Kubernetes client")
	case cfg.Cluster == "":
		return errors.New("kube-enforcer: no cluster name")
	case cfg.Server == "" || cfg.Token == "":
		return errors.New("kube-enforcer: the server URL and an API token are required")
	case cfg.StateDir == "":
		return errors.New("kube-enforcer: no state directory")
	case cfg.Listener == nil && cfg.WebhookAddr == "":
		return errors.New("kube-enforcer: no webhook address")
	case (cfg.CertFile == "") != (cfg.KeyFile == ""):
		return errors.New("kube-enforcer: give both the webhook certificate and key files, or neither")
	case cfg.CertFile == "" && cfg.Service == "" && len(cfg.DNSNames) == 0 && len(cfg.IPs) == 0:
		return errors.New("kube-enforcer: the webhook certificate needs the Service (name.namespace), DNS names or IPs")
	}
	if err := cfg.Admission.Validate(); err != nil {
		return fmt.Errorf("kube-enforcer: admission configuration: %w", err)
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.CertCheckInterval <= 0 {
		cfg.CertCheckInterval = DefaultCertCheckInterval
	}
	if cfg.EventQueue <= 0 {
		cfg.EventQueue = DefaultEventQueue
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// serving returns the webhook's TLS configuration and the loop that keeps
// its certificate (and the CA bundle in the webhook configurations)
// current.
func (e *enforcer) serving() (*tls.Config, func(context.Context), error) {
	cfg := e.cfg
	if cfg.CertFile != "" {
		var cur atomic.Pointer[tls.Certificate]
		load := func() error {
			c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
			if err != nil {
				return fmt.Errorf("kube-enforcer: webhook certificate %s: %w", cfg.CertFile, err)
			}
			cur.Store(&c)
			return nil
		}
		if err := load(); err != nil {
			return nil, nil, err
		}
		loop := func(ctx context.Context) {
			t := time.NewTicker(cfg.CertCheckInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := load(); err != nil {
						e.log.Warn("keeping the previous webhook certificate", "err", err)
					}
				}
			}
		}
		return &tls.Config{MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cur.Load(), nil }}, loop, nil
	}
	m, err := webhookcert.New(webhookcert.Config{Service: cfg.Service, Namespace: cfg.Namespace, DNSNames: cfg.DNSNames, IPs: cfg.IPs,
		ValidatingWebhook: cfg.ValidatingWebhook, MutatingWebhook: cfg.MutatingWebhook})
	if err != nil {
		return nil, nil, fmt.Errorf("kube-enforcer: webhook certificate: %w", err)
	}
	loop := func(ctx context.Context) {
		m.Run(ctx, cfg.Kube, cfg.CertCheckInterval, func(err error) { e.log.Warn("webhook certificate", "err", err) })
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: m.GetCertificate}, loop, nil
}

// rebuild makes the admission handler with the bundle's bypass
// namespaces added to the configuration's.
func (e *enforcer) rebuild() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.build == nil {
		return nil // not started yet: Run builds the first handler
	}
	bypass := e.bundleBypass
	if e.handler.Load() != nil && slices.Equal(bypass, e.bypass) {
		return nil
	}
	h, err := e.build(bypass)
	if err != nil {
		return err
	}
	e.handler.Store(h)
	e.bypass = bypass
	return nil
}
