//go:build vmtest

// Package smoke proves the VM test layer (hack/vmtest): the binary runs as
// root in a kernel with BPF-LSM and AppArmor active, with bpffs, cgroup2 and
// the other filesystems that the VM's /init mounts.
//
// Run it with `make vmtest`. `-smoke.fail` makes TestFailOnRequest fail and
// `-smoke.hang` makes TestHangOnRequest hang: hack/vmtest/selfcheck.sh uses
// them to prove that a failure or a hang inside the VM fails run.sh.
package smoke

import (
	"flag"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/vmtest"
)

var (
	fail = flag.Bool("smoke.fail", false, "make TestFailOnRequest fail (proves that run.sh reports failures)")
	hang = flag.Bool("smoke.hang", false, "make TestHangOnRequest hang (proves that run.sh's timeout works)")
)

func TestRoot(t *testing.T) {
	vmtest.Require(t)
	if uid, euid := os.Getuid(), os.Geteuid(); uid != 0 || euid != 0 {
		t.Fatalf("uid %d euid %d, want 0", uid, euid)
	}
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		release = append(release, byte(c))
	}
	t.Logf("kernel %s, %d CPUs", release, runtime.NumCPU())
}

func TestLSMs(t *testing.T) {
	vmtest.RequireLSM(t, "bpf", "apparmor")
	active, _ := vmtest.ActiveLSMs()
	t.Logf("active LSMs: %v", active)
}

// Filesystem magic numbers from linux/magic.h.
const (
	bpfFSMagic      = 0xcafe4a11
	cgroup2Magic    = 0x63677270
	securityFSMagic = 0x73636673
	tracefsMagic    = 0x74726163
	debugfsMagic    = 0x64626720
	tmpfsMagic      = 0x01021994
	procMagic       = 0x9fa0
	sysfsMagic      = 0x62656572
)

func TestMounts(t *testing.T) {
	vmtest.Require(t)
	for _, m := range []struct {
		path  string
		magic int64
		name  string
	}{
		{"/sys/fs/bpf", bpfFSMagic, "bpffs"},
		{"/sys/fs/cgroup", cgroup2Magic, "cgroup2"},
		{"/sys/kernel/security", securityFSMagic, "securityfs"},
		{"/sys/kernel/tracing", tracefsMagic, "tracefs"},
		{"/sys/kernel/debug", debugfsMagic, "debugfs"},
		{"/tmp", tmpfsMagic, "tmpfs"},
		{"/proc", procMagic, "proc"},
		{"/sys", sysfsMagic, "sysfs"},
	} {
		var st syscall.Statfs_t
		if err := syscall.Statfs(m.path, &st); err != nil {
			t.Errorf("statfs %s: %v", m.path, err)
			continue
		}
		if st.Type != m.magic {
			t.Errorf("%s: filesystem magic %#x, want %s (%#x)", m.path, st.Type, m.name, m.magic)
		}
	}
}

// What later VM tests build on: BTF for CO-RE, the cgroup2 root's controllers,
// and a writable bpffs.
func TestKernelFeatures(t *testing.T) {
	vmtest.Require(t)
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Errorf("kernel BTF: %v", err)
	}
	ctrl, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if err != nil {
		t.Errorf("cgroup2 controllers: %v", err)
	} else {
		t.Logf("cgroup2 controllers: %s", ctrl)
	}
	dir, err := os.MkdirTemp("/sys/fs/bpf", "smoke")
	if err != nil {
		t.Errorf("bpffs is not writable: %v", err)
	} else if err := os.Remove(dir); err != nil {
		t.Error(err)
	}
}

func TestFailOnRequest(t *testing.T) {
	if *fail {
		t.Fatal("failing on request (-smoke.fail)")
	}
}

func TestHangOnRequest(t *testing.T) {
	if *hang {
		t.Log("hanging on request (-smoke.hang)")
		time.Sleep(time.Hour)
	}
}
