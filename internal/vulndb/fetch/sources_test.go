package fetch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultSources(t *testing.T) {
	srcs := DefaultSources()
	seen := map[string]bool{}
	for _, s := range srcs {
		if err := s.Validate(); err != nil {
			t.Error(err)
		}
		if seen[s.Name] {
			t.Errorf("duplicate name %s", s.Name)
		}
		seen[s.Name] = true
	}
	want := map[string]string{
		"osv-debian":                   OSVBaseURL + "/Debian/all.zip",
		"osv-red-hat":                  OSVBaseURL + "/Red%20Hat/all.zip",
		"osv-crates.io":                OSVBaseURL + "/crates.io/all.zip",
		"osv-rocky-linux":              OSVBaseURL + "/Rocky%20Linux/all.zip",
		"alpine-secdb-v3.20-main":      AlpineSecDBBaseURL + "/v3.20/main.yaml",
		"alpine-secdb-v3.22-community": AlpineSecDBBaseURL + "/v3.22/community.yaml",
	}
	for _, s := range srcs {
		if u, ok := want[s.Name]; ok {
			if s.URL != u {
				t.Errorf("%s: url %s, want %s", s.Name, s.URL, u)
			}
			delete(want, s.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing defaults: %v", want)
	}
}

func TestLoadSources(t *testing.T) {
	srcs, err := LoadSources("testdata/sources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != len(DefaultSources())+1 {
		t.Errorf("%d sources, want the defaults plus one", len(srcs))
	}
	byName := map[string]Source{}
	for _, s := range srcs {
		byName[s.Name] = s
	}
	if s := byName["osv-debian"]; s.URL != "https://mirror.example/osv/Debian/all.zip" || s.SHA256URL == "" {
		t.Errorf("osv-debian not replaced: %+v", s)
	}
	if s := byName["local-advisories"]; s.Format != FormatOSVJSON || s.MaxSize != 10<<20 {
		t.Errorf("local-advisories: %+v", s)
	}
	if _, err := LoadSources("testdata/missing.yaml"); err == nil {
		t.Error("want an error for a missing file")
	}
}

func TestLoadSourcesErrors(t *testing.T) {
	const ok = "  - name: a\n    url: https://x.example/a.zip\n    format: osv-zip\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "no sources"},
		{"no sources", "include_defaults: false\n", "no sources"},
		{"not a mapping", "- a\n", "line 1: want a mapping"},
		{"unknown top key", "source:\n" + ok, `line 1: unknown key "source"`},
		{"sources not a list", "sources: x\n", "line 1: sources: want a list"},
		{"bad bool", "include_defaults: maybe\nsources:\n" + ok, "line 1: include_defaults"},
		{"unknown source key", "sources:\n" + ok + "    mirror: y\n", `sources[0]: line 5: unknown key "mirror"`},
		{"missing name", "sources:\n  - url: https://x.example/a.zip\n    format: osv-zip\n", "sources[0]: line 2: source has no name"},
		{"bad name", "sources:\n  - name: ../a\n    url: https://x.example/a.zip\n    format: osv-zip\n", `invalid source name "../a"`},
		{"missing url", "sources:\n  - name: a\n    format: osv-zip\n", "url: missing"},
		{"file url", "sources:\n  - name: a\n    url: file:///a.zip\n    format: osv-zip\n", "not an http or https URL"},
		{"missing format", "sources:\n  - name: a\n    url: https://x.example/a.zip\n", "missing format"},
		{"bad format", "sources:\n  - name: a\n    url: https://x.example/a.zip\n    format: zip\n", `unknown format "zip"`},
		{"bad size", "sources:\n" + ok + "    max_size: big\n", `line 5: max_size: invalid value "big"`},
		{"duplicate key", "sources:\n" + ok + "    url: [a]\n", `key "url" given twice`},
		{"map value", "sources:\n  - name: {a: b}\n", "line 2: name: want a single value"},
		{"duplicate top key", "sources:\n" + ok + "sources:\n" + ok, `line 5: key "sources" given twice`},
		{"duplicate name", "sources:\n" + ok + ok, `sources[1]: name "a" is already used by sources[0]`},
		{"item not a mapping", "sources:\n  - a\n", "sources[0]: line 2: want a mapping"},
		{"syntax", "sources: [\n", "yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "sources.yaml")
			if err := os.WriteFile(p, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadSources(p)
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), p+": ") {
				t.Errorf("error %q: want %s: ...%s...", err, p, tt.want)
			}
		})
	}
}

func FuzzParseSources(f *testing.F) {
	b, err := os.ReadFile("testdata/sources.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("sources:\n  - name: a\n    url: https://x.example/a.zip\n    format: osv-zip\n    max_size: 12\n"))
	f.Add([]byte("sources: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		srcs, err := parseSources(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, s := range srcs {
			if err := s.Validate(); err != nil {
				t.Errorf("accepted an invalid source: %v", err)
			}
			if seen[s.Name] {
				t.Errorf("accepted duplicate name %s", s.Name)
			}
			seen[s.Name] = true
		}
	})
}
