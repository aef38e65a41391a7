package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/cgroups"
)

// Cgroup is a cgroup v2 child that a test created; it is removed after the
// test (tests never touch cgroups they did not create).
type Cgroup struct {
	Path string
	ID   uint64
	fd   *os.File
}

var cgroupSeq atomic.Int64

// NewCgroup creates a cgroup under the cgroup2 mount for the test.
func NewCgroup(t testing.TB) *Cgroup {
	t.Helper()
	root, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	return newCgroupIn(t, root)
}

// Child creates a cgroup below c for the test (as a container may make
// below its own).
func (c *Cgroup) Child(t testing.TB) *Cgroup {
	t.Helper()
	return newCgroupIn(t, c.Path)
}

func newCgroupIn(t testing.TB, root string) *Cgroup {
	dir := filepath.Join(root, fmt.Sprintf("nri-armor-test-%d-%d", os.Getpid(), cgroupSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	id, err := cgroups.ID(dir)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fd.Close()
		// Processes exit before the cgroup can go; retry briefly.
		for i := 0; i < 50; i++ {
			if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("could not remove test cgroup %s", dir)
	})
	return &Cgroup{Path: dir, ID: id, fd: fd}
}

// Into makes cmd start inside the cgroup (clone3 CLONE_INTO_CGROUP): the
// process never runs a single instruction outside it. Like a container's
// program, it runs in a mount namespace of its own (unshared before its
// exec): a task cloned into a container's cgroup from the host and exec'd
// where it was cloned is the runtime's setup to the BPF-LSM programs
// (bpf/enforce/setup.h), not the container.
func (c *Cgroup) Into(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = int(c.fd.Fd())
	cmd.SysProcAttr.Unshareflags |= syscall.CLONE_NEWNS
}
