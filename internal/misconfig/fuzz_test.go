package misconfig

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mamorisec/mamori/internal/inventory"
)

func FuzzLintDockerfile(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.Dockerfile")
	files = append(files, filepath.Join("testdata", "docker", "Dockerfile"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{"", "FROM a\nRUN <<EOF\necho\n", "# escape=x\nFROM a\n", "FROM a\nENV A=1 B\n", "FROM\nUSER\nEXPOSE\nADD\nENV\nLABEL\nHEALTHCHECK\nARG\n", "ONBUILD RUN curl x | sh\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		findings, err := LintDockerfile("Dockerfile", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "Dockerfile") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, f := range findings {
			if f.StartLine < 1 || f.RuleID == "" || len(f.Match) > maxMatch+len("…") {
				t.Fatalf("bad finding %+v", f)
			}
		}
	})
}

func FuzzCheckImage(f *testing.F) {
	cfg := v1.ConfigFile{
		Config: v1.Config{User: "0:0", Env: []string{"A=b", "TOKEN"}, ExposedPorts: map[string]struct{}{"22/tcp": {}, "1-65535": {}}},
		History: []v1.History{
			{CreatedBy: "/bin/sh -c #(nop) ADD file:abc in / "},
			{CreatedBy: "|3 A B=c /bin/sh -c curl x | sh", EmptyLayer: true},
			{CreatedBy: "RUN |99 /bin/sh -c apt-get update # buildkit"},
		},
		RootFS: v1.RootFS{DiffIDs: []v1.Hash{{Algorithm: "sha256", Hex: "00"}}},
	}
	seed, _ := json.Marshal(cfg)
	f.Add(seed, "S3cr3tValue-0123", "/usr/bin/x", uint32(0o4755), 0)
	f.Add([]byte(`{"config":{"Healthcheck":{"Test":[]}},"history":[{"empty_layer":true}]}`), "x", "/var/lib/apt/lists/a", uint32(0o644), -1)
	f.Add([]byte(`null`), "", "/root/.cache/pip/", uint32(0o777), 1<<30)
	f.Fuzz(func(t *testing.T, cfgJSON []byte, secret, path string, mode uint32, layer int) {
		cfg, err := v1.ParseConfigFile(bytes.NewReader(cfgJSON))
		if err != nil {
			cfg = &v1.ConfigFile{}
		}
		cfg.Config.Env = append(cfg.Config.Env, "DB_PASSWORD="+secret)
		cfg.History = append(cfg.History, v1.History{CreatedBy: "|1 API_TOKEN=" + secret + " /bin/sh -c make"})
		fi := inventory.FileInfo{Path: path, Size: 1, Mode: fs.FileMode(mode)}
		rep := &inventory.Report{Findings: []inventory.Finding{{Kind: inventory.KindMisconfig, Source: inventory.SourceFile, RuleID: PackageCache, Path: path}}}
		if (Files{}).Required(fi) {
			for _, f := range fileFindings(fi) {
				f.Layer.Index = layer
				rep.Findings = append(rep.Findings, f)
			}
		}
		// A secret that cannot be confused with the rest of the text must
		// never show up in the secret findings.
		checkable := len(secret) >= 12 && !strings.ContainsAny(secret, " \t\r\n\"'`$\\=") && !isPlaceholder(secret)
		for _, f := range CheckImage(cfg, rep) {
			if f.Kind != inventory.KindMisconfig || f.RuleID == "" {
				t.Fatalf("bad finding %+v", f)
			}
			if checkable && f.RuleID == SecretEnv && (f.Path == "DB_PASSWORD" || f.Path == "API_TOKEN") &&
				(strings.Contains(f.Match, secret) || strings.Contains(f.Layer.CreatedBy, secret)) {
				t.Fatalf("secret %q in finding %+v", secret, f)
			}
		}
	})
}
