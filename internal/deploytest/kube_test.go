package deploytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/testenv"
)

// uniqueNamespace returns a namespace name not used before: namespaces are
// never finalized on the test API server (no controller manager), so a
// name cannot be reused within its lifetime.
func uniqueNamespace(base string) string {
	return fmt.Sprintf("%s-%d", base, time.Now().UnixNano()%1e9)
}

// kubectl runs the test API server's kubectl with stdin and returns its
// output, failing the test on error.
func kubectl(t *testing.T, k *testenv.Kube, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(k.Kubectl, append([]string{"--kubeconfig", k.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, errb.String(), out.String())
	}
	return out.String()
}

var crdsOnce sync.Once

// kube returns the shared API server with the OpenShift stand-in CRDs.
func kube(t *testing.T) *testenv.Kube {
	t.Helper()
	helmBin(t)
	k := testenv.KubeAPIServer(t)
	crdsOnce.Do(func() {
		kubectl(t, k, "", "apply", "--server-side", "-f", filepath.Join("testdata", "openshift-crds.yaml"))
		kubectl(t, k, "", "wait", "--for", "condition=established", "--timeout=60s",
			"crd/securitycontextconstraints.security.openshift.io", "crd/routes.route.openshift.io")
	})
	return k
}

// TestServerDryRun has the real API server validate every rendered object
// (schemas, defaults, admission) without storing it.
func TestServerDryRun(t *testing.T) {
	k := kube(t)
	cases := []struct {
		ns     string
		values []string
	}{
		{"dry-default", nil},
		{"dry-postgresql", []string{"postgresql.yaml"}},
		{"dry-all", []string{"all.yaml"}},
		{"dry-openshift", []string{"openshift.yaml"}},
	}
	for _, c := range cases {
		t.Run(c.ns, func(t *testing.T) {
			ns := uniqueNamespace(c.ns)
			out, err := render(t, ns, c.values)
			if err != nil {
				t.Fatal(err)
			}
			kubectl(t, k, "", "create", "namespace", ns)
			t.Cleanup(func() { kubectl(t, k, "", "delete", "namespace", ns, "--wait=false") })
			res := kubectl(t, k, out, "apply", "--server-side", "--dry-run=server", "-f", "-")
			n := len(parseManifests(t, out))
			if got := strings.Count(res, "serverside-applied (server dry run)"); got != n {
				t.Errorf("server dry run applied %d of %d objects:\n%s", got, n, res)
			}
		})
	}
}

// secretsOf reads the data of the release's Secrets from the API server.
func secretsOf(t *testing.T, k *testenv.Kube, ns string) map[string]map[string]string {
	t.Helper()
	var list struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
			Data     map[string]string     `json:"data"`
		} `json:"items"`
	}
	out := kubectl(t, k, "", "get", "secrets", "-n", ns, "-l", "app.kubernetes.io/instance=mamori", "-o", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("kubectl get secrets: %v", err)
	}
	m := map[string]map[string]string{}
	for _, s := range list.Items {
		m[s.Metadata.Name] = s.Data
	}
	return m
}

// TestInstallUpgradeKeepsSecrets installs the chart on the real API server,
// upgrades it and checks that the generated secrets survive the upgrade
// (lookup) while the webhook keeps trusting the kube-enforcer's CA.
func TestInstallUpgradeKeepsSecrets(t *testing.T) {
	k := kube(t)
	ns := uniqueNamespace("deploy-upgrade")
	kubectl(t, k, "", "create", "namespace", ns)
	t.Cleanup(func() { kubectl(t, k, "", "delete", "namespace", ns, "--wait=false") })
	env := []string{"KUBECONFIG=" + k.Kubeconfig}
	values := filepath.Join("testdata", "all.yaml")
	out, err := runHelm(t, env, "install", "mamori", chartDir(t), "-n", ns, "--values", values)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// NOTES.txt tells where the first admin password is.
	if want := "kubectl -n " + ns + " get secret mamori-admin"; !strings.Contains(out, want) {
		t.Errorf("install notes do not say %q:\n%s", want, out)
	}
	t.Cleanup(func() {
		if out, err := runHelm(t, env, "uninstall", "mamori", "-n", ns); err != nil {
			t.Errorf("%v\n%s", err, out)
		}
	})
	before := secretsOf(t, k, ns)
	for _, name := range []string{"mamori-admin", "mamori-server-tls", "mamori-kube-enforcer-tls"} {
		if len(before[name]) == 0 {
			t.Fatalf("install created no Secret %s (have %v)", name, before)
		}
	}
	if out, err := runHelm(t, env, "upgrade", "mamori", chartDir(t), "-n", ns, "--values", values, "--set", "server.workers=2"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	after := secretsOf(t, k, ns)
	for name, data := range before {
		for key, v := range data {
			if after[name][key] != v {
				t.Errorf("upgrade changed %s/%s: generated secrets must stay", name, key)
			}
		}
	}
	bundle := kubectl(t, k, "", "get", "validatingwebhookconfiguration", "mamori-kube-enforcer", "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}")
	if bundle != after["mamori-kube-enforcer-tls"]["ca.crt"] {
		t.Error("after the upgrade the webhook's caBundle is not the kube-enforcer's CA")
	}
}
