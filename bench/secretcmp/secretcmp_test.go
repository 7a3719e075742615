package secretcmp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mamorisec/mamori/internal/secret"
	"github.com/mamorisec/mamori/internal/testenv"
)

// corpusDir and labelsFile are the secret scanner's labelled corpus.
var (
	corpusDir  = filepath.Join("..", "..", "internal", "secret", "testdata", "corpus")
	labelsFile = filepath.Join("..", "..", "internal", "secret", "testdata", "labels.yaml")
)

// label is one entry of the labels file: a file's expected secrets, or
// none for a negative.
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

// hit is one finding of a tool, reduced to what scoring compares.
type hit struct {
	Path       string
	Rule       string
	Start, End int
}

// score is a tool's result against the labels.
type score struct {
	Tool     string
	Found    int
	Labels   int
	FP       []hit
	Missed   []string
	Findings int
}

func (s score) recall() float64 { return float64(s.Found) / float64(s.Labels) }

func (s score) precision() float64 {
	tp := s.Findings - len(s.FP)
	if s.Findings == 0 {
		return 1
	}
	return float64(tp) / float64(s.Findings)
}

// covers reports whether a finding locates the secret on line: the line
// is in the finding's range, or just before it (tools report a PEM key at
// its header line or at its first body line).
func covers(h hit, line int) bool {
	if line == 0 { // a binary file: any finding in it
		return true
	}
	return h.Start-1 <= line && line <= max(h.End, h.Start)
}

// scoreHits matches hits against the labels. A label is found when some
// hit in its file covers its line; a hit that covers no label is a false
// positive. Rule IDs are not compared: the tools name rules differently.
func scoreHits(tool string, labels []label, hits []hit) score {
	sc := score{Tool: tool, Findings: len(hits)}
	byPath := map[string][]hit{}
	for _, h := range hits {
		byPath[h.Path] = append(byPath[h.Path], h)
	}
	lines := map[string][]int{}
	for _, l := range labels {
		for _, f := range l.Findings {
			sc.Labels++
			at := append([]int{f.Line}, f.Also...)
			lines[l.Path] = append(lines[l.Path], at...)
			found := false
			for _, h := range byPath[l.Path] {
				for _, line := range at {
					found = found || covers(h, line)
				}
			}
			if found {
				sc.Found++
			} else {
				sc.Missed = append(sc.Missed, fmt.Sprintf("%s:%d %s", l.Path, f.Line, f.Rule))
			}
		}
	}
	for _, h := range hits {
		ok := false
		for _, line := range lines[h.Path] {
			ok = ok || covers(h, line)
		}
		if !ok {
			sc.FP = append(sc.FP, h)
		}
	}
	return sc
}

func loadLabels(t *testing.T) []label {
	t.Helper()
	b, err := os.ReadFile(labelsFile)
	if err != nil {
		t.Fatal(err)
	}
	var ls []label
	if err := yaml.Unmarshal(b, &ls); err != nil {
		t.Fatalf("%s: %v", labelsFile, err)
	}
	return ls
}

// mamoriHits scans every labelled corpus file with the built-in rules.
func mamoriHits(t *testing.T, labels []label) []hit {
	t.Helper()
	s, err := secret.New(secret.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var hits []hit
	for _, l := range labels {
		data, err := os.ReadFile(filepath.Join(corpusDir, filepath.FromSlash(l.Path)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range s.ScanBytes("/"+l.Path, data) {
			hits = append(hits, hit{l.Path, f.RuleID, f.StartLine, f.EndLine})
		}
	}
	return hits
}

// trivyReport is the part of trivy's JSON report the comparison reads.
type trivyReport struct {
	Results []struct {
		Target  string
		Secrets []struct {
			RuleID             string
			StartLine, EndLine int
		}
	}
}

// needTrivy returns the trivy binary among the peers.
func needTrivy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(testenv.PeersDir(), "trivy")
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, "trivy in %s (run bench/build-peers.sh)", testenv.PeersDir())
	}
	return bin
}

// runTrivy runs trivy's secret scanner on dir, offline, and returns its
// findings with paths relative to dir.
func runTrivy(t *testing.T, bin, dir string) []hit {
	t.Helper()
	tmp := t.TempDir()
	out := filepath.Join(tmp, "trivy.json")
	cmd := exec.Command(bin, "fs", "--scanners", "secret", "--format", "json", "--output", out,
		"--offline-scan", "--skip-db-update", "--cache-backend", "memory", "--cache-dir", filepath.Join(tmp, "cache"),
		"--secret-config", filepath.Join(tmp, "no-custom-rules.yaml"), "--quiet", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, stderr.Bytes())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep trivyReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("trivy report: %v", err)
	}
	var hits []hit
	for _, r := range rep.Results {
		for _, s := range r.Secrets {
			hits = append(hits, hit{filepath.ToSlash(r.Target), s.RuleID, s.StartLine, s.EndLine})
		}
	}
	return hits
}

func TestCorpusAgainstTrivy(t *testing.T) {
	bin := needTrivy(t)
	labels := loadLabels(t)
	corpus, err := filepath.Abs(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	m := scoreHits("mamori", labels, mamoriHits(t, labels))
	tr := scoreHits("trivy", labels, runTrivy(t, bin, corpus))
	var b strings.Builder
	fmt.Fprintf(&b, "\n| tool | labelled secrets | found | recall | findings | false positives | precision |\n|---|---|---|---|---|---|---|\n")
	for _, s := range []score{m, tr} {
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f%% | %d | %d | %.1f%% |\n", s.Tool, s.Labels, s.Found, 100*s.recall(), s.Findings, len(s.FP), 100*s.precision())
	}
	t.Log(b.String())
	for _, s := range []score{m, tr} {
		for _, fp := range s.FP {
			t.Logf("%s false positive: %s:%d %s", s.Tool, fp.Path, fp.Start, fp.Rule)
		}
	}
	sort.Strings(tr.Missed)
	t.Logf("secrets trivy misses (%d):\n  %s", len(tr.Missed), strings.Join(tr.Missed, "\n  "))
	if len(m.Missed) > 0 {
		t.Logf("secrets mamori misses (%d):\n  %s", len(m.Missed), strings.Join(m.Missed, "\n  "))
	}
	if m.recall() < tr.recall() {
		t.Errorf("mamori's recall %.3f is below trivy's %.3f", m.recall(), tr.recall())
	}
	if len(m.FP) > len(tr.FP) {
		t.Errorf("mamori has %d false positives, trivy %d", len(m.FP), len(tr.FP))
	}
}

func TestDebianRootTrivy(t *testing.T) {
	if testing.Short() {
		t.Skip("scans a 1.5 GB tree")
	}
	root := testenv.DebianRoot(t)
	hits := runTrivy(t, needTrivy(t), root)
	t.Logf("trivy reports %d secrets in %s", len(hits), root)
	for _, h := range hits {
		t.Logf("trivy: %s:%d %s", h.Path, h.Start, h.Rule)
	}
}
