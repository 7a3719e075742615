package fim

import (
	"strings"
	"testing"
)

func FuzzSearchDirs(f *testing.F) {
	for _, s := range []string{"/etc/**", "/etc/passwd\n/etc/ssl/*.pem", "passwd", "/**", "/a/[b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, d := range searchDirs(strings.Split(s, "\n")) {
			if !strings.HasPrefix(d, "/") {
				t.Fatalf("searchDirs(%q) gave relative %q", s, d)
			}
		}
	})
}
