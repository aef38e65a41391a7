package policy_test

import (
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/policy"
)

// Spot checks of the generated tables against the kernel's numbers.
func TestSyscallTables(t *testing.T) {
	for _, c := range []struct {
		arch, name string
		nr         int
		ok         bool
	}{
		{"amd64", "openat", 257, true},
		{"amd64", "open", 2, true},
		{"amd64", "clone3", 435, true},
		{"arm64", "openat", 56, true},
		{"arm64", "getppid", 173, true},
		{"arm64", "fcntl", 25, true},      // asm-generic's __NR3264_fcntl
		{"arm64", "newfstatat", 79, true}, // __NR3264_fstatat
		{"arm64", "renameat", 38, true},   // __ARCH_WANT_RENAMEAT
		{"arm64", "clone3", 435, true},    // __ARCH_WANT_SYS_CLONE3
		{"arm64", "open", 0, false},
		{"arm64", "fork", 0, false},
		{"riscv", "openat", 0, false},
	} {
		nr, ok := policy.SyscallNumberOn(c.arch, c.name)
		if nr != c.nr || ok != c.ok {
			t.Errorf("%s %s: %d %v, want %d %v", c.arch, c.name, nr, ok, c.nr, c.ok)
		}
	}
	if name, ok := policy.SyscallName("arm64", 56); !ok || name != "openat" {
		t.Errorf("arm64 56 = %q %v", name, ok)
	}
	if got := strings.Join(policy.SyscallArches(), ","); got != "amd64,arm64" {
		t.Errorf("arches %s", got)
	}
}

// A policy written for x86_64 names calls arm64 lacks: on an arm64 node
// each such rule is an error naming the policy and the field.
func TestMissingSyscalls(t *testing.T) {
	rs := policytest.Compile(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: old, namespace: ns}
spec:
  selector: {matchLabels: {app: a}}
  syscalls:
    matchSyscalls:
    - syscall: [open, openat]
  action: Block
`)
	if errs := policy.MissingSyscalls(rs, "amd64"); len(errs) != 0 {
		t.Errorf("amd64: %v", errs)
	}
	errs := policy.MissingSyscalls(rs, "arm64")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `KubeArmorPolicy/ns/old (spec.syscalls.matchSyscalls[0]): system call "open" does not exist on arm64`) {
		t.Errorf("arm64: %v", errs)
	}
}
