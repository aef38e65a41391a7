package cgroupnet

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

const mixed = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: mixed, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  process:
    matchPaths:
    - path: /usr/bin/apt
  network:
    matchProtocols:
    - protocol: raw
    - protocol: tcp
      fromSource:
      - path: /usr/bin/curl
  action: Block
`

// TestBackendReportsWhatItCannotEnforce: on a node without BPF-LSM, the
// network backend enforces network rules and says which others it cannot.
func TestBackendReportsWhatItCannotEnforce(t *testing.T) {
	testenv.RequireRoot(t)
	pin := fmt.Sprintf("/sys/fs/bpf/nri-armor-cgnet-test-%d", os.Getpid())
	defer bpflsm.Unpin(pin)
	b, err := Open(bpflsm.Config{PinPath: pin, MaxContainers: 8, MaxRuleEntries: 1024, RingBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var _ enforce.Backend = b
	if b.Name() != enforce.BackendCgroupBPF || len(b.Classes()) != 1 || b.Classes()[0] != policy.ClassNetwork {
		t.Fatalf("name %s classes %v", b.Name(), b.Classes())
	}
	cg := testenv.NewCgroup(t)
	rs := policytest.Compile(t, mixed)
	rep, err := b.Apply(cg.ID, rs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range rep.Unenforced {
		got = append(got, u.Rule.Describe()+": "+u.Reason)
	}
	want := []string{
		"path /usr/bin/apt: this node has no BPF-LSM: audit only",
		// The guards of curl's name (policy/guard.go).
		"path /usr readOnly (guards a fromSource program): this node has no BPF-LSM: audit only",
		"path /usr/bin readOnly (guards a fromSource program): this node has no BPF-LSM: audit only",
		"path /usr/bin/curl readOnly (guards a fromSource program): this node has no BPF-LSM: audit only",
		"protocol raw: cgroup-BPF programs see inet sockets only: not on AF_PACKET sockets",
		"protocol tcp fromSource=/usr/bin/curl: cgroup-BPF programs cannot see the acting executable (fromSource)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("unenforced:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := b.Remove(cg.ID); err != nil {
		t.Fatal(err)
	}
}
