// Package firewall applies an allow-list firewall to a running container:
// nftables rules in the container's own network namespace (entered through
// /proc/<pid>/ns/net), so that they follow the container's traffic and
// touch nothing of the host's. A filtered direction lets through only
// replies to accepted connections and connections matching an allow rule;
// everything else is counted, optionally logged, and dropped.
//
// The rules live in one table, "mamori" (family inet), which Apply
// replaces atomically and Remove deletes. They stay in the kernel when the
// enforcer exits and disappear with the container's network namespace.
package firewall

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is the nftables table holding a container's firewall.
const TableName = "mamori"

// Chain names.
const (
	chainIn  = "inbound"
	chainOut = "outbound"
)

// Policy is a container's firewall.
type Policy struct {
	// FilterInbound and FilterOutbound turn the allow-list on for a
	// direction; an unfiltered direction is left open.
	FilterInbound, FilterOutbound bool
	// Allow lists the connections let through in filtered directions.
	Allow []Rule
	// LogPrefix, when set, logs each dropped packet with this prefix
	// (the kernel logs from container namespaces only when
	// net.netfilter.nf_log_all_netns is 1).
	LogPrefix string
}

// Drops counts the packets dropped by a container's firewall.
type Drops struct {
	InPackets, InBytes   uint64
	OutPackets, OutBytes uint64
}

// Apply replaces the firewall of the container whose process is pid with
// p, atomically.
func Apply(pid int, p Policy) error {
	for _, r := range p.Allow {
		if err := r.validate(); err != nil {
			return fmt.Errorf("firewall of process %d: %w", pid, err)
		}
	}
	if len(p.LogPrefix) > 127 {
		return fmt.Errorf("firewall of process %d: log prefix longer than 127 bytes", pid)
	}
	return withConn(pid, func(c *nftables.Conn) error {
		t := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
		// Add, delete and add again: the batch then neither fails on
		// a missing table nor keeps old rules.
		c.AddTable(t)
		c.DelTable(t)
		c.AddTable(t)
		accept := nftables.ChainPolicyAccept
		for _, d := range []struct {
			name   string
			hook   *nftables.ChainHook
			filter bool
			dir    Direction
		}{
			{chainIn, nftables.ChainHookInput, p.FilterInbound, Inbound},
			{chainOut, nftables.ChainHookOutput, p.FilterOutbound, Outbound},
		} {
			ch := c.AddChain(&nftables.Chain{Name: d.name, Table: t, Type: nftables.ChainTypeFilter,
				Hooknum: d.hook, Priority: nftables.ChainPriorityFilter, Policy: &accept})
			if !d.filter {
				continue
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: establishedExprs()})
			for _, r := range p.Allow {
				if r.Direction == d.dir {
					c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: ruleExprs(r)})
				}
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: dropExprs(p.LogPrefix)})
		}
		return c.Flush()
	})
}

// Remove deletes the firewall of the container whose process is pid. A
// container without one is not an error.
func Remove(pid int) error {
	return withConn(pid, func(c *nftables.Conn) error {
		t := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
		c.AddTable(t)
		c.DelTable(t)
		return c.Flush()
	})
}

// DropCounts returns the packets dropped so far by the firewall of the
// container whose process is pid; it fails when the container has none.
func DropCounts(pid int) (Drops, error) {
	var d Drops
	err := withConn(pid, func(c *nftables.Conn) error {
		t, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet)
		if err != nil {
			return fmt.Errorf("no firewall table %s: %w", TableName, err)
		}
		for _, name := range []string{chainIn, chainOut} {
			rules, err := c.GetRules(t, &nftables.Chain{Name: name, Table: t})
			if err != nil {
				return fmt.Errorf("list chain %s: %w", name, err)
			}
			for _, r := range rules {
				for _, e := range r.Exprs {
					if ctr, ok := e.(*expr.Counter); ok {
						if name == chainIn {
							d.InPackets, d.InBytes = ctr.Packets, ctr.Bytes
						} else {
							d.OutPackets, d.OutBytes = ctr.Packets, ctr.Bytes
						}
					}
				}
			}
		}
		return nil
	})
	return d, err
}

// withConn runs f with an nftables connection into the network namespace
// of process pid.
func withConn(pid int, f func(*nftables.Conn) error) error {
	if pid <= 0 {
		return fmt.Errorf("firewall of process %d: invalid pid", pid)
	}
	nsPath := "/proc/" + strconv.Itoa(pid) + "/ns/net"
	ns, err := os.Open(nsPath)
	if err != nil {
		return fmt.Errorf("firewall of process %d: open network namespace: %w", pid, err)
	}
	defer ns.Close()
	var self, target unix.Stat_t
	if err := unix.Fstat(int(ns.Fd()), &target); err != nil {
		return fmt.Errorf("firewall of process %d: %s: %w", pid, nsPath, err)
	}
	if err := unix.Stat("/proc/self/ns/net", &self); err == nil && self.Ino == target.Ino && self.Dev == target.Dev {
		return fmt.Errorf("firewall of process %d: it shares the host's network namespace (--network host?); refusing to change the host's rules", pid)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Fd())))
	if err != nil {
		return fmt.Errorf("firewall of process %d: nftables: %w", pid, err)
	}
	if err := f(c); err != nil {
		return fmt.Errorf("firewall of process %d: %w", pid, err)
	}
	return nil
}

// establishedExprs accepts packets of accepted connections.
func establishedExprs() []expr.Any {
	mask := make([]byte, 4)
	binary.NativeEndian.PutUint32(mask, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// ruleExprs accepts the packets r matches.
func ruleExprs(r Rule) []expr.Any {
	var es []expr.Any
	if r.Remote.IsValid() {
		a := r.Remote.Addr()
		proto, off := byte(unix.NFPROTO_IPV4), uint32(12) // IPv4 saddr
		if a.Is6() {
			proto, off = unix.NFPROTO_IPV6, 8 // IPv6 saddr
		}
		if r.Direction == Outbound {
			off += uint32(len(a.AsSlice())) // daddr follows saddr
		}
		es = append(es,
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(len(a.AsSlice()))},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(a.AsSlice())), Mask: prefixMask(r.Remote), Xor: make([]byte, len(a.AsSlice()))},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
		)
	}
	if r.Protocol != AnyProtocol {
		es = append(es,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(r.Protocol)}},
		)
	}
	if r.Port != 0 {
		port := make([]byte, 2)
		binary.BigEndian.PutUint16(port, r.Port)
		es = append(es,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, // destination port
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port},
		)
	}
	return append(es, &expr.Verdict{Kind: expr.VerdictAccept})
}

// dropExprs counts, optionally logs, and drops.
func dropExprs(logPrefix string) []expr.Any {
	es := []expr.Any{&expr.Counter{}}
	if logPrefix != "" {
		es = append(es, &expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte(logPrefix)})
	}
	return append(es, &expr.Verdict{Kind: expr.VerdictDrop})
}

// prefixMask returns the network mask of p as bytes.
func prefixMask(p netip.Prefix) []byte {
	m := make([]byte, p.Addr().BitLen()/8)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}
