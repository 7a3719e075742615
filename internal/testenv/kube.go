package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// KubeVersion is the Kubernetes version scripts/build-kube.sh builds by
// default and KubeAPIServer looks for.
const KubeVersion = "v1.37.2"

// Kube is a real kube-apiserver (with its etcd) running on 127.0.0.1.
type Kube struct {
	// URL is the API server's base URL, https://127.0.0.1:PORT.
	URL string
	// Token is a bearer token of an administrator (group system:masters).
	Token string
	// CAFile is the PEM file of the CA that signed the serving certificate.
	CAFile string
	// Kubeconfig is the path of a kubeconfig file for kubectl and client-go
	// (server URL, CA file and Token).
	Kubeconfig string
	// Kubectl is the path of the kubectl binary built by
	// scripts/build-kube.sh, of the same version as the API server.
	Kubectl string
}

// KubeBinDir returns the directory holding kube-apiserver, etcd and kubectl
// built by scripts/build-kube.sh: $MAMORI_KUBE_BIN, else
// ${MAMORI_KUBE_CACHE:-~/.cache/mamori-kube}/KubeVersion/bin.
func KubeBinDir() string {
	if d := os.Getenv("MAMORI_KUBE_BIN"); d != "" {
		return d
	}
	cache := os.Getenv("MAMORI_KUBE_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "mamori-kube")
	}
	return filepath.Join(cache, KubeVersion, "bin")
}

var kubeOnce struct {
	sync.Once
	kube *Kube
	err  error
}

// KubeAPIServer returns the API server shared by every test of the test
// binary, starting it (etcd, then kube-apiserver with RBAC, a static token
// file and an administrator token) on the first call. The API server has
// no controller manager, scheduler or nodes: pods stay Pending, the
// ServiceAccount admission plugin is disabled (no token controller creates
// default service accounts), and privileged containers are allowed so
// admission webhooks see them. The processes live as long as the test
// binary: they are started with a parent-death signal (SIGKILL) so they
// stop when the test process exits, however it exits; their data is in a
// temporary directory removed by the next run. Tests share the cluster, so
// each should work in its own namespace. Without the binaries (see
// KubeBinDir and scripts/build-kube.sh) the test is reported Missing.
func KubeAPIServer(t testing.TB) *Kube {
	t.Helper()
	bin := KubeBinDir()
	for _, name := range []string{"etcd", "kube-apiserver", "kubectl"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			Missing(t, "Kubernetes %s binaries in %s (run scripts/build-kube.sh): %v", KubeVersion, bin, err)
		}
	}
	kubeOnce.Do(func() { kubeOnce.kube, kubeOnce.err = startKube(bin) })
	if kubeOnce.err != nil {
		t.Fatalf("starting the test Kubernetes API server: %v", kubeOnce.err)
	}
	return kubeOnce.kube
}

// kubeDirPrefix names the temporary directories of test clusters; the
// suffix is the PID of the test process that owns it.
const kubeDirPrefix = "mamori-kube-"

// removeStaleKubeDirs removes the directories of test clusters whose test
// process is gone.
func removeStaleKubeDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), kubeDirPrefix+"*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), kubeDirPrefix))
		if err != nil {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
}

