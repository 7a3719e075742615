package bpf

// The generated exec_bpfel.go and exec_bpfel.o are committed, so building
// mamori needs no clang. Regenerate after editing c/ (needs clang-14,
// llvm-14 and libbpf-dev for bpf/bpf_helpers.h):
//
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-14 -strip llvm-strip-14 -target bpfel -go-package bpf exec c/exec.bpf.c -- -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
