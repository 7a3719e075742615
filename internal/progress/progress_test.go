package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestBar(t *testing.T) {
	var buf bytes.Buffer
	b := newBar(&buf)
	b.LayerStart(0, 2, "sha256:0123456789abcdef0123", false)
	b.LayerStart(1, 2, "sha256:fedcba9876543210fedc", true)
	b.LayerDone(1)
	b.Entries(0, 256)
	b.LayerDone(0)
	b.Finish()
	out := buf.String()
	for _, want := range []string{"layers 0/2 (0 cached)", "0123456789ab", "layers 1/2 (1 cached)", "layers 2/2 (1 cached)", "\r\033[K"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%q", want, out)
		}
	}
}

func TestNotATerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if New(f) != nil {
		t.Error("New returned a bar for a regular file; piped output must stay quiet")
	}
}
