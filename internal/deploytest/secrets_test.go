package deploytest

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// secretData returns every Secret's decoded data, keyed "name/key".
func secretData(t *testing.T, objs []object) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objs {
		if o.kind() != "Secret" {
			continue
		}
		if o["stringData"] != nil {
			t.Errorf("Secret %s has stringData: every secret value must be generated", o.name())
		}
		data, _ := o["data"].(map[string]any)
		if len(data) == 0 {
			t.Errorf("Secret %s is empty", o.name())
		}
		for k, v := range data {
			s, _ := v.(string)
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil || len(b) == 0 {
				t.Errorf("Secret %s key %s is not non-empty base64 (%v)", o.name(), k, err)
			}
			out[o.name()+"/"+k] = string(b)
		}
	}
	return out
}

// TestSecretsGenerated renders twice and asserts that every value of every
// Secret is generated: present, different in each render, and a password
// long enough or a certificate that fits its use.
func TestSecretsGenerated(t *testing.T) {
	for _, values := range [][]string{{"all.yaml"}, {"openshift.yaml"}, {"postgresql.yaml"}} {
		t.Run(values[0], func(t *testing.T) {
			first := mustRender(t, "mamori", values)
			a, b := secretData(t, first), secretData(t, mustRender(t, "mamori", values))
			if len(a) == 0 {
				t.Fatal("no Secret rendered")
			}
			for k, v := range a {
				if b[k] == v {
					t.Errorf("%s is the same in two renders: it is not generated", k)
				}
			}
			if pw, ok := a["mamori-admin/password"]; ok && !regexp.MustCompile(`^[A-Za-z0-9]{32}$`).MatchString(pw) {
				t.Errorf("admin password %q is not 32 random alphanumerics", pw)
			}
			if crt, ok := a["mamori-server-tls/tls.crt"]; ok {
				checkCert(t, crt, a["mamori-server-tls/ca.crt"], "mamori-server.mamori.svc")
			}
			if crt, ok := a["mamori-kube-enforcer-tls/tls.crt"]; ok {
				ca := a["mamori-kube-enforcer-tls/ca.crt"]
				checkCert(t, crt, ca, "mamori-kube-enforcer.mamori.svc")
				wh := find(t, first, "ValidatingWebhookConfiguration", "mamori-kube-enforcer")
				bundle, _ := base64.StdEncoding.DecodeString(fmt.Sprint(get(wh, "webhooks", "0", "clientConfig", "caBundle")))
				if string(bundle) != ca {
					t.Error("the webhook's caBundle is not the CA that signed the kube-enforcer's certificate")
				}
			}
		})
	}
}

// checkCert verifies a PEM certificate for a DNS name against a PEM CA.
func checkCert(t *testing.T, certPEM, caPEM, dnsName string) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatalf("the CA for %s is not PEM", dnsName)
	}
	blk, _ := pem.Decode([]byte(certPEM))
	if blk == nil {
		t.Fatalf("the certificate for %s is not PEM", dnsName)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(x509.VerifyOptions{DNSName: dnsName, Roots: pool}); err != nil {
		t.Errorf("certificate for %s: %v", dnsName, err)
	}
}

// TestNoSecretsInValues walks values.yaml: a key naming a password, token,
// key or credential may hold a Secret reference, never a value.
func TestNoSecretsInValues(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir(t), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	sensitive := regexp.MustCompile(`(?i)(password|passwd|token|secret|credential|apikey|privatekey)$`)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := path + "." + k
				if s, ok := e.(string); ok && sensitive.MatchString(k) && s != "" {
					t.Errorf("values.yaml %s holds a literal %q", p, s)
				}
				walk(p, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	walk("", v)
	for _, word := range []string{"changeme", "admin123", "password123", "hunter2", "BEGIN PRIVATE KEY", "BEGIN RSA", "BEGIN EC"} {
		if strings.Contains(strings.ToLower(string(b)), strings.ToLower(word)) {
			t.Errorf("values.yaml contains %q", word)
		}
	}
}

// documentedCapabilities reads the enforcer's capability table from
// docs/install-kubernetes.md (the rows between the enforcer-capabilities
// markers, each starting with | `NAME` |).
func documentedCapabilities(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "install-kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- enforcer-capabilities -->")
	table, _, ok2 := strings.Cut(rest, "<!-- /enforcer-capabilities -->")
	if !ok || !ok2 {
		t.Fatal("docs/install-kubernetes.md has no enforcer-capabilities table")
	}
	var caps []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\|").FindAllStringSubmatch(table, -1) {
		caps = append(caps, m[1])
	}
	return caps
}

func TestEnforcerCapabilities(t *testing.T) {
	doc := documentedCapabilities(t)
	want := []string{"SYS_ADMIN", "BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE", "NET_ADMIN", "KILL", "DAC_READ_SEARCH"}
	if !slices.Equal(doc, want) {
		t.Errorf("documented capabilities %v, want %v", doc, want)
	}
	objs := mustRender(t, "mamori", []string{"openshift.yaml"})
	ds := find(t, objs, "DaemonSet", "mamori-enforcer")
	pod := get(ds, "spec", "template", "spec")
	sc := get(pod, "containers", "0", "securityContext")
	var got []string
	for _, c := range get(sc, "capabilities", "add").([]any) {
		got = append(got, c.(string))
	}
	if !slices.Equal(got, doc) {
		t.Errorf("DaemonSet adds capabilities %v, documented %v", got, doc)
	}
	if fmt.Sprint(get(sc, "capabilities", "drop")) != "[ALL]" || get(sc, "privileged") != false {
		t.Errorf("enforcer securityContext %v: want privileged false and every other capability dropped", sc)
	}
	if get(pod, "hostPID") != true || get(pod, "hostNetwork") != nil || get(pod, "hostIPC") != nil {
		t.Error("the enforcer must share the host PID namespace and no other")
	}
	scc := find(t, objs, "SecurityContextConstraints", "mamori-enforcer")
	var allowed []string
	for _, c := range get(scc, "allowedCapabilities").([]any) {
		allowed = append(allowed, c.(string))
	}
	if !slices.Equal(allowed, doc) {
		t.Errorf("enforcer SCC allows capabilities %v, documented %v", allowed, doc)
	}
	// Every host path but the state directory is read-only.
	mounts := map[string]bool{}
	for _, m := range get(pod, "containers", "0", "volumeMounts").([]any) {
		mounts[get(m, "name").(string)] = get(m, "readOnly") == true
	}
	for _, v := range get(pod, "volumes").([]any) {
		name := get(v, "name").(string)
		if get(v, "hostPath") != nil && !mounts[name] && name != "state" {
			t.Errorf("host path volume %s (%v) is mounted writable", name, get(v, "hostPath", "path"))
		}
	}
	paths := map[any]bool{}
	for _, v := range get(pod, "volumes").([]any) {
		paths[get(v, "hostPath", "path")] = true
	}
	for _, p := range []string{"/sys/fs/cgroup", "/sys/kernel/btf", "/proc", "/run/crio/crio.sock", "/var/lib/containers/storage", "/var/lib/mamori-enforcer"} {
		if !paths[p] {
			t.Errorf("enforcer does not mount %s", p)
		}
	}
}
