//go:build vmtest

package bpflsm

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

// The runtime's own setup in a container's cgroup (bpf/enforce/setup.h):
// a task that the host put there is not governed by the container's rules
// until it execs the container's program (elsewhere: another mount
// namespace); every process of the container is, and none can get the mark.

func init() {
	// child-same OP: run OP in a child batch helper, exec'd where this one
	// runs (the runtime re-executing itself).
	bypassOps["child-same"] = func(arg string) error { return childBatch(arg, nil) }
	// child-ns OP: the same in a mount namespace of its own (the container's
	// program).
	bypassOps["child-ns"] = func(arg string) error {
		return childBatch(arg, &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS})
	}
	// clone-into CGROUP OP: the same, cloned into CGROUP (clone3
	// CLONE_INTO_CGROUP) by this process: a container's process trying to
	// make a task look like the runtime's.
	bypassOps["clone-into"] = func(arg string) error {
		dir, op, _ := strings.Cut(arg, " ")
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return childBatch(op, &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd})
	}
}

// opResult is a batch result line as an error (nil for "ok").
type opResult string

func (r opResult) Error() string { return string(r) }

// childBatch runs batch ops (lines) in a child helper and returns the
// first that is not ok.
func childBatch(op string, attr *syscall.SysProcAttr) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := helperCmd(self)
	cmd.SysProcAttr = attr
	cmd.Stdin = strings.NewReader(op + "\n")
	out, err := cmd.Output()
	if err != nil {
		return err
	}
	for _, res := range strings.Fields(string(out)) {
		if res == "EPERM" {
			return syscall.EPERM
		}
		if res != "ok" {
			return opResult(res)
		}
	}
	return nil
}

// A file allow-list: only /tmp/vms/ok and /dev/null (where exec.Cmd points
// a child's stdio) may be opened; the helper's own program, opened to
// execute it, is execution, not an open that the list governs.
const setupAllowList = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: only-ok, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  file:
    matchPaths:
    - path: /tmp/vms/ok
    - path: /dev/null
    action: Allow
`

func TestLSMRuntimeSetup(t *testing.T) {
	f := newLSMFixture(t)
	self, _ := os.Executable()
	app := "/tmp/vms/bin/app"
	copyFile(t, self, app)
	touch(t, "/tmp/vms/ok", 0)
	touch(t, "/tmp/vms/secret", 0)
	rs := policy.Compile(policytest.Load(t, setupAllowList), policy.Options{Postures: policy.Postures{File: policy.Block, Network: policy.Audit, Capabilities: policy.Audit}, Mode: policy.ModeEnforce})
	if _, err := f.e.Apply(f.cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	secret := "read /tmp/vms/secret"
	ops := []string{
		"read /tmp/vms/ok",
		secret,
		"child-same " + secret,
		"child-ns " + secret,
		"child-ns exec /tmp/vms/bin/app", // executing is not reading
	}

	// The container's own processes (exec'd in a mount namespace of their
	// own, as testenv's Into does): the allow-list holds, and a process
	// cannot pass as the runtime by cloning a child into its own cgroup.
	got := batch(t, f.cg, app, 0, append(ops, "clone-into "+f.cg.Path+" "+secret))
	if want := "ok EPERM EPERM EPERM ok EPERM"; strings.Join(got, " ") != want {
		t.Errorf("container process: %v, want %s", got, want)
		for _, ev := range drain(t, f.rd) {
			t.Logf("event: %+v", ev)
		}
	}

	// The runtime moving its child in (runc's cgroup.procs write): the
	// child's own opens and a re-exec in place are its setup; what it execs
	// in the container's mount namespace is the container.
	want := "ok ok ok EPERM ok"
	if got := movedIn(t, f.cg.Path, helperCmd(app), ops); strings.Join(got, " ") != want {
		t.Errorf("moved in by the host: %v, want %s", got, want)
	}
	// A process of the container that the host moves to another
	// container's cgroup has exec'd in a container: it is not the runtime's.
	cg2 := testenv.NewCgroup(t)
	if _, err := f.e.Apply(cg2.ID, rs); err != nil {
		t.Fatal(err)
	}
	cmd := helperCmd(app)
	f.cg.Into(cmd)
	if got := movedIn(t, cg2.Path, cmd, []string{secret}); strings.Join(got, " ") != "EPERM" {
		t.Errorf("a container's process moved by the host: %v, want EPERM", got)
	}

	// The runtime cloning its child straight into the cgroup (runc exec
	// with CLONE_INTO_CGROUP): the same.
	fd, err := unix.Open(f.cg.Path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cmd = helperCmd(app)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	cmd.Stdin = strings.NewReader(strings.Join(ops, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v (%s)", err, out)
	}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != want {
		t.Errorf("cloned in by the host: %v, want %s", got, want)
	}
}

// helperCmd is the batch helper as exe.
func helperCmd(exe string) *exec.Cmd {
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=batch")
	return cmd
}

// movedIn starts the batch helper cmd, moves it into the cgroup (as runc
// does with runc init), then gives it ops.
func movedIn(t *testing.T, cgPath string, cmd *exec.Cmd, ops []string) []string {
	t.Helper()
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err = os.WriteFile(filepath.Join(cgPath, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0)
	if err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	in.Write([]byte(strings.Join(ops, "\n") + "\n"))
	in.Close()
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		t.Fatalf("helper: %v", err)
	}
	return strings.Fields(out.String())
}
