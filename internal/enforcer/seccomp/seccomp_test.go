package seccomp

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/testenv"
)

func TestTable(t *testing.T) {
	for name, nr := range map[string]int{"read": 0, "write": 1, "mkdir": 83, "execve": 59, "mkdirat": 258} {
		if got, ok := x86_64Syscalls[name]; !ok || got != nr {
			t.Errorf("x86_64Syscalls[%q] = %d, %v; want %d", name, got, ok, nr)
		}
	}
	if Known("mkdri") || Known("") {
		t.Error("Known accepts a non-syscall")
	}
}

func TestParseNames(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		wantErr  string
	}{
		{"commas", "mkdir,mkdirat", []string{"mkdir", "mkdirat"}, ""},
		{"lines and comments", "# block dirs\nmkdir  mkdirat # both\n\nptrace\n", []string{"mkdir", "mkdirat", "ptrace"}, ""},
		{"empty", "", nil, ""},
		{"unknown", "mkdir\nmkdri\n", nil, `line 2: "mkdri"`},
		{"upper case", "MKDIR", nil, `"MKDIR"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNames(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ParseNames = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestBlock(t *testing.T) {
	p, err := Block([]string{"mkdirat", "mkdir", "mkdir"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["defaultAction"] != ActAllow || len(got["architectures"].([]any)) != 4 {
		t.Errorf("profile = %s", b)
	}
	if !slices.Equal(p.Syscalls[0].Names, []string{"mkdir", "mkdirat"}) || p.Syscalls[0].Action != ActErrno || p.Syscalls[0].ErrnoRet != 1 {
		t.Errorf("rule = %+v", p.Syscalls[0])
	}
	for _, bad := range [][]string{nil, {"mkdir", "nosuchcall"}} {
		if _, err := Block(bad); err == nil {
			t.Errorf("Block(%q) succeeded", bad)
		}
	}
}

func TestProfileInContainer(t *testing.T) {
	p, err := Block([]string{"mkdir", "mkdirat"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	img := testenv.BusyboxImage(t)
	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"with profile", []string{"--security-opt", "seccomp=" + file}, "Operation not permitted"},
		{"without profile", nil, "made"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := testenv.RunContainer(t, img, tc.flags, "sleep", "600")
			out, _ := testenv.DockerCLIErr(t, nil, "exec", id, "sh", "-c", "mkdir /tmp/x 2>&1 && echo made; true")
			if !strings.Contains(out, tc.want) {
				t.Errorf("mkdir /tmp/x %s: %q, want %q", tc.name, out, tc.want)
			}
			// Other syscalls still work.
			if out := testenv.DockerCLI(t, nil, "exec", id, "sh", "-c", "touch /tmp/f && ls /tmp"); !strings.Contains(out, "f") {
				t.Errorf("touch /tmp/f %s: %q", tc.name, out)
			}
		})
	}
}

func FuzzParseNames(f *testing.F) {
	f.Add("mkdir,mkdirat")
	f.Add("# block dirs\nmkdir  mkdirat # both\n\nptrace\n")
	f.Add("mkdri")
	f.Fuzz(func(t *testing.T, s string) {
		names, err := ParseNames(s)
		if err != nil {
			return
		}
		for _, n := range names {
			if !Known(n) {
				t.Fatalf("ParseNames(%q) returned unknown %q", s, n)
			}
		}
		if len(names) > 0 {
			if _, err := Block(names); err != nil {
				t.Fatalf("Block(ParseNames(%q)): %v", s, err)
			}
		}
	})
}
