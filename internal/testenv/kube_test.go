package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestKubeAPIServer(t *testing.T) {
	k := KubeAPIServer(t)
	if again := KubeAPIServer(t); again != k {
		t.Fatalf("second call started another API server: %+v vs %+v", again, k)
	}

	// The admin token works over TLS verified with CAFile.
	caPEM, err := os.ReadFile(k.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s holds no certificate", k.CAFile)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, tc := range []struct {
		token string
		want  int
	}{{k.Token, http.StatusOK}, {"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}} {
		req, _ := http.NewRequest(http.MethodGet, k.URL+"/api/v1/namespaces", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET /api/v1/namespaces with token %q: %s, want %d", tc.token, resp.Status, tc.want)
		}
	}

	// kubectl works with the kubeconfig, and pods are admitted without
	// service accounts existing.
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(k.Kubectl, append([]string{"--kubeconfig", k.Kubeconfig}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := kubectl("get", "namespaces", "-o", "name"); !strings.Contains(out, "namespace/kube-system") {
		t.Errorf("kubectl get namespaces: %q lacks kube-system", out)
	}
	kubectl("create", "namespace", "testenv-kube")
	kubectl("-n", "testenv-kube", "run", "p", "--image=registry.example/app:1", "--restart=Never")
	if out := kubectl("-n", "testenv-kube", "get", "pod", "p", "-o", "jsonpath={.status.phase}"); out != "Pending" {
		t.Errorf("pod phase %q, want Pending (no nodes)", out)
	}
	if out := kubectl("auth", "can-i", "create", "validatingwebhookconfigurations"); !strings.HasSuffix(strings.TrimSpace(out), "yes") {
		t.Errorf("admin cannot create webhook configurations: %q", out)
	}
}