// startKube starts etcd and kube-apiserver from bin and waits until the
// API server is ready.
func startKube(bin string) (*Kube, error) {
	removeStaleKubeDirs()
	dir := filepath.Join(os.TempDir(), kubeDirPrefix+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caFile, certFile, keyFile, err := writeKubePKI(dir)
	if err != nil {
		return nil, fmt.Errorf("creating certificates in %s: %w", dir, err)
	}
	saKey := filepath.Join(dir, "sa.key")
	if err := writeRSAKey(saKey); err != nil {
		return nil, err
	}
	token := "admin-" + randomHexN(16)
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(token+`,mamori-admin,mamori-admin,"system:masters"`+"\n"), 0o600); err != nil {
		return nil, err
	}

	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	etcdLog := filepath.Join(dir, "etcd.log")
	etcdDone, err := startChild(etcdLog, filepath.Join(bin, "etcd"),
		"--name=mamori-test",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=mamori-test="+peerURL,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(etcdURL+"/health", "", nil, etcdDone, 30*time.Second); err != nil {
		return nil, fmt.Errorf("etcd did not become healthy: %w\n%s", err, tail(etcdLog))
	}

	url := fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	apiLog := filepath.Join(dir, "kube-apiserver.log")
	apiDone, err := startChild(apiLog, filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none", // a loopback address cannot be an endpoint
		"--secure-port="+strconv.Itoa(ports[2]),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--tls-cert-file="+certFile,
		"--tls-private-key-file="+keyFile,
		"--client-ca-file="+caFile,
		"--token-auth-file="+tokenFile,
		"--authorization-mode=RBAC",
		"--anonymous-auth=false",
		"--allow-privileged=true",
		"--disable-admission-plugins=ServiceAccount",
		"--service-cluster-ip-range=192.0.2.0/24",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saKey,
		"--service-account-signing-key-file="+saKey,
		"--v=1",
	)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	if err := waitHTTP(url+"/readyz", token, pool, apiDone, 90*time.Second); err != nil {
		return nil, fmt.Errorf("kube-apiserver did not become ready: %w\n%s", err, tail(apiLog))
	}

	kubeconfig := filepath.Join(dir, "kubeconfig")
	conf := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: mamori-test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: mamori-admin
  user:
    token: %s
contexts:
- name: mamori-test
  context:
    cluster: mamori-test
    user: mamori-admin
    namespace: default
current-context: mamori-test
`, url, caFile, token)
	if err := os.WriteFile(kubeconfig, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return &Kube{URL: url, Token: token, CAFile: caFile, Kubeconfig: kubeconfig, Kubectl: filepath.Join(bin, "kubectl")}, nil
}

// childStarter runs every child process start on one OS thread that never
// exits: the parent-death signal fires when the thread that started a child
// exits, so the thread must live as long as the test process.
var childStarter struct {
	sync.Once
	reqs chan func()
}

// startChild starts a long-running child process that is killed when the
// test process exits, with its output written to logFile. The returned
// channel is closed if the process exits.
func startChild(logFile, path string, args ...string) (<-chan struct{}, error) {
	childStarter.Do(func() {
		childStarter.reqs = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives on
			for f := range childStarter.reqs {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	done := make(chan struct{})
	childStarter.reqs <- func() {
		log, err := os.Create(logFile)
		if err != nil {
			errc <- err
			return
		}
		defer log.Close()
		cmd := exec.Command(path, args...)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			errc <- fmt.Errorf("starting %s: %w", path, err)
			return
		}
		go func() {
			cmd.Wait()
			close(done)
		}()
		errc <- nil
	}
	return done, <-errc
}

// waitHTTP polls url until it answers 200, the process serving it exits
// (exited is closed) or the timeout passes.
func waitHTTP(url, token string, pool *x509.CertPool, exited <-chan struct{}, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("the process exited (last error: %v)", last)
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return last
}

// tail returns the last lines of a log file for an error message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return path + ":\n" + string(b)
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// randomHexN returns n random bytes in hex.
func randomHexN(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// writeKubePKI writes a CA and a serving certificate for 127.0.0.1 and
// localhost signed by it, and returns the file names.
func writeKubePKI(dir string) (caFile, certFile, keyFile string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mamori-test-kube-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(192, 0, 2, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", "", err
	}
	caFile = filepath.Join(dir, "ca.crt")
	certFile = filepath.Join(dir, "apiserver.crt")
	keyFile = filepath.Join(dir, "apiserver.key")
	for _, f := range []struct {
		name, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.name, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return "", "", "", err
		}
	}
	return caFile, certFile, keyFile, nil
}

// writeRSAKey writes a new RSA private key (the service-account signing
// key) as PEM to path.
func writeRSAKey(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
}
