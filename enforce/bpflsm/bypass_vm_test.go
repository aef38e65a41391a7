//go:build vmtest

package bpflsm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nri-armor/nri-armor/internal/attackops"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/policy"
)

// Bypass attempts against BPF-LSM enforcement, each either blocked or a
// known limit that the README lists with its reason; the test pins down
// which, so that a change of behaviour is noticed.

func init() {
	// exec-rel DIR NAME: run ./NAME from DIR.
	bypassOps["exec-rel"] = func(arg string) error {
		dir, name, _ := strings.Cut(arg, " ")
		cmd := exec.Command("./" + name)
		cmd.Dir = dir
		return ranOK(cmd.Run())
	}
	// sh SCRIPT: run a script through the shell.
	bypassOps["sh"] = func(arg string) error {
		return ranOK(exec.Command("/bin/busybox", "sh", arg).Run())
	}
	// ldso BINARY: run BINARY through the dynamic loader, which maps it
	// instead of executing it; EPERM when the loader could not map it
	// (it says "failed to map segment from shared object").
	bypassOps["ldso"] = func(arg string) error {
		out, err := exec.Command("/lib64/ld-linux-x86-64.so.2", arg).CombinedOutput()
		if err != nil && strings.Contains(string(out), "failed to map segment") {
			return syscall.EPERM
		}
		if err != nil {
			return fmt.Errorf("%v: %q", err, out)
		}
		return nil
	}
	// cgmove CGROUP: move this process into another cgroup.
	bypassOps["cgmove"] = func(arg string) error {
		f, err := os.OpenFile(filepath.Join(arg, "cgroup.procs"), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteString(strconv.Itoa(os.Getpid()))
		return err
	}
}

// ranOK treats a program that ran and exited non-zero as run.
var ranOK = attackops.RanOK

var bypassPolicy = attackops.BypassPolicy("/tmp/vmb")

const allowListProcess = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: only-bin, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  process:
    matchDirectories:
    - dir: /tmp/vmb/bin/
      recursive: true
      action: Allow
`

func TestLSMBypassAttempts(t *testing.T) {
	f := newLSMFixture(t)
	self, _ := os.Executable()
	app := "/tmp/vmb/bin/app"
	copyFile(t, self, app)
	copyFile(t, "/bin/busybox", "/tmp/vmb/bin/blocked")
	copyFile(t, "/bin/busybox", "/tmp/vmb/copy")
	copyFile(t, "/vmtest/dyn/true", "/tmp/vmb/bin/dyn-blocked") // dynamically linked
	copyFile(t, "/vmtest/dyn/true", "/tmp/vmb/bin/dyn-true")
	if err := os.WriteFile("/tmp/vmb/bin/blocked-script", []byte("#!/bin/busybox sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	touch(t, "/tmp/vmb/secret", 0)
	if err := os.Symlink("/tmp/vmb/bin/blocked", "/tmp/vmb/link"); err != nil {
		t.Fatal(err)
	}
	if err := os.Link("/tmp/vmb/secret", "/tmp/vmb/hardlink"); err != nil {
		t.Fatal(err)
	}
	root, _ := cgroups.Mount()

	rs := policytest.Compile(t, bypassPolicy)
	if _, err := f.e.Apply(f.cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, op, want string
	}{
		{"direct exec of the blocked binary", "exec /tmp/vmb/bin/blocked", "EPERM"},
		{"symlink to the blocked binary", "exec /tmp/vmb/link", "EPERM"},
		{"relative path", "exec-rel /tmp/vmb/bin blocked", "EPERM"},
		{"blocked script executed directly", "exec /tmp/vmb/bin/blocked-script", "EPERM"},
		{"blocked dynamic binary", "exec /tmp/vmb/bin/dyn-blocked", "EPERM"},
		{"the loader mapping the blocked binary (mmap_file)", "ldso /tmp/vmb/bin/dyn-blocked", "EPERM"},
		{"the loader running an allowed binary", "ldso /tmp/vmb/bin/dyn-true", "ok"},
		{"an allowed dynamic binary (its libraries map)", "exec /tmp/vmb/bin/dyn-true", "ok"},
		{"blocked file", "read /tmp/vmb/secret", "EPERM"},
		{"raw socket needs the blocked capability", "raw", "EPERM"},
		{"moving itself to another cgroup (built in)", "cgmove " + root, "EPERM"},
		// Known limits (README, "Known limits"): rules are on paths.
		{"LIMIT: interpreter running the blocked script", "sh /tmp/vmb/bin/blocked-script", "ok"},
		{"LIMIT: hard link to the blocked file", "read /tmp/vmb/hardlink", "ok"},
		{"LIMIT: copy of the blocked binary", "exec /tmp/vmb/copy", "ok"},
		{"LIMIT: memfd copy of the blocked binary", "memfd /tmp/vmb/bin/blocked", "ok"},
	}
	var ops []string
	for _, c := range cases {
		ops = append(ops, c.op)
	}
	drain(t, f.rd)
	got := batch(t, f.cg, app, 0, ops)
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("%s (%s): %s, want %s", c.name, c.op, got[i], c.want)
		}
	}
	evs := drain(t, f.rd)
	var builtin, capEv bool
	for _, ev := range evs {
		builtin = builtin || (ev.Builtin && ev.Action == policy.Block && strings.HasSuffix(ev.Resource, "/cgroup.procs"))
		capEv = capEv || (ev.Class == policy.ClassCapabilities && ev.Capability == 13 && ev.Action == policy.Block)
	}
	if !builtin || !capEv {
		t.Errorf("events lack the cgroupfs (%t) or capability (%t) block: %+v", builtin, capEv, evs)
	}

	// Under a process allow-list, what is not allowed by path — the copy,
	// the memfd — falls to the posture.
	rs = policy.Compile(policytest.Load(t, allowListProcess), policy.Options{Postures: policy.Postures{File: policy.Block, Network: policy.Audit, Capabilities: policy.Audit}, Mode: policy.ModeEnforce})
	if _, err := f.e.Apply(f.cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	// The posture does not apply to mappings: libc, outside the list, maps.
	got = batch(t, f.cg, app, 0, []string{"exec /tmp/vmb/copy", "memfd /tmp/vmb/bin/blocked", "exec /tmp/vmb/bin/blocked", "exec /tmp/vmb/bin/dyn-true"})
	if want := []string{"EPERM", "EPERM", "ok", "ok"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("allow-list: copy, memfd, allowed binary, allowed dynamic binary: %v, want %v", got, want)
	}
}
