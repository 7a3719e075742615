package deploytest

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mamorisec/mamori/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files and deploy/openshift from the chart")

// helmVersion is the version scripts/build-helm.sh builds by default.
const helmVersion = "v3.22.0"

// repoRoot is the module's root directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// chartDir is the chart under test.
func chartDir(t testing.TB) string { return filepath.Join(repoRoot(t), "deploy", "helm", "mamori") }

// helmBin returns the helm binary: $MAMORI_HELM, else the one
// scripts/build-helm.sh built into ${MAMORI_HELM_CACHE:-~/.cache/mamori-helm}/<version>.
func helmBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MAMORI_HELM"); p != "" {
		return p
	}
	cache := os.Getenv("MAMORI_HELM_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "mamori-helm")
	}
	p := filepath.Join(cache, helmVersion, "helm")
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "helm %s at %s (run scripts/build-helm.sh): %v", helmVersion, p, err)
	}
	return p
}

// runHelm runs helm with a private configuration and returns its stdout.
func runHelm(t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"), "HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, errb.String(), out.String())
	}
	return out.String(), nil
}

// object is one rendered manifest.
type object map[string]any

func (o object) kind() string { s, _ := o["kind"].(string); return s }

func (o object) name() string { s, _ := get(o, "metadata", "name").(string); return s }

// get walks maps by key and lists by index ("0").
func get(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case object:
			v = x[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// parseManifests splits a multi-document YAML stream into objects.
func parseManifests(t testing.TB, s string) []object {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(s))
	var out []object
	for {
		var o map[string]any // nested maps decode as the outer type
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("rendered manifests are not YAML: %v", err)
		}
		if o != nil {
			out = append(out, object(o))
		}
	}
}

