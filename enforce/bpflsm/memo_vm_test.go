//go:build vmtest

package bpflsm

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/policy"
)

// The open memo (bpf/enforce/memo.h) lets a repeated silently-allowed open skip
// the path walk. These tests change, between two opens of the same file,
// each thing its verdict depends on, and check that the second open is
// decided afresh: a stale memo here would be a bypass.

func init() {
	bypassOps["rename"] = func(arg string) error {
		from, to, _ := strings.Cut(arg, " ")
		return os.Rename(from, to)
	}
	bypassOps["link"] = func(arg string) error {
		from, to, _ := strings.Cut(arg, " ")
		return os.Link(from, to)
	}
	bypassOps["bind"] = func(arg string) error {
		from, to, _ := strings.Cut(arg, " ")
		return syscall.Mount(from, to, "", syscall.MS_BIND, "")
	}
	bypassOps["move"] = func(arg string) error {
		from, to, _ := strings.Cut(arg, " ")
		return syscall.Mount(from, to, "", syscall.MS_MOVE, "")
	}
	bypassOps["chroot"] = func(arg string) error {
		if err := syscall.Chroot(arg); err != nil {
			return err
		}
		return os.Chdir("/")
	}
}

const memoPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: memo, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  file:
    matchPaths:
    - path: /tmp/memo/renamed/x
    - path: /tmp/memo/ro
      readOnly: true
    - path: /tmp/memo/src
      fromSource:
      - path: /tmp/memo/bin/other
    - path: /tmp/memo/audited
      action: Audit
    - path: /etc/jailed
    matchDirectories:
    - dir: /tmp/memo/linked/
    - dir: /tmp/memo/moved/
  action: Block
`

func TestOpenMemoInvalidation(t *testing.T) {
	f := newLSMFixture(t)
	rs := policytest.Compile(t, memoPolicy)
	if _, err := f.e.Apply(f.cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	trusted, other := "/tmp/memo/bin/trusted", "/tmp/memo/bin/other"
	copyFile(t, self, trusted)
	copyFile(t, self, other)
	for _, p := range []string{"/tmp/memo/a/x", "/tmp/memo/ro", "/tmp/memo/h", "/tmp/memo/src", "/tmp/memo/audited",
		"/tmp/memo/mdir/f", "/tmp/memo/free", "/tmp/memo/jail/etc/jailed"} {
		touch(t, p, 0)
	}
	for _, d := range []string{"/tmp/memo/linked", "/tmp/memo/stage", "/tmp/memo/moved"} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link("/tmp/memo/h", "/tmp/memo/h2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Link("/tmp/memo/h", "/tmp/memo/linked/h2"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Unmount("/tmp/memo/moved", syscall.MNT_DETACH)
		syscall.Unmount("/tmp/memo/stage", syscall.MNT_DETACH)
		os.RemoveAll("/tmp/memo")
	})

	// Steps run in the enforced cgroup, those marked node outside it (an
	// enforced container may not mount: the node's mounts still move names).
	steps := []struct {
		op, want string
		node     bool
	}{
		// A rename above the file: same dentry, same mount, new path.
		{"read /tmp/memo/a/x", "ok", false},
		{"read /tmp/memo/a/x", "ok", false},
		{"rename /tmp/memo/a /tmp/memo/renamed", "ok", false},
		{"read /tmp/memo/renamed/x", "EPERM", false},
		// The (write, owner) case: a read's memo says nothing of writes.
		{"read /tmp/memo/ro", "ok", false},
		{"write /tmp/memo/ro", "EPERM", false},
		{"read /tmp/memo/ro", "ok", false},
		// A second name: never memoized. (The container may not make one
		// in a blocked directory — a link is a change there — so the node
		// made it: /tmp/memo/h2 is a hard link to /tmp/memo/linked/h2.)
		{"read /tmp/memo/h2", "ok", false},
		{"read /tmp/memo/h2", "ok", false},
		{"read /tmp/memo/linked/h2", "EPERM", false},
		{"link /tmp/memo/h /tmp/memo/linked/h", "EPERM", false},
		{"read /tmp/memo/h", "ok", false},
		// A mount moved: same dentry, same mount, new path.
		{"bind /tmp/memo/mdir /tmp/memo/stage", "ok", true},
		{"read /tmp/memo/stage/f", "ok", false},
		{"read /tmp/memo/stage/f", "ok", false},
		{"move /tmp/memo/stage /tmp/memo/moved", "ok", true},
		{"read /tmp/memo/moved/f", "EPERM", false},
		// Audit is never memoized: one event per open.
		{"read /tmp/memo/audited", "ok", false},
		{"read /tmp/memo/audited", "ok", false},
		// Another root does not rename a file (name.h): in a chroot to
		// /tmp/memo/jail, /etc/jailed is /tmp/memo/jail/etc/jailed, which
		// the rule on /etc/jailed does not name (TestBypassLSM/chroot-*
		// try the other way round).
		{"read /tmp/memo/jail/etc/jailed", "ok", false},
		{"read /tmp/memo/jail/etc/jailed", "ok", false},
		{"chroot /tmp/memo/jail", "ok", false},
		{"read /etc/jailed", "ok", false},
	}
	drain(t, f.rd)
	var got []string
	for i := 0; i < len(steps); {
		// One process for each run of steps on the same side.
		var ops []string
		j := i
		for ; j < len(steps) && steps[j].node == steps[i].node; j++ {
			ops = append(ops, steps[j].op)
		}
		cg := f.cg
		if steps[i].node {
			cg = nil
		}
		got = append(got, batch(t, cg, trusted, 0, ops)...)
		i = j
	}
	for i, s := range steps {
		if got[i] != s.want {
			t.Errorf("step %d %q: %s, want %s", i, s.op, got[i], s.want)
		}
	}
	audits := 0
	for _, ev := range drain(t, f.rd) {
		if ev.Resource == "/tmp/memo/audited" && ev.Action == policy.Audit {
			audits++
		}
	}
	if audits != 2 {
		t.Errorf("%d Audit events for two opens of /tmp/memo/audited, want 2", audits)
	}

	// fromSource: the executable is part of the memo.
	for _, c := range []struct{ exe, want string }{{trusted, "ok"}, {trusted, "ok"}, {other, "EPERM"}, {trusted, "ok"}} {
		if got := batch(t, f.cg, c.exe, 0, []string{"read /tmp/memo/src", "read /tmp/memo/src"}); got[0] != c.want || got[1] != c.want {
			t.Errorf("read /tmp/memo/src from %s: %v, want %s", c.exe, got, c.want)
		}
	}

	// A new set for the cgroup: the old set's memos do not apply.
	if got := batch(t, f.cg, trusted, 0, []string{"read /tmp/memo/free", "read /tmp/memo/free"}); got[1] != "ok" {
		t.Fatalf("read /tmp/memo/free: %v", got)
	}
	stricter := policytest.Compile(t, strings.Replace(memoPolicy, "- path: /etc/jailed", "- path: /etc/jailed\n    - path: /tmp/memo/free", 1))
	if _, err := f.e.Apply(f.cg.ID, stricter); err != nil {
		t.Fatal(err)
	}
	if got := batch(t, f.cg, trusted, 0, []string{"read /tmp/memo/free"}); got[0] != "EPERM" {
		t.Errorf("read /tmp/memo/free after the swap to a set that blocks it: %s, want EPERM", got[0])
	}
}

const hostFilePolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: host-secret}
spec:
  nodeSelector: {matchLabels: {kubernetes.io/hostname: vm}}
  file:
    matchPaths:
    - path: /tmp/hostpol/secret
  action: Block
`

