package firewall

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/testenv"
)

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Rule
		wantErr string
	}{
		{"out tcp 192.0.2.0/24 443", Rule{Outbound, TCP, netip.MustParsePrefix("192.0.2.0/24"), 443}, ""},
		{"in udp any 53", Rule{Inbound, UDP, netip.Prefix{}, 53}, ""},
		{"out any 2001:db8::/32 any", Rule{Outbound, AnyProtocol, netip.MustParsePrefix("2001:db8::/32"), 0}, ""},
		{"out tcp 127.0.0.1 8080", Rule{Outbound, TCP, netip.MustParsePrefix("127.0.0.1/32"), 8080}, ""},
		{"out tcp ::ffff:192.0.2.1 80", Rule{Outbound, TCP, netip.MustParsePrefix("192.0.2.1/32"), 80}, ""},
		{"out tcp any", Rule{}, "want 4 fields"},
		{"up tcp any 1", Rule{}, `direction "up"`},
		{"out icmp any any", Rule{}, `protocol "icmp"`},
		{"out tcp 192.0.2.300 1", Rule{}, "not an address or CIDR"},
		{"out tcp 192.0.2.1/24 1", Rule{}, "host bits set"},
		{"out tcp any 0", Rule{}, "not 1-65535"},
		{"out tcp any 70000", Rule{}, "not 1-65535"},
		{"out any any 80", Rule{}, "needs protocol tcp or udp"},
		{"out tcp fe80::1%eth0 1", Rule{}, "not an address or CIDR"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRule(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseRule = %+v, %v; want %+v", got, err, tc.want)
			}
			if again, err := ParseRule(got.String()); err != nil || again != got {
				t.Errorf("ParseRule(%q) = %+v, %v; want round trip", got.String(), again, err)
			}
		})
	}
}

func TestPrefixMask(t *testing.T) {
	for _, tc := range []struct {
		p    string
		want []byte
	}{
		{"192.0.2.0/24", []byte{255, 255, 255, 0}},
		{"127.0.0.1/32", []byte{255, 255, 255, 255}},
		{"0.0.0.0/0", []byte{0, 0, 0, 0}},
		{"192.0.2.0/27", []byte{255, 255, 255, 0xe0}},
	} {
		if got := prefixMask(netip.MustParsePrefix(tc.p)); string(got) != string(tc.want) {
			t.Errorf("prefixMask(%s) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"out tcp 192.0.2.0/24 443", "in udp any 53", "out any 2001:db8::/32 any", "out tcp ::ffff:192.0.2.1 80", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		if err := r.validate(); err != nil {
			t.Fatalf("ParseRule(%q) = %+v, invalid: %v", s, r, err)
		}
		if again, err := ParseRule(r.String()); err != nil || again != r {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", s, again, err, r)
		}
	})
}

func TestErrors(t *testing.T) {
	if err := Apply(0, Policy{}); err == nil {
		t.Error("Apply(0) succeeded")
	}
	if err := Apply(os.Getpid(), Policy{}); err == nil || !strings.Contains(err.Error(), "host's network namespace") {
		t.Errorf("Apply to the host namespace = %v, want a refusal", err)
	}
	bad := Policy{FilterOutbound: true, Allow: []Rule{{Direction: Outbound, Port: 80}}}
	if err := Apply(1<<30, bad); err == nil || !strings.Contains(err.Error(), "needs protocol") {
		t.Errorf("Apply of an invalid rule = %v", err)
	}
}

// connect starts a one-shot server on port inside container id, connects
// to it over loopback and reports whether the message arrived.
func connect(t *testing.T, id string, port int) bool {
	t.Helper()
	p := strconv.Itoa(port)
	testenv.DockerCLI(t, nil, "exec", "-d", id, "sh", "-c", "nc -l -p "+p+" > /tmp/got"+p)
	// Wait until the server listens (state 0A in /proc/net/tcp or tcp6;
	// busybox nc listens dual-stack): on a loaded machine a fixed pause is
	// not enough, and a connection to a port nobody listens on would look
	// like a dropped one.
	listening := fmt.Sprintf(":%04X [0-9A-F]*:0000 0A", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := testenv.DockerCLIErr(t, nil, "exec", id, "grep", "-q", listening, "/proc/net/tcp", "/proc/net/tcp6"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %d in container %s", port, id)
		}
	}
	out, _ := testenv.DockerCLIErr(t, nil, "exec", id, "sh", "-c",
		"echo hello | nc -w 2 127.0.0.1 "+p+"; sleep 0.3; cat /tmp/got"+p)
	return strings.Contains(out, "hello")
}

func TestFirewallInContainer(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "entering a network namespace needs root")
	}
	id := testenv.RunContainer(t, testenv.BusyboxImage(t), nil, "sleep", "600")
	pid, err := strconv.Atoi(testenv.DockerCLI(t, nil, "inspect", "-f", "{{.State.Pid}}", id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Remove(pid) })

	if !connect(t, id, 8080) {
		t.Fatal("loopback connection fails before any firewall")
	}

	// Outbound allow-list without 8081: the connection is dropped and
	// counted.
	if err := Apply(pid, Policy{FilterOutbound: true, LogPrefix: "mamori-drop ",
		Allow: []Rule{{Direction: Outbound, Protocol: TCP, Remote: netip.MustParsePrefix("127.0.0.1/32"), Port: 9090}}}); err != nil {
		t.Fatal(err)
	}
	if connect(t, id, 8081) {
		t.Error("connection to 127.0.0.1:8081 got through an allow-list without it")
	}
	d, err := DropCounts(pid)
	if err != nil {
		t.Fatal(err)
	}
	if d.OutPackets == 0 || d.InPackets != 0 {
		t.Errorf("drops = %+v, want outbound drops only", d)
	}
	t.Logf("drops with 8081 blocked: %+v", d)

	// Both directions filtered, 8082 allowed both ways: replies pass as
	// established traffic.
	if err := Apply(pid, Policy{FilterOutbound: true, FilterInbound: true, Allow: []Rule{
		{Direction: Outbound, Protocol: TCP, Remote: netip.MustParsePrefix("127.0.0.0/8"), Port: 8082},
		{Direction: Inbound, Protocol: TCP, Port: 8082},
	}}); err != nil {
		t.Fatal(err)
	}
	if !connect(t, id, 8082) {
		t.Error("allowed connection to 127.0.0.1:8082 failed")
	}
	if connect(t, id, 8083) {
		t.Error("connection to 127.0.0.1:8083 got through")
	}
	if d, err := DropCounts(pid); err != nil || d.OutPackets == 0 {
		t.Errorf("drops after replacing the policy = %+v, %v; want fresh outbound drops", d, err)
	}

	// Removing the firewall restores the connection; removing twice is
	// fine.
	if err := Remove(pid); err != nil {
		t.Fatal(err)
	}
	if err := Remove(pid); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if !connect(t, id, 8084) {
		t.Error("connection fails after the firewall was removed")
	}
	if _, err := DropCounts(pid); err == nil {
		t.Error("DropCounts without a firewall succeeded")
	}
}
