package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzSecrets are fake secrets the ScanBytes fuzz target plants in its
// input; no finding's Match may hold a secret a rule matched.
var fuzzSecrets = []string{
	fakeGitHubToken,
	"AKIAQ2BKVXJ7MJ4NWE3R",
	"Wq7vLp2xZ9mKc4Rt",
	"MIIEpAIBAAKCAQEAz8Lk2Vb7Qw9Xt4Rn6Ym1Pj3Hc5Fd0Ga8Ke2Js7Lu4Nv9Ow1",
}

// fuzzTemplates place a planted secret (%s) the way files hold them.
var fuzzTemplates = []string{
	"TOKEN=%s\n",
	"postgres://app:%s@db.internal:5432/app\n",
	"-----BEGIN RSA PRIVATE KEY-----\n%s\n-----END RSA PRIVATE KEY-----\n",
	`{"password": "%s"}`,
	"aws_secret_access_key = %s\n",
}

func FuzzScanBytes(f *testing.F) {
	entries, _ := os.ReadDir(filepath.Join("testdata", "corpus", "app"))
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join("testdata", "corpus", "app", e.Name())); err == nil && !e.IsDir() {
			f.Add("/app/"+e.Name(), b, uint(0), uint(0), uint(0))
		}
	}
	f.Add("/app/.env", []byte("A=1\nB=2\n"), uint(3), uint(1), uint(0))
	f.Add("/root/.bash_history", []byte("ls\n"), uint(1), uint(2), uint(2))
	s, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path string, data []byte, pos, which, tmpl uint) {
		sec := fuzzSecrets[which%uint(len(fuzzSecrets))]
		planted := strings.ReplaceAll(fuzzTemplates[tmpl%uint(len(fuzzTemplates))], "%s", sec)
		p := int(pos % uint(len(data)+1))
		in := append(append(append([]byte{}, data[:p]...), planted...), data[p:]...)
		// Every secret a rule matched, reported or dropped as a duplicate.
		var found []string
		for _, c := range s.candidates(path, in, fileScope(path)) {
			found = append(found, string(in[c.s0:c.s1]))
		}
		for _, fd := range s.ScanBytes(path, in) {
			for _, sec := range found {
				if strings.Contains(fd.Match, sec) {
					t.Fatalf("Match %q holds %q", fd.Match, sec)
				}
			}
			if len(fd.Match) > 1024 {
				t.Fatalf("Match is %d bytes", len(fd.Match))
			}
			if fd.StartLine < 0 || fd.EndLine < fd.StartLine {
				t.Fatalf("lines %d-%d", fd.StartLine, fd.EndLine)
			}
		}
	})
}

func FuzzParseRulesFile(f *testing.F) {
	f.Add([]byte("rules:\n  - id: a\n    keywords: [k]\n    regex: 'k(.+)'\n    secretGroup: 1\ndisableRules: [jwt]\nallowPaths: ['^/x']\nallowRegexes: ['y']\n"))
	f.Add([]byte("rules:\n  - {id: r1, keywords: [a], regex: '(a'}"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rf, err := ParseRulesFile(data)
		if err != nil {
			return
		}
		s := &Scanner{rules: builtinRules(), maxSize: DefaultMaxFileSize}
		if err := s.apply(rf); err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		s.compile()
		s.ScanBytes("/x", data)
	})
}