// render runs helm template for release "mamori" in namespace ns with the
// values files (relative to testdata) and --set arguments.
func render(t testing.TB, ns string, valueFiles []string, sets ...string) (string, error) {
	t.Helper()
	args := []string{"template", "mamori", chartDir(t), "--namespace", ns}
	for _, f := range valueFiles {
		args = append(args, "--values", filepath.Join("testdata", f))
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return runHelm(t, nil, args...)
}

func mustRender(t testing.TB, ns string, valueFiles []string, sets ...string) []object {
	t.Helper()
	out, err := render(t, ns, valueFiles, sets...)
	if err != nil {
		t.Fatal(err)
	}
	return parseManifests(t, out)
}

// find returns the object of a kind and name, failing the test without it.
func find(t testing.TB, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.kind() == kind && o.name() == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

func TestLint(t *testing.T) {
	for _, values := range [][]string{nil, {"all.yaml"}, {"postgresql.yaml"}, {"openshift.yaml"}} {
		t.Run(strings.Join(append([]string{"default"}, values...), "+"), func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir(t)}
			for _, f := range values {
				args = append(args, "--values", filepath.Join("testdata", f))
			}
			if out, err := runHelm(t, nil, args...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// kinds counts the rendered objects by kind.
func kinds(objs []object) map[string]int {
	m := map[string]int{}
	for _, o := range objs {
		m[o.kind()]++
	}
	return m
}

func TestTemplate(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		sets   []string
		want   map[string]int // objects by kind
		check  func(t *testing.T, objs []object)
	}{
		{
			name: "default: server on SQLite only",
			want: map[string]int{"ServiceAccount": 1, "Secret": 2, "Service": 1, "StatefulSet": 1},
			check: func(t *testing.T, objs []object) {
				sts := find(t, objs, "StatefulSet", "mamori-server")
				if get(sts, "spec", "volumeClaimTemplates", "0", "metadata", "name") != "data" {
					t.Error("the server has no PersistentVolumeClaim for its data directory")
				}
				args := fmt.Sprint(get(sts, "spec", "template", "spec", "containers", "0", "args"))
				if !strings.Contains(args, "--admin-password-file=/etc/mamori/admin/password") {
					t.Errorf("server args %s do not read the generated admin password", args)
				}
			},
		},
		{
			name:   "postgresql from an existing Secret",
			values: []string{"postgresql.yaml"},
			want:   map[string]int{"ServiceAccount": 1, "Secret": 2, "Service": 1, "StatefulSet": 1},
			check: func(t *testing.T, objs []object) {
				sts := find(t, objs, "StatefulSet", "mamori-server")
				env := get(sts, "spec", "template", "spec", "containers", "0", "env").([]any)
				var ref any
				for _, e := range env {
					if get(e, "name") == "MAMORI_DATABASE_URL" {
						ref = get(e, "valueFrom", "secretKeyRef", "name")
					}
				}
				if ref != "mamori-database" {
					t.Errorf("MAMORI_DATABASE_URL comes from %v, want the Secret mamori-database", ref)
				}
				if get(sts, "spec", "volumeClaimTemplates") != nil {
					t.Error("persistence.enabled=false still renders a PersistentVolumeClaim")
				}
			},
		},
		{
			name:   "every component",
			values: []string{"all.yaml"},
			want: map[string]int{"ServiceAccount": 5, "Secret": 3, "Service": 3, "StatefulSet": 1, "Deployment": 3, "DaemonSet": 1,
				"ClusterRole": 1, "ClusterRoleBinding": 1, "ValidatingWebhookConfiguration": 1, "NetworkPolicy": 3, "Ingress": 1, "PodDisruptionBudget": 1},
			check: func(t *testing.T, objs []object) {
				checkWorkloadSecurity(t, objs, false)
				gw := find(t, objs, "Deployment", "mamori-gateway")
				if r, _ := get(gw, "spec", "replicas").(int); r < 2 {
					t.Errorf("gateway replicas = %v, want at least 2", get(gw, "spec", "replicas"))
				}
				wh := find(t, objs, "ValidatingWebhookConfiguration", "mamori-kube-enforcer")
				if fp := get(wh, "webhooks", "0", "failurePolicy"); fp != "Ignore" {
					t.Errorf("image gate failurePolicy = %v, want Ignore by default", fp)
				}
				excluded := fmt.Sprint(get(wh, "webhooks", "0", "namespaceSelector", "matchExpressions", "0", "values"))
				if !strings.Contains(excluded, "kube-system") || !strings.Contains(excluded, "mamori") {
					t.Errorf("webhook excludes namespaces %s, want kube-system and the release namespace", excluded)
				}
				checkClusterRole(t, find(t, objs, "ClusterRole", "mamori-kube-enforcer"))
			},
		},
		{
			name:   "failurePolicy Fail",
			values: []string{"all.yaml"},
			sets:   []string{"kubeEnforcer.webhook.failurePolicy=Fail"},
			check: func(t *testing.T, objs []object) {
				wh := find(t, objs, "ValidatingWebhookConfiguration", "mamori-kube-enforcer")
				if fp := get(wh, "webhooks", "0", "failurePolicy"); fp != "Fail" {
					t.Errorf("failurePolicy = %v, want Fail", fp)
				}
			},
		},
		{
			name:   "openshift",
			values: []string{"openshift.yaml"},
			want: map[string]int{"ServiceAccount": 5, "Secret": 2, "ConfigMap": 1, "Service": 3, "StatefulSet": 1, "Deployment": 3, "DaemonSet": 1,
				"ClusterRole": 1, "ClusterRoleBinding": 1, "ValidatingWebhookConfiguration": 1, "PodDisruptionBudget": 1,
				"SecurityContextConstraints": 2, "Route": 1},
			check: func(t *testing.T, objs []object) {
				checkWorkloadSecurity(t, objs, true)
				route := find(t, objs, "Route", "mamori-server")
				if tm := get(route, "spec", "tls", "termination"); tm != "reencrypt" {
					t.Errorf("Route termination = %v, want reencrypt", tm)
				}
				svc := find(t, objs, "Service", "mamori-server")
				if get(svc, "metadata", "annotations", "service.beta.openshift.io/serving-cert-secret-name") == nil {
					t.Error("the server Service does not ask OpenShift's service CA for a certificate")
				}
				scc := find(t, objs, "SecurityContextConstraints", "mamori-restricted")
				if get(scc, "allowPrivilegedContainer") != false || get(scc, "allowHostPID") != false {
					t.Error("the restricted SCC allows privileged containers or the host PID namespace")
				}
			},
		},
		{
			name: "openshift passthrough Route, SCCs applied by an administrator",
			sets: []string{"openshift.enabled=true", "openshift.createSCC=false", "openshift.route.termination=passthrough", "openshift.route.host=mamori.apps.example.test"},
			want: map[string]int{"ServiceAccount": 1, "Secret": 2, "Service": 1, "StatefulSet": 1, "Route": 1},
			check: func(t *testing.T, objs []object) {
				if tm := get(find(t, objs, "Route", "mamori-server"), "spec", "tls", "termination"); tm != "passthrough" {
					t.Errorf("Route termination = %v, want passthrough", tm)
				}
				data := secretData(t, objs)
				checkCert(t, data["mamori-server-tls/tls.crt"], data["mamori-server-tls/ca.crt"], "mamori.apps.example.test")
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs := mustRender(t, "mamori", c.values, c.sets...)
			if c.want != nil {
				got := kinds(objs)
				if fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Errorf("rendered kinds %v, want %v", got, c.want)
				}
			}
			for _, o := range objs {
				if o.name() == "" {
					t.Errorf("a %s has no name", o.kind())
				}
			}
			if c.check != nil {
				c.check(t, objs)
			}
		})
	}
}

// checkWorkloadSecurity asserts the pod security of every workload: all
// but the enforcer run as non-root with a read-only root filesystem and no
// capabilities; on OpenShift no pod fixes its user id.
func checkWorkloadSecurity(t *testing.T, objs []object, openshift bool) {
	t.Helper()
	for _, o := range objs {
		switch o.kind() {
		case "Deployment", "StatefulSet", "DaemonSet":
		default:
			continue
		}
		pod := get(o, "spec", "template", "spec")
		for _, c := range get(pod, "containers").([]any) {
			if get(c, "resources", "requests") == nil || get(c, "resources", "limits") == nil {
				t.Errorf("%s %s: container without resource requests and limits", o.kind(), o.name())
			}
			if get(c, "securityContext", "readOnlyRootFilesystem") != true {
				t.Errorf("%s %s: root filesystem is writable", o.kind(), o.name())
			}
			if o.kind() == "DaemonSet" {
				continue
			}
			if get(pod, "securityContext", "runAsNonRoot") != true || get(c, "securityContext", "runAsNonRoot") != true {
				t.Errorf("%s %s: may run as root", o.kind(), o.name())
			}
			if get(c, "securityContext", "allowPrivilegeEscalation") != false {
				t.Errorf("%s %s: allows privilege escalation", o.kind(), o.name())
			}
			if fmt.Sprint(get(c, "securityContext", "capabilities", "drop")) != "[ALL]" || get(c, "securityContext", "capabilities", "add") != nil {
				t.Errorf("%s %s: capabilities %v, want all dropped", o.kind(), o.name(), get(c, "securityContext", "capabilities"))
			}
			if openshift && get(pod, "securityContext", "runAsUser") != nil {
				t.Errorf("%s %s: fixes runAsUser, which OpenShift's restricted SCC assigns", o.kind(), o.name())
			}
			if get(pod, "hostPID") == true || get(pod, "hostNetwork") == true {
				t.Errorf("%s %s: uses a host namespace", o.kind(), o.name())
			}
		}
	}
}

// checkClusterRole asserts the kube-enforcer reads what discovery watches
// and may write nothing but its own webhook configuration.
func checkClusterRole(t *testing.T, role object) {
	t.Helper()
	read := map[string]bool{}
	for _, r := range get(role, "rules").([]any) {
		verbs := fmt.Sprint(get(r, "verbs"))
		for _, res := range get(r, "resources").([]any) {
			switch verbs {
			case "[get list watch]":
				read[res.(string)] = true
			case "[get update patch]":
				if res != "validatingwebhookconfigurations" || fmt.Sprint(get(r, "resourceNames")) != "[mamori-kube-enforcer]" {
					t.Errorf("kube-enforcer may %s %v beyond its own webhook configuration", verbs, res)
				}
			default:
				t.Errorf("kube-enforcer ClusterRole grants unexpected verbs %s on %v", verbs, res)
			}
		}
	}
	for _, res := range []string{"namespaces", "pods", "deployments", "statefulsets", "daemonsets", "jobs", "cronjobs", "replicasets",
		"services", "networkpolicies", "serviceaccounts", "roles", "rolebindings", "clusterroles", "clusterrolebindings"} {
		if !read[res] {
			t.Errorf("kube-enforcer cannot watch %s", res)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	cases := []struct {
		name string
		sets []string
		want string
	}{
		{"enforcer without enrollment secret", []string{"gateway.enabled=true", "gateway.tokenSecret.name=t", "gateway.tlsSecret.name=c", "enforcer.enabled=true"}, "enforcer.enrollmentSecret.name is empty"},
		{"gateway without certificate", []string{"gateway.enabled=true", "gateway.tokenSecret.name=t"}, "gateway.tlsSecret.name is empty"},
		{"gateway without token", []string{"gateway.enabled=true"}, "gateway.tokenSecret.name is empty"},
		{"enforcer without gateway", []string{"enforcer.enabled=true", "enforcer.enrollmentSecret.name=e"}, "enforcer.enabled needs gateway.enabled"},
		{"postgresql without secret", []string{"database.type=postgresql"}, "existingSecret is empty"},
		{"one gateway", []string{"gateway.replicas=1"}, "gateway.replicas"},
		{"unknown failure policy", []string{"kubeEnforcer.webhook.failurePolicy=Maybe"}, "failurePolicy"},
		{"unknown capability", []string{"enforcer.capabilities={SYS_MODULE}"}, "capabilities"},
		{"unknown value", []string{"server.adminPassword.value=hunter2"}, "value"},
		{"ingress without host", []string{"ingress.enabled=true"}, "ingress.host is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, "mamori", nil, c.sets...)
			if err == nil {
				t.Fatalf("helm template %v succeeded, want an error about %q", c.sets, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error does not mention %q:\n%v", c.want, err)
			}
		})
	}
}
