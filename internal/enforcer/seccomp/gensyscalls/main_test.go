package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/mamorisec/mamori/internal/testenv"
)

const header = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"

func TestParseUnistd(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []syscall
		wantErr  string
	}{
		{"ok", "#ifndef X\n#define __NR_write 1\n#define __NR_read 0\n#endif\n", []syscall{{"read", 0}, {"write", 1}}, ""},
		{"none", "#ifndef X\n#endif\n", nil, "no #define"},
		{"bad number", "#define __NR_read zero\n", nil, "line 1"},
		{"duplicate name", "#define __NR_read 0\n#define __NR_read 1\n", nil, "duplicate syscall read"},
		{"duplicate number", "#define __NR_read 0\n#define __NR_write 0\n", nil, "line 2"},
		{"huge number", "#define __NR_read 99999999999999999999\n", nil, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseUnistd([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("parseUnistd = %v, %v; want %v", got, err, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("syscall %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestCommittedTable checks that the committed table is what the
// installed header generates.
func TestCommittedTable(t *testing.T) {
	b, err := os.ReadFile(header)
	if err != nil {
		testenv.Missing(t, "linux-libc-dev header: %v", err)
	}
	want, err := generate(b, "unistd_64.h")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../syscalls_x86_64.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("../syscalls_x86_64.go differs from what the installed header generates; run go generate in internal/enforcer/seccomp")
	}
}

func FuzzParseUnistd(f *testing.F) {
	f.Add("#define __NR_write 1\n#define __NR_read 0\n")
	f.Add("#define __NR_read zero\n")
	f.Fuzz(func(t *testing.T, s string) {
		calls, err := parseUnistd([]byte(s))
		if err == nil && len(calls) == 0 {
			t.Fatal("no syscalls and no error")
		}
		for i := 1; i < len(calls); i++ {
			if calls[i-1].nr >= calls[i].nr {
				t.Fatalf("not sorted by number: %v", calls)
			}
		}
	})
}
