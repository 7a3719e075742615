package procfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnescapeMountinfo(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/var/lib/docker", "/var/lib/docker"},
		{`/mnt/with\040space`, "/mnt/with space"},
		{`/a\011b\134c`, "/a\tb\\c"},
		{`/bad\09x`, `/bad\09x`},
		{`/end\04`, `/end\04`},
		{`\`, `\`},
	} {
		if got := UnescapeMountinfo(tc.in); got != tc.want {
			t.Errorf("UnescapeMountinfo(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(p, 10); err != nil || string(b) != "0123456789" {
		t.Errorf("ReadFile at the limit: %q %v", b, err)
	}
	if _, err := ReadFile(p, 9); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadFile over the limit: %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing"), 9); err == nil {
		t.Error("ReadFile of a missing file succeeded")
	}
}

func FuzzUnescapeMountinfo(f *testing.F) {
	for _, s := range []string{"/a", `/a\040b`, `\`, `\777`, `\0`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := UnescapeMountinfo(s); len(got) > len(s) {
			t.Fatalf("UnescapeMountinfo(%q) grew to %q", s, got)
		}
	})
}
