// Package seccomp writes seccomp profiles that block chosen syscalls in a
// container, in the JSON format Docker's --security-opt seccomp=<file>
// reads (which carries the OCI runtime spec's linux.seccomp fields). The
// profile allows every syscall except the blocked ones, which fail with
// EPERM, on x86_64 (with its x86 and x32 ABIs) and aarch64.
//
// Syscall names are checked against the x86_64 table generated from the
// kernel's asm/unistd_64.h (see gensyscalls), so that a misspelt name is an
// error instead of a silently ineffective rule.
package seccomp

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Actions and architectures, as spelt in profiles.
const (
	ActAllow = "SCMP_ACT_ALLOW"
	ActErrno = "SCMP_ACT_ERRNO"
)

// Architectures lists the architectures a profile applies to.
var Architectures = []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"}

// errnoEPERM is the errno a blocked syscall returns.
const errnoEPERM = 1

// maxNames bounds the names accepted by ParseNames.
const maxNames = 4096

// Profile is a seccomp profile.
type Profile struct {
	DefaultAction string   `json:"defaultAction"`
	Architectures []string `json:"architectures"`
	Syscalls      []Rule   `json:"syscalls"`
}

// Rule applies Action to the syscalls in Names.
type Rule struct {
	Names    []string `json:"names"`
	Action   string   `json:"action"`
	ErrnoRet uint     `json:"errnoRet,omitempty"`
}

// Known reports whether name is an x86_64 syscall.
func Known(name string) bool {
	_, ok := x86_64Syscalls[name]
	return ok
}

// Block returns a profile that allows everything but the syscalls in
// names, which fail with EPERM. Every name must be a known syscall;
// duplicates are merged.
func Block(names []string) (*Profile, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("seccomp profile: no syscalls to block")
	}
	set := map[string]bool{}
	for _, n := range names {
		if !Known(n) {
			return nil, fmt.Errorf("seccomp profile: %q is not an x86_64 syscall name", n)
		}
		set[n] = true
	}
	blocked := make([]string, 0, len(set))
	for n := range set {
		blocked = append(blocked, n)
	}
	sort.Strings(blocked)
	return &Profile{
		DefaultAction: ActAllow,
		Architectures: append([]string(nil), Architectures...),
		Syscalls:      []Rule{{Names: blocked, Action: ActErrno, ErrnoRet: errnoEPERM}},
	}, nil
}

// JSON returns the profile as indented JSON, ready for a file given to
// docker run --security-opt seccomp=<file>.
func (p *Profile) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseNames parses a list of syscall names separated by commas, spaces
// or newlines; "#" starts a comment to the end of the line. Each name must
// be a known syscall; the error names the first bad one and its line.
func ParseNames(s string) ([]string, error) {
	var names []string
	for i, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			if !Known(f) {
				return nil, fmt.Errorf("syscall list line %d: %q is not an x86_64 syscall name", i+1, truncate(f))
			}
			if len(names) == maxNames {
				return nil, fmt.Errorf("syscall list line %d: more than %d names", i+1, maxNames)
			}
			names = append(names, f)
		}
	}
	return names, nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
