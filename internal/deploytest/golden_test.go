package deploytest

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// masked replaces the generated values (Secret data, webhook caBundle) so a
// render can be compared with a golden file.
func masked(t *testing.T, objs []object) string {
	t.Helper()
	var buf bytes.Buffer
	for _, o := range objs {
		if data, ok := o["data"].(map[string]any); ok && o.kind() == "Secret" {
			for k := range data {
				data[k] = "<generated>"
			}
		}
		if hooks, ok := o["webhooks"].([]any); ok {
			for _, h := range hooks {
				if cc, ok := get(h, "clientConfig").(map[string]any); ok {
					cc["caBundle"] = "<generated>"
				}
			}
		}
		b, err := yaml.Marshal(map[string]any(o))
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.String()
}

// compareGolden compares got with a file, rewriting it under -update.
func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the render (run go test ./internal/deploytest -update and review the diff):\n%s", path, firstDiff(string(want), got))
	}
}

// firstDiff shows the first differing line.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return "line " + strconv.Itoa(i+1) + ":\n- " + al[i] + "\n+ " + bl[i]
		}
	}
	return "lengths differ"
}

// TestGoldenDefault compares the default render (generated values masked)
// with testdata/default.golden.yaml.
func TestGoldenDefault(t *testing.T) {
	compareGolden(t, filepath.Join("testdata", "default.golden.yaml"), masked(t, mustRender(t, "mamori", nil)))
}

// TestOpenShiftManifests checks that deploy/openshift holds the chart's
// OpenShift objects for release "mamori" in namespace "mamori" with every
// component on, so users without Helm apply the same SCCs and Route.
func TestOpenShiftManifests(t *testing.T) {
	out, err := render(t, "mamori", []string{"openshift.yaml"}, "openshift.route.host=")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"SecurityContextConstraints": "scc.yaml", "Route": "route.yaml"}
	files := map[string]*bytes.Buffer{}
	for _, o := range parseManifests(t, out) {
		name, ok := want[o.kind()]
		if !ok {
			continue
		}
		if files[name] == nil {
			files[name] = &bytes.Buffer{}
		}
		delete(o["metadata"].(map[string]any), "labels")
		b, err := yaml.Marshal(map[string]any(o))
		if err != nil {
			t.Fatal(err)
		}
		files[name].WriteString("---\n")
		files[name].Write(b)
	}
	for _, name := range want {
		if files[name] == nil {
			t.Fatalf("the chart rendered nothing for %s", name)
		}
		header := "# Generated from deploy/helm/mamori (release mamori, namespace mamori)\n# by go test ./internal/deploytest -update; edit the chart, not this file.\n"
		compareGolden(t, filepath.Join(repoRoot(t), "deploy", "openshift", name), header+files[name].String())
	}
}
