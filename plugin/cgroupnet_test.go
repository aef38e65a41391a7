package plugin

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/enforce/cgroupnet"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

// raw has the process open a raw socket and returns "ok" or the errno name.
func (p *proc) raw(t *testing.T) string {
	t.Helper()
	if _, err := io.WriteString(p.in, "raw\n"); err != nil {
		t.Fatal(err)
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

// TestCgroupNetEndToEnd: with the real cgroup-BPF backend, a real process in
// a test cgroup, presented to the plugin as the container's pid, may open a
// raw socket before StartContainer, is denied one (EPERM) after it, and may
// again once the container is removed. A process in another cgroup is never
// affected.
func TestCgroupNetEndToEnd(t *testing.T) {
	testenv.RequireRoot(t)
	b := cgroupNetBackend(t)
	rt := newRuntime(t)
	p := newPlugin(t, b)
	rt.connect(p)

	sb := rt.RunPod("pod-1", "shop", "web-0", nil, map[string]string{policy.AnnotationPolicies: "no-raw"})
	ctr, _, err := rt.Create(sb, "ctr-1", "nginx")
	if err != nil {
		t.Fatal(err)
	}
	pr := startProc(t)
	other := startProc(t)
	if got := pr.raw(t); got != "ok" {
		t.Fatalf("before StartContainer: raw socket %s, want ok", got)
	}
	if err := rt.Start(sb, ctr, pr.pid()); err != nil {
		t.Fatal(err)
	}
	if got := pr.raw(t); got != "EPERM" {
		t.Fatalf("after StartContainer: raw socket %s, want EPERM", got)
	}
	if got := other.raw(t); got != "ok" {
		t.Fatalf("process in another cgroup: raw socket %s, want ok", got)
	}
	if err := rt.Remove(sb, ctr); err != nil {
		t.Fatal(err)
	}
	if got := pr.raw(t); got != "ok" {
		t.Fatalf("after RemoveContainer: raw socket %s, want ok", got)
	}
}

// cgroupNetBackend opens the real cgroup-BPF backend on pins of the test's
// own, removed with it.
func cgroupNetBackend(t *testing.T) *bpflsm.Backend {
	t.Helper()
	pin := fmt.Sprintf("/sys/fs/bpf/nri-armor-plugin-test-%d-%s", os.Getpid(), t.Name())
	t.Cleanup(func() { _ = bpflsm.Unpin(pin) })
	b, err := cgroupnet.Open(bpflsm.Config{PinPath: pin, MaxContainers: 8, MaxRuleEntries: 1024, RingBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
