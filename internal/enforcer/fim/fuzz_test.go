package fim

import (
	"strings"
	"testing"
)

func FuzzDecodeEvents(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 24))
	good := []byte{24, 0, 0, 0, 3, 0, 24, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 9, 0, 0, 0}
	f.Add(good)
	f.Add(append(append([]byte{}, good...), good...))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := decodeEvents(b)
		if err == nil && len(evs)*metadataSize > len(b) {
			t.Fatalf("%d events from %d bytes", len(evs), len(b))
		}
	})
}

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
