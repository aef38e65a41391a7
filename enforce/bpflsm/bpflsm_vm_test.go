//go:build vmtest

package bpflsm

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/internal/vmtest"
)

const p = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: p, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  file:
    matchPaths:
    - path: /tmp/bl/secret
    matchPatterns:
    - pattern: /tmp/bl/[^ab]*
  syscalls:
    matchSyscalls:
    - syscall: [ptrace]
  action: Block
`

// TestBackend: the BPF-LSM backend, through the enforce.Backend interface,
// blocks a real read by a real process in a real cgroup, and reports the
// rules it leaves to others (syscalls) or to user space (a [] pattern).
func TestBackend(t *testing.T) {
	vmtest.RequireLSM(t, "bpf")
	pin := fmt.Sprintf("/sys/fs/bpf/nri-armor-bpflsm-test-%d", os.Getpid())
	defer Unpin(pin)
	var b enforce.Backend
	lsm, err := Open(Config{PinPath: pin, MaxContainers: 8, MaxRuleEntries: 1024, RingBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	b = lsm
	defer b.Close()
	cg := testenv.NewCgroup(t)
	os.MkdirAll("/tmp/bl", 0o755)
	os.WriteFile("/tmp/bl/secret", []byte("s"), 0o644)

	rs := policytest.Compile(t, p)
	rep, err := b.Apply(cg.ID, rs)
	if err != nil {
		t.Fatal(err)
	}
	var un []string
	for _, u := range rep.Unenforced {
		un = append(un, u.Rule.Describe())
	}
	if strings.Join(un, ";") != "pattern /tmp/bl/[^ab]*;syscall ptrace" && strings.Join(un, ";") != "syscall ptrace;pattern /tmp/bl/[^ab]*" {
		t.Fatalf("unenforced: %v", un)
	}
	cat := func() string {
		cmd := exec.Command("/bin/busybox", "cat", "/tmp/bl/secret")
		cg.Into(cmd)
		out, _ := cmd.CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	if got := cat(); !strings.Contains(got, "Operation not permitted") {
		t.Fatalf("cat of the blocked file in the cgroup: %q", got)
	}
	if err := b.Remove(cg.ID); err != nil {
		t.Fatal(err)
	}
	if got := cat(); got != "s" {
		t.Fatalf("after Remove: %q", got)
	}
}
