package firewall

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Direction is the way a connection is opened, seen from the container.
type Direction uint8

// Directions.
const (
	Outbound Direction = iota // the container connects out
	Inbound                   // something connects to the container
)

// String returns "out" or "in".
func (d Direction) String() string {
	if d == Inbound {
		return "in"
	}
	return "out"
}

// Protocol is a transport protocol.
type Protocol uint8

// Protocols.
const (
	AnyProtocol Protocol = 0
	TCP         Protocol = 6
	UDP         Protocol = 17
)

// String returns "tcp", "udp" or "any".
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "any"
}

// Rule allows the connections of one direction that match it.
type Rule struct {
	Direction Direction
	Protocol  Protocol
	// Remote is the peer's address range: the destination of outbound
	// connections, the source of inbound ones. Invalid means any.
	Remote netip.Prefix
	// Port is the destination port: the peer's for outbound
	// connections, the container's for inbound ones. 0 means any; a
	// port needs Protocol TCP or UDP.
	Port uint16
}

// String formats r in the syntax ParseRule reads.
func (r Rule) String() string {
	remote, port := "any", "any"
	if r.Remote.IsValid() {
		remote = r.Remote.String()
	}
	if r.Port != 0 {
		port = strconv.Itoa(int(r.Port))
	}
	return fmt.Sprintf("%s %s %s %s", r.Direction, r.Protocol, remote, port)
}

// validate checks the rule's fields.
func (r Rule) validate() error {
	if r.Direction != Outbound && r.Direction != Inbound {
		return fmt.Errorf("firewall rule %v: unknown direction %d", r, r.Direction)
	}
	if r.Protocol != AnyProtocol && r.Protocol != TCP && r.Protocol != UDP {
		return fmt.Errorf("firewall rule %v: unknown protocol %d", r, r.Protocol)
	}
	if r.Port != 0 && r.Protocol == AnyProtocol {
		return fmt.Errorf("firewall rule %v: a port needs protocol tcp or udp", r)
	}
	if r.Remote.IsValid() && r.Remote != r.Remote.Masked() {
		return fmt.Errorf("firewall rule %v: %s has host bits set (want %s)", r, r.Remote, r.Remote.Masked())
	}
	return nil
}

// ParseRule parses a rule written "<in|out> <tcp|udp|any> <cidr|any>
// <port|any>", e.g. "out tcp 192.0.2.0/24 443". A bare address is a /32
// or /128 prefix.
func ParseRule(s string) (Rule, error) {
	f := strings.Fields(s)
	if len(f) != 4 {
		return Rule{}, fmt.Errorf("firewall rule %q: want 4 fields <in|out> <tcp|udp|any> <cidr|any> <port|any>, got %d", trunc(s), len(f))
	}
	var r Rule
	switch f[0] {
	case "out":
		r.Direction = Outbound
	case "in":
		r.Direction = Inbound
	default:
		return Rule{}, fmt.Errorf("firewall rule %q: direction %q is not in or out", trunc(s), trunc(f[0]))
	}
	switch f[1] {
	case "tcp":
		r.Protocol = TCP
	case "udp":
		r.Protocol = UDP
	case "any":
	default:
		return Rule{}, fmt.Errorf("firewall rule %q: protocol %q is not tcp, udp or any", trunc(s), trunc(f[1]))
	}
	if f[2] != "any" {
		p, err := netip.ParsePrefix(f[2])
		if err != nil {
			a, aerr := netip.ParseAddr(f[2])
			if aerr != nil || a.Zone() != "" {
				return Rule{}, fmt.Errorf("firewall rule %q: %q is not an address or CIDR", trunc(s), trunc(f[2]))
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		r.Remote = p
	}
	if f[3] != "any" {
		n, err := strconv.ParseUint(f[3], 10, 16)
		if err != nil || n == 0 {
			return Rule{}, fmt.Errorf("firewall rule %q: port %q is not 1-65535", trunc(s), trunc(f[3]))
		}
		r.Port = uint16(n)
	}
	if err := r.validate(); err != nil {
		return Rule{}, err
	}
	return r, nil
}

// trunc shortens s for an error message.
func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
