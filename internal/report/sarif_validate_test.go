package report

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mamorisec/mamori/internal/schematest"
	"github.com/mamorisec/mamori/internal/testenv"
)

func sarifToolDir(t *testing.T) string {
	dir := filepath.Join(schematest.ModuleRoot(), schematest.SARIFTool)
	if _, err := os.Stat(filepath.Join(dir, "Sarif.Multitool")); err != nil {
		testenv.Missing(t, "the SARIF multitool (run scripts/fetch-sarif-tools.sh): %v", err)
	}
	return dir
}

// TestSARIFOfficialSchema validates the SARIF output against the schema the
// SARIF SDK ships.
func TestSARIFOfficialSchema(t *testing.T) {
	s := schematest.SARIF(t)
	for name, scan := range map[string]*Scan{"full": fullScan(), "clean": cleanScan()} {
		var buf bytes.Buffer
		if err := Write(&buf, FormatSARIF, scan, testOptions); err != nil {
			t.Fatal(err)
		}
		if err := schematest.Validate(s, buf.Bytes()); err != nil {
			t.Errorf("%s: SARIF output does not validate against the official schema: %v", name, err)
		}
	}
}

// TestSARIFMultitoolValidate runs the SARIF SDK's validator, which checks
// the schema and its own rules (the ones GitHub code scanning's ingestion
// follows), and fails on any error or warning it reports.
func TestSARIFMultitoolValidate(t *testing.T) {
	tool := filepath.Join(sarifToolDir(t), "Sarif.Multitool")
	dir := t.TempDir()
	for name, scan := range map[string]*Scan{"full": fullScan(), "clean": cleanScan()} {
		in := filepath.Join(dir, name+".sarif")
		f, err := os.Create(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := Write(f, FormatSARIF, scan, testOptions); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out := filepath.Join(dir, name+".validation.sarif")
		cmd := exec.Command(tool, "validate", in, "--output", out)
		cmd.Env = append(os.Environ(), "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: multitool: %v\n%s", name, err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var log struct {
			Runs []struct {
				Results []struct {
					RuleID  string `json:"ruleId"`
					Level   string `json:"level"`
					Message struct {
						Text string `json:"text"`
					} `json:"message"`
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal(b, &log); err != nil || len(log.Runs) == 0 {
			t.Fatalf("%s: unreadable validation log: %v", name, err)
		}
		for _, r := range log.Runs[0].Results {
			if r.Level == "error" || r.Level == "warning" || r.Level == "" {
				t.Errorf("%s: validator %s %s: %s", name, r.Level, r.RuleID, r.Message.Text)
			}
		}
	}
}
