package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKubeEnforcerFlags checks that bad flags give an error naming the
// flag, and that good ones give the configuration.
func TestKubeEnforcerFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	token := write("token", "mamori_abc_def\n")
	empty := write("empty", "\n")
	enroll := write("enroll", "enroll-secret")
	badCA := write("ca.pem", "not a certificate")
	badConfig := write("admission.yaml", "mode: sometimes\n")
	goodConfig := write("good.yaml", "mode: audit\n")
	kubeconfig := write("kubeconfig", `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`)
	good := func() kubeEnforcerFlags {
		return kubeEnforcerFlags{kubeconfig: kubeconfig, cluster: "prod", webhookAddr: ":8443", service: "mamori-kube-enforcer.mamori",
			server: "https://console.example:8443", tokenFile: token, enrollFile: enroll, stateDir: dir, logFormat: "json"}
	}
	tests := []struct {
		name    string
		change  func(*kubeEnforcerFlags)
		wantErr string
	}{
		{"good", func(*kubeEnforcerFlags) {}, ""},
		{"audit config", func(f *kubeEnforcerFlags) { f.config = goodConfig }, ""},
		{"no server", func(f *kubeEnforcerFlags) { f.server = "" }, "--server"},
		{"plain http server", func(f *kubeEnforcerFlags) { f.server = "http://console.example" }, "--server"},
		{"no token", func(f *kubeEnforcerFlags) { f.tokenFile = "" }, "--token-file"},
		{"missing token file", func(f *kubeEnforcerFlags) { f.tokenFile = filepath.Join(dir, "nope") }, "--token-file"},
		{"empty token", func(f *kubeEnforcerFlags) { f.tokenFile = empty }, "is empty"},
		{"bad service", func(f *kubeEnforcerFlags) { f.service = "mamori" }, "--service"},
		{"bad ip", func(f *kubeEnforcerFlags) { f.webhookIPs = []string{"300.1.1.1"} }, "--webhook-ip"},
		{"bad ca", func(f *kubeEnforcerFlags) { f.serverCA = badCA }, "--server-ca"},
		{"bad config", func(f *kubeEnforcerFlags) { f.config = badConfig }, "--config"},
		{"bad kubeconfig", func(f *kubeEnforcerFlags) { f.kubeconfig = badCA }, "--kubeconfig"},
		{"bad log format", func(f *kubeEnforcerFlags) { f.logFormat = "xml" }, "--log-format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fl := good()
			tc.change(&fl)
			cfg, err := fl.enforcerConfig()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Token != "mamori_abc_def" || cfg.EnrollmentToken != "enroll-secret" || cfg.Service != "mamori-kube-enforcer" ||
				cfg.Namespace != "mamori" || cfg.Kube == nil || cfg.Cluster != "prod" {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}

// TestKubeEnforcerChartArgs parses the arguments the Helm chart
// (deploy/helm/mamori/templates/kube-enforcer.yaml) gives the command.
func TestKubeEnforcerChartArgs(t *testing.T) {
	args := []string{"--server=https://mamori-server.mamori.svc:8443", "--server-ca=/etc/mamori/server-ca/ca.crt",
		"--token-file=/etc/mamori/token/token", "--enrollment-token-file=/etc/mamori/enrollment/token", "--cluster=kubernetes",
		"--webhook-addr=0.0.0.0:8443", "--webhook-cert=/etc/mamori/webhook/tls.crt", "--webhook-key=/etc/mamori/webhook/tls.key",
		"--webhook-configuration=mamori-kube-enforcer", "--state-dir=/var/lib/mamori-kube-enforcer"}
	cmd := newKubeEnforcerCmd()
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	for _, a := range args {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if got := cmd.Flags().Lookup(name).Value.String(); got != value {
			t.Errorf("--%s = %q, want %q", name, got, value)
		}
	}
}
