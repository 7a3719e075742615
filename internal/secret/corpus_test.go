package secret

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

// label is one entry of testdata/labels.yaml.
type label struct {
	Path     string `yaml:"path"`
	Negative bool   `yaml:"negative"`
	Findings []struct {
		Rule string `yaml:"rule"`
		Line int    `yaml:"line"`
		// Also lists other lines where a tool may locate the same
		// secret (the "type": "service_account" line of a GCP key).
		Also []int `yaml:"also"`
	} `yaml:"findings"`
}

// loadLabels reads testdata/labels.yaml and checks that it covers every
// corpus file.
func loadLabels(t *testing.T) []label {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "labels.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ls []label
	if err := yaml.Unmarshal(b, &ls); err != nil {
		t.Fatalf("testdata/labels.yaml: %v", err)
	}
	labelled := map[string]bool{}
	for _, l := range ls {
		labelled[l.Path] = true
	}
	root := filepath.Join("testdata", "corpus")
	err = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			if !labelled[filepath.ToSlash(rel)] {
				t.Errorf("corpus file %s has no label", rel)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestCorpus(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	positives := 0
	for _, l := range loadLabels(t) {
		t.Run(l.Path, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "corpus", filepath.FromSlash(l.Path)))
			if err != nil {
				t.Fatal(err)
			}
			var want, got []string
			for _, f := range l.Findings {
				want = append(want, fmt.Sprintf("%s:%d", f.Rule, f.Line))
			}
			positives += len(want)
			for _, f := range s.ScanBytes("/"+l.Path, data) {
				got = append(got, fmt.Sprintf("%s:%d", f.RuleID, f.StartLine))
				t.Logf("%s:%d %s %q", f.RuleID, f.StartLine, f.Severity, f.Match)
			}
			slices.Sort(want)
			slices.Sort(got)
			for _, w := range want {
				if !slices.Contains(got, w) {
					t.Errorf("missed %s", w)
				}
			}
			for _, g := range got {
				if !slices.Contains(want, g) {
					t.Errorf("false positive %s", g)
				}
			}
		})
	}
	t.Logf("%d labelled secrets", positives)
}
