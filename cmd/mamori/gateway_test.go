package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/enforcer/fleetclient"
	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/fleete2e"
)

// gatewayCmd is a `mamori gateway` running in the background.
type gatewayCmd struct {
	addr string
	out  *syncBuffer
	stop func() error
}

// startGatewayCmd runs `mamori gateway args...` until stop or the end of
// the test, once it printed its address.
func startGatewayCmd(t *testing.T, args ...string) *gatewayCmd {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, logs syncBuffer
	cmd := newRoot()
	cmd.SetArgs(append([]string{"gateway", "--listen", "127.0.0.1:0", "--log-format", "text", "--grace-period", "1s"}, args...))
	cmd.SetOut(&out)
	cmd.SetErr(&logs)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	stopped := false
	var result error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() { stop() })
	re := regexp.MustCompile(`mamori gateway: (127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return &gatewayCmd{addr: m[1], out: &logs, stop: stop}
		}
		select {
		case err := <-done:
			stopped, result = true, err
			t.Fatalf("gateway stopped: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no address printed:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeFile writes data to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
	return p
}

// servedSerial returns the serial number of the certificate the gateway
// at addr serves, verified by the fleet CA for 127.0.0.1.
func servedSerial(t *testing.T, addr string, fleetCA []byte) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(fleetCA)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatalf("TLS to the gateway: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// enrollThrough runs an enforcer client through the gateway at addr until
// the server has seen its heartbeat.
func enrollThrough(t *testing.T, c *fleete2e.Console, addr string, fleetCA []byte, token, host string) string {
	t.Helper()
	cl, err := fleetclient.New(fleetclient.Config{StateDir: t.TempDir(), Gateways: []string{addr}, BootstrapCA: fleetCA, Token: token,
		Hostname: host, Version: "test", HeartbeatInterval: 100 * time.Millisecond, MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond, Logger: fleete2e.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("enforcer: %v", err)
		}
	}()
	fleete2e.Eventually(t, 20*time.Second, "enforcer heartbeat through the gateway command", func() bool {
		return cl.AgentID() != "" && !c.Agent(cl.AgentID()).LastSeen.IsZero()
	})
	return cl.AgentID()
}

// TestGatewayCommandObtainsCertificate runs `mamori gateway` against a real
// console: it obtains its serving certificate from the fleet CA, keeps its
// key in the state directory (0600), relays an enforcer's enrollment and
// heartbeats, stops gracefully, and reuses the stored certificate on the
// next start.
func TestGatewayCommandObtainsCertificate(t *testing.T) {
	c := fleete2e.Start(t)
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "token", []byte(c.GatewayToken("gw")+"\n"))
	serverCA := writeFile(t, dir, "server-ca.pem", c.CAPEM)
	state := filepath.Join(dir, "state")
	args := []string{"--server", c.URL, "--server-ca", serverCA, "--token-file", tokenFile,
		"--name-host", "127.0.0.1", "--name-host", "GW.Fleet.Test", "--state-dir", state}
	g := startGatewayCmd(t, args...)

	fi, err := os.Stat(filepath.Join(state, gatewayKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	certPEM, err := os.ReadFile(filepath.Join(state, gatewayCertFile))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.DNSNames, []string{"gw.fleet.test"}) || len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].IsLoopback() {
		t.Errorf("certificate names: %v %v", cert.DNSNames, cert.IPAddresses)
	}
	fleetCA, err := os.ReadFile(filepath.Join(state, gatewayCAFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, g.addr, fleetCA); got != cert.SerialNumber.Text(16) {
		t.Errorf("served certificate %s, stored %s", got, cert.SerialNumber.Text(16))
	}
	group := c.CreateGroup("prod", nil)
	id := enrollThrough(t, c, g.addr, fleetCA, group, "cmd-host")
	if a := c.Agent(id); a.Hostname != "cmd-host" || a.Kind != fleet.KindEnforcer {
		t.Errorf("agent: %+v", a)
	}

	start := time.Now()
	if err := g.stop(); err != nil {
		t.Errorf("graceful stop: %v\n%s", err, g.out.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %s", d)
	}
	// The next start serves the stored certificate.
	g2 := startGatewayCmd(t, args...)
	if got := servedSerial(t, g2.addr, fleetCA); got != cert.SerialNumber.Text(16) {
		t.Errorf("after a restart the gateway serves %s, not the stored %s", got, cert.SerialNumber.Text(16))
	}
}

// TestGatewayCommandRenews runs the gateway against a console whose clock
// is 61 days behind, so that every certificate it signs is past two thirds of
// its 90 days: the gateway keeps renewing it and switches certificates on
// the same socket, and enforcers' connections keep working.
func TestGatewayCommandRenews(t *testing.T) {
	old := minRefresh
	minRefresh = 200 * time.Millisecond
	t.Cleanup(func() { minRefresh = old })
	// The clock goes back once the token exists (a session needs the
	// real time).
	var skew atomic.Int64
	c := fleete2e.Start(t, fleete2e.WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "token", []byte(c.GatewayToken("gw")))
	skew.Store(int64(-61 * 24 * time.Hour))
	serverCA := writeFile(t, dir, "server-ca.pem", c.CAPEM)
	g := startGatewayCmd(t, "--server", c.URL, "--server-ca", serverCA, "--token-file", tokenFile,
		"--name-host", "127.0.0.1", "--state-dir", filepath.Join(dir, "state"))
	fleetCA, err := os.ReadFile(filepath.Join(dir, "state", gatewayCAFile))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	fleete2e.Eventually(t, 20*time.Second, "three certificates served in turn", func() bool {
		seen[servedSerial(t, g.addr, fleetCA)] = true
		return len(seen) >= 3
	})
	if !strings.Contains(g.out.String(), "serving certificate replaced") {
		t.Errorf("no replacement logged:\n%s", g.out.String())
	}
	if err := g.stop(); err != nil {
		t.Error(err)
	}
}

// TestGatewayCommandOperatorCertificate runs the gateway the way the Helm
// chart does, with --tls-cert, --tls-key and --client-ca: an enforcer
// enrolls through it, and replacing the files (a rotated secret) makes the
// gateway serve the new certificate.
func TestGatewayCommandOperatorCertificate(t *testing.T) {
	old := fileCheckInterval
	fileCheckInterval = 100 * time.Millisecond
	t.Cleanup(func() { fileCheckInterval = old })
	c := fleete2e.Start(t)
	token := c.GatewayToken("gw")
	dir := t.TempDir()
	write := func() string {
		cert, ca := c.GatewayCertificate(token, "127.0.0.1")
		key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, "tls.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}))
		writeFile(t, dir, "tls.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}))
		writeFile(t, dir, "ca.crt", ca)
		return cert.Leaf.SerialNumber.Text(16)
	}
	first := write()
	tokenFile := writeFile(t, dir, "token", []byte(token))
	serverCA := writeFile(t, dir, "server-ca.pem", c.CAPEM)
	g := startGatewayCmd(t, "--server", c.URL, "--server-ca", serverCA, "--token-file", tokenFile,
		"--tls-cert", filepath.Join(dir, "tls.crt"), "--tls-key", filepath.Join(dir, "tls.key"), "--client-ca", filepath.Join(dir, "ca.crt"),
		"--state-dir", filepath.Join(dir, "state"))
	fleetCA, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, g.addr, fleetCA); got != first {
		t.Fatalf("served %s, want the operator's %s", got, first)
	}
	enrollThrough(t, c, g.addr, fleetCA, c.CreateGroup("prod", nil), "helm-host")
	second := write()
	fleete2e.Eventually(t, 10*time.Second, "the rotated certificate served", func() bool { return servedSerial(t, g.addr, fleetCA) == second })
	if err := g.stop(); err != nil {
		t.Error(err)
	}
}

// TestGatewayCommandFlags checks that bad flag combinations are refused
// with a message naming the flag, before anything listens.
func TestGatewayCommandFlags(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, dir, "token", []byte("mamori-token"))
	notPEM := writeFile(t, dir, "junk.pem", []byte("not a certificate"))
	t.Setenv("MAMORI_TOKEN", "")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no server", []string{"--token-file", token, "--state-dir", dir}, `"server" not set`},
		{"no token", []string{"--server", "https://console.test", "--state-dir", dir}, "no API token"},
		{"missing token file", []string{"--server", "https://console.test", "--token-file", filepath.Join(dir, "none"), "--state-dir", dir}, "--token-file"},
		{"plain HTTP", []string{"--server", "http://console.test", "--token-file", token, "--state-dir", dir}, "--server"},
		{"bad server CA", []string{"--server", "https://console.test", "--server-ca", notPEM, "--token-file", token, "--state-dir", dir}, "--server-ca"},
		{"no state dir", []string{"--server", "https://console.test", "--token-file", token}, "--state-dir"},
		{"cert without key", []string{"--server", "https://console.test", "--token-file", token, "--tls-cert", notPEM}, "go together"},
		{"names with operator cert", []string{"--server", "https://console.test", "--token-file", token, "--tls-cert", notPEM, "--tls-key", notPEM, "--client-ca", notPEM, "--name-host", "gw"}, "--name-host"},
		{"bad operator cert", []string{"--server", "https://console.test", "--token-file", token, "--tls-cert", notPEM, "--tls-key", notPEM, "--client-ca", notPEM}, "--tls-cert"},
		{"empty name", []string{"--server", "https://console.test", "--token-file", token, "--state-dir", dir, "--name-host", " "}, "empty name"},
	} {
		cmd := newRoot()
		cmd.SetArgs(append([]string{"gateway", "--listen", "127.0.0.1:0"}, tc.args...))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cmd.ExecuteContext(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
