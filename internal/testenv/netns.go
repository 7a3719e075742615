package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// HostPair is two test hosts: network namespaces joined by a veth pair,
// with addresses only inside them (the root namespace gets nothing, so the
// machine's own network is never shadowed).
type HostPair struct {
	// A and B are the namespaces' names (for `ip netns exec`); AddrA and
	// AddrB their addresses on the veth pair.
	A, B         string
	AddrA, AddrB string
}

// NetnsPair creates two network namespaces named after prefix and the test
// process, joins them with a veth pair, gives them addrA and addrB (a /24)
// and brings the links up; everything is removed when the test ends. It
// needs root and iproute2's `ip` (Missing otherwise). Use addresses from a
// range the machine does not use, such as 198.18.0.0/15 (RFC 2544).
func NetnsPair(t testing.TB, prefix, addrA, addrB string) HostPair {
	t.Helper()
	ip := NeedCommand(t, "ip")
	if os.Geteuid() != 0 {
		Missing(t, "network namespaces need root")
	}
	pid := os.Getpid() % 100000
	p := HostPair{A: fmt.Sprintf("%s-a-%d", prefix, pid), B: fmt.Sprintf("%s-b-%d", prefix, pid), AddrA: addrA, AddrB: addrB}
	linkA, linkB := fmt.Sprintf("mva%d", pid), fmt.Sprintf("mvb%d", pid)
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	for _, ns := range []string{p.A, p.B} {
		sh("netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command(ip, "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("removing namespace %s: %v\n%s", ns, err, out)
			}
		})
	}
	sh("link", "add", linkA, "type", "veth", "peer", "name", linkB)
	// Deleting a namespace deletes the veth in it; this covers a failure
	// before the links moved.
	t.Cleanup(func() { exec.Command(ip, "link", "del", linkA).Run() })
	sh("link", "set", linkA, "netns", p.A)
	sh("link", "set", linkB, "netns", p.B)
	sh("-n", p.A, "addr", "add", addrA+"/24", "dev", linkA)
	sh("-n", p.B, "addr", "add", addrB+"/24", "dev", linkB)
	for _, ns := range []string{p.A, p.B} {
		sh("-n", ns, "link", "set", "lo", "up")
	}
	sh("-n", p.A, "link", "set", linkA, "up")
	sh("-n", p.B, "link", "set", linkB, "up")
	return p
}

// ListenInNetns listens on addr inside the named network namespace: a
// goroutine locked to its thread enters the namespace and listens; the
// thread is then discarded (the goroutine exits locked), so no other
// goroutine ever runs in the namespace.
func ListenInNetns(ns, addr string) (net.Listener, error) {
	type result struct {
		lis net.Listener
		err error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		f, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			c <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			c <- result{err: fmt.Errorf("entering network namespace %s: %w", ns, err)}
			return
		}
		lis, err := net.Listen("tcp", addr)
		c <- result{lis, err}
	}()
	r := <-c
	return r.lis, r.err
}