// TestLSMHostSet: a host policy's file rule, enforced by BPF-LSM on the
// node's own processes and on nothing in a container.
func TestLSMHostSet(t *testing.T) {
	f := newLSMFixture(t)
	touch(t, "/tmp/hostpol/secret", 0)
	t.Cleanup(func() { os.RemoveAll("/tmp/hostpol") })
	self, _ := os.Executable()
	exempt := f.cg // a container without rules
	if err := f.e.Exempt(exempt.ID); err != nil {
		t.Fatal(err)
	}
	below := exempt.Child(t) // made inside the container: still the container
	host := policytest.Compile(t, hostFilePolicy)
	if _, err := f.e.ApplyHost(host); err != nil {
		t.Fatal(err)
	}
	drain(t, f.rd)
	if got := batch(t, nil, self, 0, []string{"read /tmp/hostpol/secret"}); got[0] != "EPERM" {
		t.Errorf("node process: read %s, want EPERM", got[0])
	}
	found := false
	for _, ev := range drain(t, f.rd) {
		found = found || (ev.Resource == "/tmp/hostpol/secret" && ev.Action == policy.Block && ev.RuleID == uint32(host.File.Rules[0].ID))
	}
	if !found {
		t.Errorf("no Block event for the node process's read")
	}
	for _, cg := range []*testCgroup{exempt, below} {
		if got := batch(t, cg, self, 0, []string{"read /tmp/hostpol/secret"}); got[0] != "ok" {
			t.Errorf("container cgroup %s: read %s, want ok (the host set is not theirs)", cg.Path, got[0])
		}
	}
	if err := f.e.RemoveHost(); err != nil {
		t.Fatal(err)
	}
	if got := batch(t, nil, self, 0, []string{"read /tmp/hostpol/secret"}); got[0] != "ok" {
		t.Errorf("node process after RemoveHost: read %s, want ok", got[0])
	}
}
