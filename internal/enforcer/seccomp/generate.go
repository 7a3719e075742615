package seccomp

//go:generate go run ./gensyscalls -o syscalls_x86_64.go /usr/include/x86_64-linux-gnu/asm/unistd_64.h
