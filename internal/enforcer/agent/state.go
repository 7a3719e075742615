package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mamorisec/mamori/internal/enforcer/firewall"
	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/runtimepolicy"
)

// stateFile is what the agent changed in the kernel that outlives it, so
// that a restarted agent can undo it.
type stateFile struct {
	// Pids maps a pids cgroup directory whose pids.max the agent set to
	// the value it had before (-1: no limit).
	Pids map[string]int64 `json:"pids"`
	// Firewalls are the ids of the containers the agent put a firewall
	// table in, with the pid it entered.
	Firewalls map[string]int `json:"firewalls"`
	// Locks are the containers whose files the agent made read-only
	// (fileIntegrity blockWrites), by id.
	Locks map[string]fimLock `json:"locks,omitempty"`
}

const stateName = "enforcer-state.json"

func loadState(dir string) (stateFile, error) {
	s := stateFile{Pids: map[string]int64{}, Firewalls: map[string]int{}, Locks: map[string]fimLock{}}
	f, err := os.Open(filepath.Join(dir, stateName))
	if os.IsNotExist(err) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	defer f.Close()
	data, err := inventory.ReadAllLimited(io.Reader(f), 16<<20)
	if err != nil {
		return s, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return stateFile{Pids: map[string]int64{}, Firewalls: map[string]int{}, Locks: map[string]fimLock{}}, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if s.Pids == nil {
		s.Pids = map[string]int64{}
	}
	if s.Firewalls == nil {
		s.Firewalls = map[string]int{}
	}
	if s.Locks == nil {
		s.Locks = map[string]fimLock{}
	}
	return s, nil
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func saveState(dir string, s stateFile) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, stateName), data)
}

// firewallPolicy converts the firewalls in force to the one nftables
// allow-list the firewall package applies. Only enforce-mode firewalls are
// applied (audit mode would need rules that log without dropping); when
// several apply, only an identical set of rules can be expressed as one
// allow-list, so ok is false and note says why when they differ.
func firewallPolicy(fws []runtimepolicy.FirewallRules) (p firewall.Policy, ok bool, note string) {
	var enforce []runtimepolicy.FirewallRules
	for _, f := range fws {
		if f.Mode == runtimepolicy.Enforce {
			enforce = append(enforce, f)
		}
	}
	if len(enforce) == 0 {
		if len(fws) > 0 {
			return p, false, "audit-mode firewall is not applied (nftables rules only drop)"
		}
		return p, false, ""
	}
	first, _ := json.Marshal(enforce[0])
	for _, f := range enforce[1:] {
		f.Policy = enforce[0].Policy
		other, _ := json.Marshal(f)
		if string(other) != string(first) {
			return p, false, fmt.Sprintf("firewalls of policies %q and %q differ: their intersection is not applied", enforce[0].Policy, f.Policy)
		}
	}
	f := enforce[0]
	p.FilterOutbound, p.FilterInbound = f.OutboundSet, f.InboundSet
	p.LogPrefix = "mamori-drop "
	conv := func(dir firewall.Direction, rs []runtimepolicy.Rule) {
		for _, r := range rs {
			fr := firewall.Rule{Direction: dir}
			switch r.Proto {
			case "tcp":
				fr.Protocol, fr.Port = firewall.TCP, uint16(r.Port)
			case "udp":
				fr.Protocol, fr.Port = firewall.UDP, uint16(r.Port)
			default:
				fr.Remote = r.Prefix
			}
			p.Allow = append(p.Allow, fr)
		}
	}
	conv(firewall.Outbound, f.Outbound)
	conv(firewall.Inbound, f.Inbound)
	return p, true, ""
}
