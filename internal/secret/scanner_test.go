package secret

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mamorisec/mamori/internal/inventory"
)

// fakeGitHubToken builds a GitHub token shaped value that is no real
// credential.
const fakeGitHubToken = "ghp_" + "Zq8w2Lr7Xn4Kp1Vt6Yb3Hs9Dm5Fc0Ga2Je7Q"

func newScanner(t testing.TB, rules string) *Scanner {
	t.Helper()
	cfg := Config{}
	if rules != "" {
		cfg.RulesFile = filepath.Join(t.TempDir(), "rules.yaml")
		if err := os.WriteFile(cfg.RulesFile, []byte(rules), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"ab", "**"},
		{"abcdefgh", "ab******"},
		{"AKIAQ2BKVXJ7MJ4NWE3R", "AKIA****************"},
		{strings.Repeat("z", 100), "zzzz" + strings.Repeat("*", maxStars)},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScanBytes(t *testing.T) {
	s := newScanner(t, "")
	for _, tc := range []struct {
		name, path, data string
		want             []string // rule IDs
	}{
		{"token in code", "/app/main.go", `const tok = "` + fakeGitHubToken + `"`, []string{"github-token"}},
		{"binary file", "/app/blob", "\x00\x01" + fakeGitHubToken, nil},
		{"doc tree", "/usr/share/doc/app/README", fakeGitHubToken, nil},
		{"test tree", "/src/app/testdata/token.txt", fakeGitHubToken, nil},
		{"markdown", "/app/NOTES.md", fakeGitHubToken, nil},
		{"duplicate", "/app/a.sh", fakeGitHubToken + "\n" + fakeGitHubToken + "\n", []string{"github-token"}},
		{"dotenv only in .env", "/app/vars.txt", "API_TOKEN=Qm9vX2x1dGVzdDk3ZnJvYg", nil},
		{"dotenv", "/app/.env", "API_TOKEN=Qm9vX2x1dGVzdDk3ZnJvYg", []string{"dotenv-secret"}},
		{"shell history", "/root/.bash_history", "mysql -uroot -pTq7vRw2xPz db", []string{"history-secret-argument"}},
		{"history rule not in files", "/app/run.sh", "mysql -uroot -pTq7vRw2xPz db", nil},
		{"npmrc variable", "/home/n/.npmrc", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}", nil},
		{"pem header in code", "/app/x.py", `if l == "-----BEGIN RSA PRIVATE KEY-----":`, nil},
		{"k8s token elsewhere is a jwt", "/app/token",
			"eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU",
			[]string{"jwt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, f := range s.ScanBytes(tc.path, []byte(tc.data)) {
				got = append(got, f.RuleID)
				if f.Kind != inventory.KindSecret || f.Source != inventory.SourceFile || f.Path != tc.path || f.Engine != "builtin" {
					t.Errorf("finding fields: %+v", f)
				}
				if strings.Contains(f.Match, fakeGitHubToken) {
					t.Errorf("Match %q holds the secret", f.Match)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("rules = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMatchRedactsEverySecretOnTheLine(t *testing.T) {
	s := newScanner(t, "")
	line := "A=" + fakeGitHubToken + " B=AKIAQ2BKVXJ7MJ4NWE3R"
	fs := s.ScanBytes("/app/x.sh", []byte(line))
	if len(fs) != 2 {
		t.Fatalf("got %d findings, want 2", len(fs))
	}
	for _, f := range fs {
		if strings.Contains(f.Match, fakeGitHubToken) || strings.Contains(f.Match, "AKIAQ2BKVXJ7MJ4NWE3R") {
			t.Errorf("Match %q holds a secret", f.Match)
		}
	}
}

func TestRulesFile(t *testing.T) {
	rules := `
rules:
  - id: acme-api-key
    title: ACME API key
    severity: critical
    category: ACME
    keywords: [acme_]
    regex: 'key=(acme_[a-z0-9]{24})'
    secretGroup: 1
    entropy: 3
disableRules: [github-token]
allowPaths: ['^/opt/vendor/']
allowRegexes: ['^AKIAQ2BKVXJ7MJ4NWE3R$']
`
	s := newScanner(t, rules)
	fs := s.ScanBytes("/app/c", []byte("key=acme_k3j9x8w2q7m4n6b1v5c0z8l2\n"+fakeGitHubToken+"\nAKIAQ2BKVXJ7MJ4NWE3R"))
	if len(fs) != 1 || fs[0].RuleID != "acme-api-key" || fs[0].Severity != "CRITICAL" || fs[0].Category != "ACME" {
		t.Fatalf("findings = %+v, want one acme-api-key", fs)
	}
	if fs[0].Match != "key=acme"+strings.Repeat("*", maxStars) {
		t.Errorf("Match = %q", fs[0].Match)
	}
	if got := s.ScanBytes("/opt/vendor/c", []byte("key=acme_k3j9x8w2q7m4n6b1v5c0z8l2")); got != nil {
		t.Errorf("allowPaths: got %+v", got)
	}
	if s.ConfigDigest() == newScanner(t, "").ConfigDigest() {
		t.Error("custom rules do not change the config digest")
	}
}

func TestRulesFileErrors(t *testing.T) {
	for _, tc := range []struct{ name, rules, want string }{
		{"bad regex", "rules:\n  - {id: r1, keywords: [a], regex: '(a'}", `rule "r1" (rules[0]): regex: error parsing regexp`},
		{"no keywords", "rules:\n  - {id: r1, regex: 'a'}", `rule "r1" (rules[0]): keywords: at least one keyword`},
		{"no id", "rules:\n  - {keywords: [a], regex: 'a'}", `rule "" (rules[0]): missing id`},
		{"bad group", "rules:\n  - {id: r1, keywords: [a], regex: 'a', secretGroup: 2}", `secretGroup 2: the regex has 0 groups`},
		{"bad severity", "rules:\n  - {id: r1, keywords: [a], regex: 'a', severity: urgent}", `severity "urgent"`},
		{"bad entropy", "rules:\n  - {id: r1, keywords: [a], regex: 'a', entropy: 9}", `entropy 9`},
		{"builtin id", "rules:\n  - {id: jwt, keywords: [a], regex: 'a'}", `rule "jwt" (rules[0]): duplicate rule ID`},
		{"unknown disable", "disableRules: [nope]", `disableRules: "nope" is not a built-in rule ID`},
		{"unknown field", "rulez: []", `field rulez not found`},
		{"bad allow path", "allowPaths: ['(']", `allowPaths[0]`},
		{"bad allow regex", "allowRegexes: ['(']", `allowRegexes[0]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "rules.yaml")
			if err := os.WriteFile(name, []byte(tc.rules), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := New(Config{RulesFile: name})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), name) {
				t.Errorf("err = %v, want one naming %s and containing %q", err, name, tc.want)
			}
		})
	}
	if _, err := New(Config{RulesFile: "/nonexistent/rules.yaml"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/rules.yaml") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestScanConfig(t *testing.T) {
	s := newScanner(t, "")
	cfg := &v1.ConfigFile{
		Config: v1.Config{
			Env:    []string{"PATH=/usr/bin", "DB_PASSWORD=Xr7tKq2mWz9pLc", "GH=" + fakeGitHubToken},
			Labels: map[string]string{"maintainer": "ops@corp.internal", "ci.token": "Vb8nQw3eRt6yUi0pAs"},
		},
		History: []v1.History{
			{CreatedBy: "ADD rootfs.tar /"},
			{CreatedBy: "ENV LANG=C.UTF-8", EmptyLayer: true},
			{CreatedBy: "RUN /bin/sh -c mysql -h db -uroot -pHq4zWx8vNc2 < init.sql"},
			{CreatedBy: "RUN /bin/sh -c curl --token=${TOKEN} https://x"},
			{CreatedBy: "RUN /bin/sh -c NPM_TOKEN=Jk3lMn8bVc5xZq npm publish"},
		},
	}
	type key struct {
		source, path, rule string
		layer              int
	}
	var got []key
	for _, f := range s.ScanConfig(cfg) {
		got = append(got, key{f.Source, f.Path, f.RuleID, f.Layer.Index})
		if strings.Contains(f.Match, "Xr7tKq2mWz9pLc") || strings.Contains(f.Match, "Hq4zWx8vNc2") || strings.Contains(f.Match, fakeGitHubToken) {
			t.Errorf("Match %q holds a secret", f.Match)
		}
		if f.Source == inventory.SourceHistory && f.Layer.CreatedBy == "" {
			t.Errorf("history finding without CreatedBy: %+v", f)
		}
	}
	want := []key{
		{inventory.SourceEnv, "DB_PASSWORD", "dotenv-secret", 0},
		{inventory.SourceEnv, "GH", "github-token", 0},
		{inventory.SourceLabel, "ci.token", "dotenv-secret", 0},
		{inventory.SourceHistory, "", "history-secret-argument", 1},
		{inventory.SourceHistory, "", "history-secret-assignment", 3},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("finding %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if s.ScanConfig(nil) != nil {
		t.Error("nil config gave findings")
	}
}

func TestExtractor(t *testing.T) {
	s := newScanner(t, "")
	ex := s.Extractor()
	if ex.Name() != "secret" || ex.Version() < 1 {
		t.Errorf("Name/Version = %s/%d", ex.Name(), ex.Version())
	}
	if c, ok := ex.(inventory.Configured); !ok || c.ConfigDigest() == "" {
		t.Error("extractor does not report a config digest")
	}
	for _, tc := range []struct {
		path string
		size int64
		mode fs.FileMode
		want bool
	}{
		{"/app/.env", 100, 0o644, true},
		{"/etc/ssl/private/server.key", 1700, 0o600, true},
		{"/app/cert.p12", 2500, 0o644, true},
		{"/app/big.log", DefaultMaxFileSize + 1, 0o644, false},
		{"/app/empty", 0, 0o644, false},
		{"/usr/lib/x86_64-linux-gnu/libssl.so.3", 600000, 0o644, false},
		{"/app/logo.png", 1000, 0o644, false},
		{"/usr/share/doc/x/copyright", 1000, 0o644, false},
		{"/app/tests/key.pem", 1000, 0o644, false},
		{"/app/link", 10, fs.ModeSymlink, false},
	} {
		if got := ex.Required(inventory.FileInfo{Path: tc.path, Size: tc.size, Mode: tc.mode}); got != tc.want {
			t.Errorf("Required(%s) = %v, want %v", tc.path, got, tc.want)
		}
	}
	data := "export GITHUB_TOKEN=" + fakeGitHubToken + "\n"
	res, err := ex.Extract(context.Background(), inventory.NewInput(
		inventory.FileInfo{Path: "/root/.profile", Size: int64(len(data)), Mode: 0o644}, strings.NewReader(data), nil))
	if err != nil || len(res.Findings) != 1 || res.Findings[0].StartLine != 1 {
		t.Fatalf("Extract = %+v, %v", res, err)
	}
}

func TestPrefilter(t *testing.T) {
	kws := []string{"he", "she", "his", "hers", "://"}
	p := newPrefilter(kws)
	var got []string
	p.scan([]byte("uSHErs http://x"), func(kw, end int) { got = append(got, kws[kw]) })
	if want := "she,he,hers,://"; strings.Join(got, ",") != want {
		t.Errorf("hits = %v, want %s", got, want)
	}
}

func TestHistoryNegatives(t *testing.T) {
	s := newScanner(t, "")
	for _, line := range []string{
		"RUN /bin/sh -c find /var/lib/mysql -print0 | xargs -0 chmod 600",
		"RUN /bin/sh -c apt-get install -y default-mysql-client && mkdir -p /var/run/mysqld",
		"RUN /bin/sh -c mysql -uroot -p$MYSQL_ROOT_PASSWORD < /init.sql",
		"RUN /bin/sh -c curl --token \"$TOKEN\" https://x",
		"RUN /bin/sh -c export GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D",
		"RUN |1 PASSWORD=${PASSWORD} /bin/sh -c make",
	} {
		if fs := s.scan("", []byte(line), scopeHistory); len(fs) != 0 {
			t.Errorf("%q: %+v", line, fs)
		}
	}
}

func TestDocsListEveryRule(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "secrets.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range builtinRules() {
		if !strings.Contains(string(doc), "| `"+r.ID+"` |") {
			t.Errorf("docs/secrets.md does not list rule %s", r.ID)
		}
	}
}
