package policy

import (
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
)

// System call names differ between architectures (arm64, like every
// architecture built on asm-generic, has no open, stat, fork …; its
// numbers differ too), so they are checked per architecture: a name that
// no architecture nri-armor knows has is a validation error; one that some
// lack is a warning at validation, and on a node of such an architecture
// the container a rule with it applies to is refused at creation
// (MissingSyscalls), never run with the rule silently dropped (runc skips
// a seccomp rule whose name it cannot resolve).

// SyscallArches are the architectures whose system call names nri-armor
// knows, by Go's names, sorted.
func SyscallArches() []string {
	out := make([]string, 0, len(syscallTables))
	for a := range syscallTables {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// NodeArch is this node's architecture as SyscallNumberOn names it.
func NodeArch() string { return runtime.GOARCH }

// SyscallNumberOn returns the number of a system call name on arch (Go's
// name: amd64, arm64).
func SyscallNumberOn(arch, name string) (int, bool) {
	n, ok := syscallTables[arch][strings.ToLower(strings.TrimSpace(name))]
	return n, ok
}

// SyscallNumber returns the number of a system call name on this node's
// architecture, or on x86_64 where nri-armor has no table for it.
func SyscallNumber(name string) (int, bool) {
	arch := NodeArch()
	if _, ok := syscallTables[arch]; !ok {
		arch = "amd64"
	}
	return SyscallNumberOn(arch, name)
}

// SyscallName returns the name of system call number nr on arch.
func SyscallName(arch string, nr int) (string, bool) {
	for name, n := range syscallTables[arch] {
		if n == nr {
			return name, true
		}
	}
	return "", false
}

// syscallArchesOf lists the architectures that have name, and those that lack it.
func syscallArchesOf(name string) (have, lack []string) {
	for _, a := range SyscallArches() {
		if _, ok := syscallTables[a][name]; ok {
			have = append(have, a)
		} else {
			lack = append(lack, a)
		}
	}
	return have, lack
}

// MissingSyscalls returns one error per syscall rule of rs whose system
// call arch does not have (a policy written for another architecture),
// naming the rule's policy and field.
func MissingSyscalls(rs *RuleSet, arch string) []error {
	if rs == nil {
		return nil
	}
	var out []error
	for _, r := range rs.Syscalls.Rules {
		if _, ok := SyscallNumberOn(arch, r.Match.Value); !ok {
			out = append(out, fmt.Errorf("policy %s (%s): system call %q does not exist on %s", r.Origin, r.Field, r.Match.Value, arch))
		}
	}
	return slices.Clip(out)
}
