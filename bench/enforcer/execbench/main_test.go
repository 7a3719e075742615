package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr string
	}{
		{in: "42 (exec bench) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0", want: 12},
		{in: "42 (a) b) R 1 1 1 0 -1 0 0 0 0 0 1 2 0", want: 3},
		{in: "42 exec", wantErr: "no ')'"},
		{in: "42 (x) S 1 2", wantErr: "fields"},
		{in: "42 (x) S 1 1 1 0 -1 0 0 0 0 0 a 2 0", wantErr: "utime/stime"},
	}
	for _, tt := range tests {
		got, err := parseStatCPU(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseStatCPU(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseStatCPU(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "Name:\tx\nVmRSS:\t  18432 kB\nThreads: 5\n", want: 18432},
		{in: "Name: x\n", wantErr: true},
		{in: "VmRSS: 12 MB\n", wantErr: true},
		{in: "VmRSS: -1 kB\n", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseStatusRSS(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseStatusRSS(%q) = %d, %v; want %d err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseProc(f *testing.F) {
	f.Add("42 (exec bench) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0")
	f.Add("VmRSS:\t  18432 kB\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseStatCPU(s)
		if n, err := parseStatusRSS(s); err == nil && n < 0 {
			t.Fatalf("negative RSS %d", n)
		}
	})
}

// TestTinyELF execs the generated binary: the kernel must accept it and it
// must exit 0.
func TestTinyELF(t *testing.T) {
	p := filepath.Join(t.TempDir(), "true")
	if err := os.WriteFile(p, tinyELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(p).Run(); err != nil {
		t.Fatalf("exec tiny ELF: %v", err)
	}
	if err := execOnce(p, []string{"true"}); err != nil {
		t.Fatal(err)
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
