package misconfig

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestLintDockerfileGolden lints every testdata/*.Dockerfile and compares
// the findings with NAME.golden.json (go test -update rewrites them).
func TestLintDockerfileGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.Dockerfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Dockerfiles in testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			findings, err := LintDockerfile(filepath.Base(file), data)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range findings {
				checkRedacted(t, f.Match)
			}
			got, err := json.MarshalIndent(findings, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(file, ".Dockerfile") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("findings differ from %s (go test -update rewrites it):\n%s", golden, got)
			}
		})
	}
}

// secretValues are the literal secrets in testdata; none may appear in a
// finding.
var secretValues = []string{"hunter2", "ghp_0123456789", "wJalrXUtnFEMI", "s3cr3t", "abc123def456", "sup3rs3cret", "AKIAIOSFODNN7", "tok_live_"}

func checkRedacted(t *testing.T, s string) {
	t.Helper()
	for _, v := range secretValues {
		if strings.Contains(s, v) {
			t.Errorf("finding text %q holds the secret %q", s, v)
		}
	}
}

func TestLintDockerfileRules(t *testing.T) {
	tests := []struct {
		name, dockerfile string
		want             []string // rule IDs, in line order
	}{
		{"non-root user and healthcheck", "FROM a:1\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"no USER", "FROM a:1\nHEALTHCHECK CMD true\n", []string{RootUser}},
		{"USER 0", "FROM a:1\nUSER 0\nHEALTHCHECK CMD true\n", []string{RootUser}},
		{"USER root:root", "FROM a:1\nUSER root:root\nHEALTHCHECK CMD true\n", []string{RootUser}},
		{"last USER wins", "FROM a:1\nUSER root\nRUN x\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"USER only in a builder stage", "FROM a:1 AS b\nUSER app\nFROM c:1\nHEALTHCHECK CMD true\n", []string{RootUser}},
		{"no HEALTHCHECK", "FROM a:1\nUSER app\n", []string{NoHealthcheck}},
		{"HEALTHCHECK NONE", "FROM a:1\nUSER app\nHEALTHCHECK NONE\n", []string{NoHealthcheck}},
		{"latest", "FROM a:latest\nUSER app\nHEALTHCHECK CMD true\n", []string{UnpinnedBaseImage}},
		{"no tag", "FROM docker.io/library/a\nUSER app\nHEALTHCHECK CMD true\n", []string{UnpinnedBaseImage}},
		{"digest", "FROM a@sha256:0000000000000000000000000000000000000000000000000000000000000000\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"variable and scratch", "ARG BASE=a:1\nFROM $BASE AS x\nFROM scratch\nUSER 1\nHEALTHCHECK CMD true\n", nil},
		{"ADD URL", "FROM a:1\nADD https://e.com/f /f\nUSER app\nHEALTHCHECK CMD true\n", []string{AddURL}},
		{"ADD git", "FROM a:1\nADD git@github.com:o/r.git /src\nUSER app\nHEALTHCHECK CMD true\n", []string{AddURL}},
		{"ADD local file", "FROM a:1\nADD a.txt b.txt /d/\nUSER app\nHEALTHCHECK CMD true\n", []string{AddInsteadOfCopy}},
		{"ADD JSON form", "FROM a:1\nADD [\"a.txt\", \"/d/\"]\nUSER app\nHEALTHCHECK CMD true\n", []string{AddInsteadOfCopy}},
		{"ADD archive", "FROM a:1\nADD rootfs.tar.xz /\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"curl pipe sh", "FROM a:1\nRUN curl -sSL https://x | sh\nUSER app\nHEALTHCHECK CMD true\n", []string{PipeToShell}},
		{"wget pipe sudo bash", "FROM a:1\nRUN wget -O - https://x | sudo bash\nUSER app\nHEALTHCHECK CMD true\n", []string{PipeToShell}},
		{"curl pipe python", "FROM a:1\nRUN curl https://bootstrap.pypa.io/get-pip.py | python3 -\nUSER app\nHEALTHCHECK CMD true\n", []string{PipeToShell}},
		{"sh process substitution", "FROM a:1\nRUN bash <(curl -s https://x)\nUSER app\nHEALTHCHECK CMD true\n", []string{PipeToShell}},
		{"curl to file", "FROM a:1\nRUN curl -o /tmp/x https://x && sha256sum -c x.sha256 && sh /tmp/x\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"pipe in builder stage", "FROM a:1 AS b\nRUN curl https://x | sh\nFROM a:1\nUSER app\nHEALTHCHECK CMD true\n", []string{PipeToShell}},
		{"apt without cleanup", "FROM a:1\nRUN apt-get update && apt-get install -y x\nUSER app\nHEALTHCHECK CMD true\n", []string{PackageCache}},
		{"apt with cleanup", "FROM a:1\nRUN apt-get update && apt-get install -y x && rm -rf /var/lib/apt/lists/*\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"apt in builder stage", "FROM a:1 AS b\nRUN apt-get update && apt-get install -y x\nFROM a:1\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"apt cache mount", "FROM a:1\nRUN --mount=type=cache,target=/var/lib/apt/lists apt-get update && apt-get install -y x\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"apk no-cache", "FROM a:1\nRUN apk add --no-cache x\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"apk cache", "FROM a:1\nRUN apk add x\nUSER app\nHEALTHCHECK CMD true\n", []string{PackageCache}},
		{"update alone", "FROM a:1\nRUN apt-get update\nRUN apt-get install -y x && rm -rf /var/lib/apt/lists/*\nUSER app\nHEALTHCHECK CMD true\n", []string{UpdateAlone}},
		{"apk update alone", "FROM a:1\nRUN apk update\nUSER app\nHEALTHCHECK CMD true\n", []string{UpdateAlone}},
		{"update and upgrade", "FROM a:1\nRUN apt-get update && apt-get upgrade -y && rm -rf /var/lib/apt/lists/*\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"sudo installed", "FROM a:1\nRUN apk add --no-cache sudo\nUSER app\nHEALTHCHECK CMD true\n", []string{SudoInstalled}},
		{"sudo-ldap", "FROM a:1\nRUN apt-get install -y sudo-ldap && rm -rf /var/lib/apt/lists/*\nUSER app\nHEALTHCHECK CMD true\n", []string{SudoInstalled}},
		{"EXPOSE ssh", "FROM a:1\nEXPOSE 22/tcp\nUSER app\nHEALTHCHECK CMD true\n", []string{AdminPort}},
		{"EXPOSE range with kubelet", "FROM a:1\nEXPOSE 10000-10300\nUSER app\nHEALTHCHECK CMD true\n", []string{AdminPort}},
		{"EXPOSE web and api server", "FROM a:1\nEXPOSE 80 443 6443 $PORT\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"EXPOSE in builder stage", "FROM a:1 AS b\nEXPOSE 22\nFROM a:1\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"ENV secret", "FROM a:1\nENV DB_PASSWORD=sup3rs3cret\nUSER app\nHEALTHCHECK CMD true\n", []string{SecretEnv}},
		{"ENV legacy secret", "FROM a:1\nENV API_KEY sup3rs3cret\nUSER app\nHEALTHCHECK CMD true\n", []string{SecretEnv}},
		{"ENV placeholders", "FROM a:1\nENV DB_PASSWORD= TOKEN=${TOKEN} SECRET_KEY=changeme ALLOW_EMPTY_PASSWORD=yes X_TOKEN=\"<your token>\" PASSWORD_FILE=/run/secrets/p\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"ARG secret default", "ARG NPM_TOKEN=tok_live_123\nFROM a:1\nUSER app\nHEALTHCHECK CMD true\n", []string{SecretEnv}},
		{"ARG without value", "FROM a:1\nARG NPM_TOKEN\nUSER app\nHEALTHCHECK CMD true\n", nil},
		{"LABEL secret", "FROM a:1\nLABEL secret=\"AKIAIOSFODNN7EXAMPLE\"\nUSER app\nHEALTHCHECK CMD true\n", []string{SecretEnv}},
		{"lower-case instructions", "from a:1\nrun curl https://x | sh\nuser app\nhealthcheck cmd true\n", []string{PipeToShell}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			findings, err := LintDockerfile("Dockerfile", []byte(tt.dockerfile))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range findings {
				got = append(got, f.RuleID)
				checkRedacted(t, f.Match)
				if f.Kind != "misconfiguration" || f.Source != "dockerfile" || f.Path != "Dockerfile" || f.StartLine == 0 || f.Metadata["remediation"] == "" {
					t.Errorf("malformed finding %+v", f)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLintDockerfileErrors(t *testing.T) {
	tests := []struct{ name, dockerfile, wantErr string }{
		{"empty", "", "Dockerfile:"},
		{"comments only", "# nothing\n", "Dockerfile:"},
		{"RUN before FROM", "# c\nRUN x\nFROM a\n", "Dockerfile:2: RUN before the first FROM"},
		{"ARG only", "ARG A=1\n", "Dockerfile: no FROM instruction"},
		{"unknown instruction", "FROM a\n\nCOPPY . /\n", `Dockerfile:3: unknown instruction "COPPY"`},
		{"unterminated heredoc", "FROM a\nRUN <<EOF\necho\n", "Dockerfile:2: unterminated heredoc"},
		{"bad ENV", "FROM a\nUSER x\nENV A=1 B\n", "Dockerfile:3: "},
		{"bad escape directive", "# escape=x\nFROM a\n", "Dockerfile:"},
		{"too large", strings.Repeat("#", MaxDockerfileSize+1), "over the 8 MiB limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LintDockerfile("Dockerfile", []byte(tt.dockerfile))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			t.Log(err)
		})
	}
}
