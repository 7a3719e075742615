package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mamorisec/mamori/internal/fleet/restclient"
	"github.com/mamorisec/mamori/internal/gateway"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/server"
)

// Files the gateway keeps in its state directory.
const (
	gatewayKeyFile  = "gateway.key"
	gatewayCertFile = "gateway.crt"
	gatewayCAFile   = "fleet-ca.crt"
)

// Timing of certificate refreshes; variables so tests can shorten them.
var (
	// fileCheckInterval is how often operator-provided certificate files
	// are checked for changes (a rotated Kubernetes secret).
	fileCheckInterval = time.Minute
	// minRefresh is the least time between two certificate refreshes, and
	// the first wait after a failed one; maxRefreshBackoff the longest
	// wait after failures.
	minRefresh        = 30 * time.Second
	maxRefreshBackoff = 10 * time.Minute
)

type gatewayFlags struct {
	listen, serverURL, serverCA, tokenFile string
	hosts                                  []string
	tlsCert, tlsKey, clientCA              string
	stateDir                               string
	grace                                  time.Duration
	logFormat                              string
}

func newGatewayCmd() *cobra.Command {
	var fl gatewayFlags
	cmd := &cobra.Command{
		Use:   "gateway --server URL --token-file FILE --state-dir DIR",
		Short: "Run a fleet gateway: enforcers' gRPC/mTLS endpoint, relaying to the console server",
		Long: `Serve the fleet protocol to enforcers and kube-enforcers over mutual TLS and
relay every call to the console server's fleet API with an API token whose role
is Gateway, bound on the Global scope (--token-file or $MAMORI_TOKEN).

The serving certificate comes from one of two places:

  * By default the gateway generates its key in --state-dir and has the
    server's fleet CA sign it for the names in --name-host (DNS names or IP
    addresses agents use to reach it; default: this host's name and the
    --listen address when it is specific). It renews the certificate before
    it expires and switches to it without closing its socket.
  * --tls-cert, --tls-key and --client-ca give an operator-provided
    certificate (signed by the fleet CA, so agents trust it) and the fleet CA
    certificate. The files are checked every minute and reloaded when they
    change.

SIGTERM or SIGINT stops the gateway gracefully: it reports NOT_SERVING, ends
policy watches so agents move to another gateway, and lets calls in flight
finish for up to --grace-period. See docs/gateway.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lh slog.Handler = slog.NewJSONHandler(cmd.ErrOrStderr(), nil)
			if fl.logFormat == "text" {
				lh = slog.NewTextHandler(cmd.ErrOrStderr(), nil)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runGateway(ctx, &fl, slog.New(lh), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.listen, "listen", ":9443", "address to serve the fleet protocol on")
	f.StringVar(&fl.serverURL, "server", "", "console server URL (https://...)")
	f.StringVar(&fl.serverCA, "server-ca", "", "PEM CA certificate verifying the console server (default: the system roots)")
	f.StringVar(&fl.tokenFile, "token-file", "", "file holding the gateway's API token (default: $MAMORI_TOKEN)")
	f.StringArrayVar(&fl.hosts, "name-host", nil, "DNS name or IP address to put in the obtained serving certificate (repeatable)")
	f.StringVar(&fl.tlsCert, "tls-cert", "", "operator-provided PEM serving certificate (instead of obtaining one)")
	f.StringVar(&fl.tlsKey, "tls-key", "", "key of --tls-cert")
	f.StringVar(&fl.clientCA, "client-ca", "", "PEM fleet CA certificate verifying enforcers (with --tls-cert)")
	f.StringVar(&fl.stateDir, "state-dir", "", "directory keeping the obtained key and certificate (required without --tls-cert)")
	f.DurationVar(&fl.grace, "grace-period", gateway.DefaultGracePeriod, "how long a stopping gateway lets calls in flight finish")
	f.StringVar(&fl.logFormat, "log-format", "json", "log format: json or text")
	_ = cmd.MarkFlagRequired("server")
	return cmd
}

// runGateway serves until ctx ends. It prints "mamori gateway: ADDR" to
// out once it listens.
func runGateway(ctx context.Context, fl *gatewayFlags, log *slog.Logger, out io.Writer) error {
	src, be, err := gatewaySetup(fl)
	if err != nil {
		return err
	}
	cur, err := src.initial(ctx)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", fl.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", fl.listen, err)
	}
	shared := newSharedListener(lis)
	defer shared.Close()
	start := func(sc servingCert) (*runningGW, error) {
		g, err := gateway.New(gateway.Config{Listener: shared.handoff(), Certificate: sc.cert, ClientCA: sc.clientCA,
			Backend: be, GracePeriod: fl.grace, Logger: log})
		if err != nil {
			return nil, err
		}
		return runGW(g), nil
	}
	gw, err := start(cur)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "mamori gateway: %s\n", lis.Addr())
	log.Info("gateway serving", "addr", lis.Addr().String(), "certificate", cur.id, "notAfter", cur.cert.Leaf.NotAfter)
	failures := 0
	for {
		timer := time.NewTimer(time.Until(cur.refresh))
		select {
		case <-ctx.Done():
			timer.Stop()
			gw.stop()
			return nil
		case err := <-gw.done:
			timer.Stop()
			return err
		case <-timer.C:
		}
		next, err := src.refresh(ctx, cur)
		if ctx.Err() != nil {
			gw.stop()
			return nil
		}
		if err != nil {
			wait := min(minRefresh<<min(failures, 16), maxRefreshBackoff)
			failures++
			log.Error("refreshing the serving certificate", "err", err, "retryIn", wait.String(), "notAfter", cur.cert.Leaf.NotAfter)
			cur.refresh = time.Now().Add(wait)
			continue
		}
		failures = 0
		if next.id == cur.id {
			cur = next
			continue
		}
		// The new gateway takes connections from the shared socket
		// before the old one stops: no connection is refused.
		ngw, err := start(next)
		if err != nil {
			log.Error("starting the gateway with the new certificate", "err", err)
			cur.refresh = time.Now().Add(minRefresh)
			continue
		}
		gw.stop()
		gw, cur = ngw, next
		log.Info("serving certificate replaced", "certificate", cur.id, "notAfter", cur.cert.Leaf.NotAfter)
	}
}

// gatewaySetup checks the flags and returns the certificate source and the
// backend.
func gatewaySetup(fl *gatewayFlags) (certSource, *restclient.Client, error) {
	token := os.Getenv("MAMORI_TOKEN")
	if fl.tokenFile != "" {
		b, err := os.ReadFile(fl.tokenFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, nil, errors.New("no API token: set --token-file or $MAMORI_TOKEN (a token of a user with the Gateway role on Global)")
	}
	var serverCA *x509.CertPool
	if fl.serverCA != "" {
		var err error
		if serverCA, err = readPool(fl.serverCA); err != nil {
			return nil, nil, fmt.Errorf("--server-ca: %w", err)
		}
	}
	be, err := restclient.New(restclient.Config{URL: fl.serverURL, Token: token, CA: serverCA})
	if err != nil {
		return nil, nil, fmt.Errorf("--server: %w", err)
	}
	if fl.tlsCert != "" || fl.tlsKey != "" || fl.clientCA != "" {
		if fl.tlsCert == "" || fl.tlsKey == "" || fl.clientCA == "" {
			return nil, nil, errors.New("--tls-cert, --tls-key and --client-ca go together")
		}
		if len(fl.hosts) > 0 {
			return nil, nil, errors.New("--name-host names a certificate the gateway obtains; it cannot be used with --tls-cert")
		}
		return &fileSource{cert: fl.tlsCert, key: fl.tlsKey, ca: fl.clientCA}, be, nil
	}
	if fl.stateDir == "" {
		return nil, nil, errors.New("--state-dir is required to keep the gateway's key (or give --tls-cert, --tls-key and --client-ca)")
	}
	hosts := fl.hosts
	if len(hosts) == 0 {
		hosts = defaultGatewayHosts(fl.listen)
	}
	for i, h := range hosts {
		hosts[i] = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if hosts[i] == "" {
			return nil, nil, errors.New("--name-host: empty name")
		}
	}
	if len(hosts) > server.MaxGatewayHosts {
		return nil, nil, fmt.Errorf("--name-host: %d names, at most %d", len(hosts), server.MaxGatewayHosts)
	}
	cli, err := newCertClient(fl.serverURL, token, serverCA)
	if err != nil {
		return nil, nil, err
	}
	return &fetchSource{dir: fl.stateDir, hosts: hosts, client: cli}, be, nil
}

// defaultGatewayHosts is this host's name and the listen address's host
// when it is specific.
func defaultGatewayHosts(listen string) []string {
	var hosts []string
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// readPool reads a PEM file of CA certificates.
func readPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return p, nil
}

// servingCert is the gateway's certificate, the CA its clients' certificates
// chain to, and when to look for a newer one.
type servingCert struct {
	cert     tls.Certificate
	clientCA *x509.CertPool
	refresh  time.Time
	// id tells certificates apart: a refresh with the same id changed
	// nothing.
	id string
}

// certSource supplies the serving certificate.
type certSource interface {
	// initial returns the certificate to start with.
	initial(ctx context.Context) (servingCert, error)
	// refresh returns cur with a later refresh time when nothing has to
	// change, else the new certificate.
	refresh(ctx context.Context, cur servingCert) (servingCert, error)
}

// fileSource reads an operator-provided certificate, key and CA, and
// notices when the files change.
type fileSource struct{ cert, key, ca string }

func (s *fileSource) initial(context.Context) (servingCert, error) { return s.load() }

func (s *fileSource) refresh(_ context.Context, cur servingCert) (servingCert, error) {
	next, err := s.load()
	if err != nil {
		return cur, err
	}
	if next.id == cur.id {
		cur.refresh = next.refresh
		return cur, nil
	}
	return next, nil
}

func (s *fileSource) load() (servingCert, error) {
	h := sha256.New()
	var data [3][]byte
	for i, p := range []string{s.cert, s.key, s.ca} {
		b, err := os.ReadFile(p)
		if err != nil {
			return servingCert{}, err
		}
		data[i] = b
		h.Write(b)
	}
	c, err := tls.X509KeyPair(data[0], data[1])
	if err != nil {
		return servingCert{}, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", s.cert, s.key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data[2]) {
		return servingCert{}, fmt.Errorf("--client-ca %s holds no PEM certificate", s.ca)
	}
	if time.Now().After(c.Leaf.NotAfter) {
		return servingCert{}, fmt.Errorf("--tls-cert %s expired at %s", s.cert, c.Leaf.NotAfter.Format(time.RFC3339))
	}
	return servingCert{cert: c, clientCA: pool, refresh: time.Now().Add(fileCheckInterval), id: fmt.Sprintf("file:%x", h.Sum(nil)[:8])}, nil
}

// fetchSource keeps a key and a certificate signed by the fleet CA in a
// state directory, and has the server renew the certificate from its
// RenewFrom time on.
type fetchSource struct {
	dir    string
	hosts  []string
	client *certClient
}

func (s *fetchSource) initial(ctx context.Context) (servingCert, error) {
	if sc, err := s.stored(); err == nil {
		return sc, nil
	}
	// Until the server answers (it may be starting too), transient
	// failures are retried; a refusal is final.
	wait := time.Second
	for {
		sc, err := s.obtain(ctx)
		var se *restclient.StatusError
		if err == nil || (errors.As(err, &se) && se.Status < 500 && se.Status != http.StatusTooManyRequests) {
			return sc, err
		}
		select {
		case <-ctx.Done():
			return servingCert{}, fmt.Errorf("obtaining the serving certificate: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

func (s *fetchSource) refresh(ctx context.Context, _ servingCert) (servingCert, error) {
	return s.obtain(ctx)
}

// stored returns the certificate in the state directory when it is valid,
// for the configured names and its key matches; its refresh time is its
// RenewFrom (at once when that has passed).
func (s *fetchSource) stored() (servingCert, error) {
	certPEM, err := os.ReadFile(filepath.Join(s.dir, gatewayCertFile))
	if err != nil {
		return servingCert{}, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(s.dir, gatewayKeyFile))
	if err != nil {
		return servingCert{}, err
	}
	caPEM, err := os.ReadFile(filepath.Join(s.dir, gatewayCAFile))
	if err != nil {
		return servingCert{}, err
	}
	sc, err := s.certificate(certPEM, keyPEM, caPEM)
	if err != nil {
		return servingCert{}, err
	}
	leaf := sc.cert.Leaf
	var names []string
	names = append(names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	for _, h := range s.hosts {
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		if !slices.Contains(names, h) {
			return servingCert{}, fmt.Errorf("stored certificate lacks the name %s", h)
		}
	}
	if time.Now().After(leaf.NotAfter.Add(-minRefresh)) {
		return servingCert{}, errors.New("stored certificate expired")
	}
	return sc, nil
}

// certificate builds a servingCert from PEM data, refreshed from two
// thirds of its life on (at the least minRefresh from now).
func (s *fetchSource) certificate(certPEM, keyPEM, caPEM []byte) (servingCert, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return servingCert{}, fmt.Errorf("serving certificate in %s: %w", s.dir, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return servingCert{}, fmt.Errorf("fleet CA in %s: no PEM certificate", s.dir)
	}
	leaf := c.Leaf
	refresh := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 2 / 3)
	if earliest := time.Now().Add(minRefresh); refresh.Before(earliest) {
		refresh = earliest
	}
	return servingCert{cert: c, clientCA: pool, refresh: refresh, id: leaf.SerialNumber.Text(16)}, nil
}

// obtain generates a key, has the server sign a certificate for it and
// stores both (the key first, each written atomically).
func (s *fetchSource) obtain(ctx context.Context) (servingCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return servingCert{}, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: s.hosts[0]}}, key)
	if err != nil {
		return servingCert{}, err
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	resp, err := s.client.sign(ctx, server.GatewayCertificateRequest{CSR: string(csr), Hosts: s.hosts})
	if err != nil {
		return servingCert{}, fmt.Errorf("obtaining the serving certificate for %s: %w", strings.Join(s.hosts, ", "), err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return servingCert{}, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	sc, err := s.certificate([]byte(resp.Certificate), keyPEM, []byte(resp.CA))
	if err != nil {
		return servingCert{}, err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return servingCert{}, fmt.Errorf("--state-dir: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{gatewayKeyFile, keyPEM, 0o600}, {gatewayCertFile, []byte(resp.Certificate), 0o644}, {gatewayCAFile, []byte(resp.CA), 0o644}} {
		if err := writeFileAtomic(filepath.Join(s.dir, f.name), f.data, f.mode); err != nil {
			return servingCert{}, err
		}
	}
	return sc, nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it
// and renames it over path.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// certClient asks the server to sign gateway certificates.
type certClient struct {
	url   string
	token string
	http  *http.Client
}

func newCertClient(serverURL, token string, ca *x509.CertPool) (*certClient, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--server %q: must be https://host[:port]", serverURL)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca}
	return &certClient{url: strings.TrimSuffix(serverURL, "/") + server.PathGatewayCertificate, token: token,
		http: &http.Client{Transport: tr, Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// sign posts req and returns the signed certificate; a refusal is a
// *restclient.StatusError.
func (c *certClient) sign(ctx context.Context, in server.GatewayCertificateRequest) (server.GatewayCertificate, error) {
	var out server.GatewayCertificate
	body, err := json.Marshal(in)
	if err != nil {
		return out, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	b, err := inventory.ReadAllLimited(resp.Body, 1<<20)
	if err != nil {
		return out, fmt.Errorf("POST %s: reading response: %w", server.PathGatewayCertificate, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &e)
		return out, &restclient.StatusError{Endpoint: server.PathGatewayCertificate, Status: resp.StatusCode, Message: e.Message}
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("POST %s: decoding response: %w", server.PathGatewayCertificate, err)
	}
	return out, nil
}

// runningGW is a gateway serving in the background.
type runningGW struct {
	cancel context.CancelFunc
	// done receives Serve's error, nil after a stop.
	done     chan error
	stopOnce sync.Once
}

func runGW(g *gateway.Gateway) *runningGW {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningGW{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- g.Serve(ctx) }()
	return r
}

// stop stops the gateway gracefully and waits for it.
func (r *runningGW) stop() {
	r.stopOnce.Do(func() {
		r.cancel()
		<-r.done
	})
}

// sharedListener accepts on one socket for a succession of gateways: each
// gets a handoff listener whose Close ends only that gateway's accepting,
// so a gateway replaced for a new certificate never closes the socket.
type sharedListener struct {
	lis   net.Listener
	conns chan net.Conn
	// failed is closed when the socket fails; err says why.
	failed chan struct{}
	err    error
	closed chan struct{}
	once   sync.Once
}

func newSharedListener(lis net.Listener) *sharedListener {
	s := &sharedListener{lis: lis, conns: make(chan net.Conn), failed: make(chan struct{}), closed: make(chan struct{})}
	go s.accept()
	return s
}

func (s *sharedListener) accept() {
	for {
		c, err := s.lis.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.err = err
			close(s.failed)
			return
		}
		select {
		case s.conns <- c:
		case <-s.closed:
			c.Close()
			return
		}
	}
}

// Close closes the socket.
func (s *sharedListener) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.lis.Close()
	})
	return err
}

// handoff returns a new listener taking connections from the socket.
func (s *sharedListener) handoff() net.Listener {
	return &handoffListener{s: s, closed: make(chan struct{})}
}

type handoffListener struct {
	s      *sharedListener
	closed chan struct{}
	once   sync.Once
}

func (h *handoffListener) Accept() (net.Conn, error) {
	select {
	case <-h.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-h.s.conns:
		return c, nil
	case <-h.closed:
		return nil, net.ErrClosed
	case <-h.s.failed:
		return nil, h.s.err
	case <-h.s.closed:
		return nil, net.ErrClosed
	}
}

func (h *handoffListener) Close() error {
	h.once.Do(func() { close(h.closed) })
	return nil
}

func (h *handoffListener) Addr() net.Addr { return h.s.lis.Addr() }
