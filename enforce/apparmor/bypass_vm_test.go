//go:build vmtest

package apparmor

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nri-armor/nri-armor/internal/attackops"
)

// The attack suite of issue 13 (enforce/bpflsm's TestBypassLSM) against
// the AppArmor backend, plus attacks on AppArmor itself: each subtest runs
// an attempt in a process confined by the compiled profile of the policy
// and the same attempt unconfined. Outcomes that differ from BPF-LSM's are
// subtests named differs-…, listed in docs/apparmor.md ("Differences from
// BPF-LSM").

// The deep tree: deepName levels; AppArmor names paths into a buffer of
// 2×PATH_MAX (8,192 bytes, aa_g_path_max), so deepNamed levels (past
// PATH_MAX) are named and deepUnnamed levels are not.
const (
	deepNamed   = 24
	deepUnnamed = 45
)

var deepName = attackops.DeepName

func init() {
	for name, op := range attackops.Ops {
		ops[name] = op
	}
	ops["rename"] = func(arg string) error {
		from, to, _ := strings.Cut(arg, " ")
		return unix.Rename(from, to)
	}
	ops["link"] = func(arg string) error {
		from, to, _ := strings.Cut(arg, " ")
		return unix.Link(from, to)
	}
	// bind DIR MOUNTPOINT / mount-tmpfs DIR: mount, and take it away.
	ops["bind"] = func(arg string) error {
		dir, mp, _ := strings.Cut(arg, " ")
		return unix.Mount(dir, mp, "", unix.MS_BIND, "")
	}
	ops["mount-tmpfs"] = func(arg string) error {
		if err := unix.Mount("none", arg, "tmpfs", 0, ""); err != nil {
			return err
		}
		return unix.Unmount(arg, 0)
	}
	// userns OPS (';'-separated): a child helper in a user and mount
	// namespace of its own (root mapped to root) performs OPS; the first
	// result that is not ok.
	ops["userns"] = func(arg string) error {
		return child(strings.Split(arg, ";"), &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		})
	}
	// deep ROOT LEVELS exec|read NAME: from ROOT, chdir LEVELS levels
	// down, then run ./NAME or read NAME (relative: the whole path is too
	// long for a system call).
	ops["deep"] = func(arg string) error {
		f := strings.Fields(arg)
		if err := os.Chdir(f[0]); err != nil {
			return err
		}
		defer os.Chdir("/")
		n, _ := strconv.Atoi(f[1])
		for i := 0; i < n; i++ {
			if err := os.Chdir(deepName); err != nil {
				return err
			}
		}
		if f[2] == "exec" {
			return ranOK(exec.Command("./" + f[3]).Run())
		}
		return openClose(f[3], os.O_RDONLY)
	}
	// mkdir DIR (kept) / cgmove CGROUP: move this process there.
	ops["mkdir"] = func(arg string) error { return os.Mkdir(arg, 0o755) }
	ops["cgmove"] = func(arg string) error {
		return os.WriteFile(arg+"/cgroup.procs", []byte(strconv.Itoa(os.Getpid())), 0)
	}
	// socket FAMILY TYPE PROTOCOL (numbers): open one and close it.
	ops["socket"] = func(arg string) error {
		var n [3]int
		for i, s := range strings.Fields(arg) {
			n[i], _ = strconv.Atoi(s)
		}
		fd, err := unix.Socket(n[0], n[1], n[2])
		if err == nil {
			unix.Close(fd)
		}
		return err
	}
	// attr FILE TEXT: write TEXT to this thread's AppArmor attribute FILE
	// (current, exec).
	ops["attr"] = func(arg string) error {
		file, text, _ := strings.Cut(arg, " ")
		return writeAttr("/proc/thread-self/attr/apparmor/"+file, text)
	}
	// aa-exec PROFILE FILE: aa-exec -p PROFILE cat FILE: ok when cat
	// printed the file, else what aa-exec said.
	ops["aa-exec"] = func(arg string) error {
		profile, file, _ := strings.Cut(arg, " ")
		out, err := exec.Command("/usr/bin/aa-exec", "-p", profile, "--", "/bin/busybox", "cat", file).CombinedOutput()
		if err == nil && string(out) == "s" {
			return nil
		}
		// Its word for the kernel's EACCES.
		if strings.Contains(string(out), "insufficient permissions") {
			return syscall.EACCES
		}
		return opResult(fmt.Sprintf("%v: %q", err, out))
	}
	// kill PID SIGNAL / ptrace-read PID (its environment: a ptrace read
	// check) / ptrace-seize PID (this process exits after its batch, which
	// detaches).
	ops["kill"] = func(arg string) error {
		f := strings.Fields(arg)
		pid, _ := strconv.Atoi(f[0])
		sig, _ := strconv.Atoi(f[1])
		return unix.Kill(pid, unix.Signal(sig))
	}
	ops["ptrace-read"] = func(arg string) error { return openClose("/proc/"+arg+"/environ", os.O_RDONLY) }
	ops["ptrace-seize"] = func(arg string) error {
		pid, _ := strconv.Atoi(arg)
		return unix.PtraceSeize(pid)
	}
}

// child runs ops in a child helper (this binary, exec'd where this process
// runs: under its profile) and returns the first result that is not ok.
func child(ops []string, attr *syscall.SysProcAttr) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=batch")
	cmd.SysProcAttr = attr
	cmd.Stdin = strings.NewReader(strings.Join(ops, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		return err
	}
	for _, res := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if res != "ok" {
			for e := syscall.Errno(1); e < 256; e++ {
				if unix.ErrnoName(e) == res {
					return e
				}
			}
			return opResult(res)
		}
	}
	return nil
}

var bypassPolicy = attackops.BypassPolicy("/tmp/vma")

func TestBypassAppArmor(t *testing.T) {
	f := newFixture(t)
	const name = NamePrefix + "vmtest.bypass.0000000000000002"
	const srcName = NamePrefix + "vmtest.fromsource.0000000000000003"
	f.load(t, profile(t, name, bypassPolicy))
	f.load(t, profile(t, srcName, attackops.FromSourcePolicy))

	// inside runs ops confined by the profile, then the same unconfined:
	// want inside, all ok outside (the process outside the profile is
	// unaffected).
	inside := func(t *testing.T, want string, ops ...string) {
		t.Helper()
		if got := strings.Join(batch(t, name, ops...), " "); got != want {
			t.Errorf("%q under the profile: %s, want %s", ops, got, want)
		}
		if got := strings.Join(batch(t, "", ops...), " "); got != strings.TrimSpace(strings.Repeat("ok ", len(ops))) {
			t.Errorf("%q unconfined: %s, want all ok", ops, got)
		}
	}
	fresh := func() {
		copyFile(t, "/bin/true", "/tmp/vma/bin/dyn-blocked") // dynamically linked
		mkfile(t, "/tmp/vma/bin/blocked-script", []byte("#!/bin/busybox sh\nexit 0\n"))
		mkfile(t, "/tmp/vma/ro", nil)
		os.MkdirAll("/tmp/vmabind", 0o755)
		mkfile(t, "/tmp/vma/secret", []byte("s"))
		mkfile(t, "/tmp/vma/other", nil)
		copyFile(t, "/bin/busybox", "/tmp/vma/bin/blocked")
		copyFile(t, "/bin/busybox", "/tmp/vma/busybox")
		for _, p := range []string{"/tmp/vma/moved", "/tmp/vma/hl", "/tmp/vma/preload", "/tmp/vma/copy"} {
			os.Remove(p)
		}
	}
	fresh()

	// The rules themselves, and the ways around them that AppArmor closes
	// as BPF-LSM does.
	for _, c := range []struct {
		name, want string
		ops        []string
	}{
		{"exec-blocked", "EACCES", []string{"exec /tmp/vma/bin/blocked true"}},
		{"open-blocked", "EACCES", []string{"read /tmp/vma/secret"}},
		{"capability-blocked", "EPERM", []string{"socket 2 3 1"}}, // inet raw icmp needs net_raw: capable() says EPERM
		// A chroot does not rename files: AppArmor names them from the
		// namespace's root, not the chroot's.
		{"chroot-exec", "EACCES", []string{"chroot-exec /tmp/vma /bin/blocked"}},
		{"chroot-open", "EACCES", []string{"chroot-run /tmp/vma /busybox cat /secret"}},
		// A change made without a write-open is a write.
		{"trunc-readonly", "EACCES", []string{"trunc /tmp/vma/ro"}},
		{"truncate-readonly", "EACCES", []string{"truncate /tmp/vma/ro"}},
		{"unlink-protected", "EACCES", []string{"unlink /tmp/vma/ro"}},
		{"rename-over", "EACCES", []string{"rename /tmp/vma/other /tmp/vma/secret"}},
		{"link-blocked", "EACCES", []string{"link /tmp/vma/secret /tmp/vma/hl"}},
		{"symlink-create", "EACCES", []string{"symlink /tmp/vma/other /tmp/vma/preload"}},
		// A blocked program may not be mapped executable: not by mprotect,
		// nor by the dynamic loader.
		{"mprotect-exec", "EACCES", []string{"mprotect /tmp/vma/bin/blocked"}},
		{"ldso-blocked", "EACCES", []string{"run /lib64/ld-linux-x86-64.so.2 /tmp/vma/bin/dyn-blocked"}},
		{"script-blocked", "EACCES", []string{"exec /tmp/vma/bin/blocked-script"}},
		// Another name for the files (a bind mount in a user namespace of
		// its own): no mount at all under the base.
		{"userns-bind-open", "EACCES", []string{"userns bind /tmp/vma /tmp/vmabind;read /tmp/vmabind/secret"}},
		// Known limits of path rules, as under BPF-LSM.
		{"limit-copy", "ok ok", []string{"copy /tmp/vma/bin/blocked /tmp/vma/copy", "exec /tmp/vma/copy true"}},
		{"limit-memfd", "ok", []string{"memfd /tmp/vma/bin/blocked"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fresh()
			inside(t, c.want, c.ops...)
			fresh()
		})
	}

	// Where AppArmor decides otherwise than BPF-LSM.
	t.Run("differs-rename-exec", func(t *testing.T) {
		// BPF-LSM refuses renaming a blocked program; AppArmor checks the
		// name at execve, so the renamed program runs.
		ops := []string{"rename /tmp/vma/bin/blocked /tmp/vma/moved", "exec /tmp/vma/moved true"}
		for _, profile := range []string{name, ""} {
			fresh()
			if got := strings.Join(batch(t, profile, ops...), " "); got != "ok ok" {
				t.Errorf("%q under %q: %s, want ok ok", ops, profile, got)
			}
		}
		fresh()
	})
	t.Run("differs-script-interpreter", func(t *testing.T) {
		// The interpreter of a #! script is not checked (BPF-LSM: EPERM).
		mkfile(t, "/tmp/vma/interp.sh", []byte("#!/tmp/vma/bin/blocked sh\nexit 0\n"))
		inside(t, "ok", "exec /tmp/vma/interp.sh")
	})
	deep := "/tmp/vma/deep"
	if err := attackops.DeepTree(deep, deepNamed, deepUnnamed); err != nil {
		t.Fatal(err)
	}
	t.Run("differs-deep-exec", func(t *testing.T) {
		// Past PATH_MAX but within AppArmor's 8 KiB: named, and no rule
		// names it (BPF-LSM cannot name it: EPERM, fail closed) …
		inside(t, "ok", fmt.Sprintf("deep %s %d exec x", deep, deepNamed))
	})
	t.Run("differs-deep-open", func(t *testing.T) {
		inside(t, "ok", fmt.Sprintf("deep %s %d read secret", deep, deepNamed))
	})
	t.Run("deep-unnamed", func(t *testing.T) {
		// … and past AppArmor's buffer refused (fail closed), as BPF-LSM
		// refuses past its own.
		inside(t, "ENAMETOOLONG ENAMETOOLONG", fmt.Sprintf("deep %s %d exec x", deep, deepUnnamed), fmt.Sprintf("deep %s %d read secret", deep, deepUnnamed))
	})
	t.Run("differs-xattr-trusted", func(t *testing.T) {
		// AppArmor (6.1) does not mediate extended attributes; BPF-LSM
		// refuses security.* and trusted.* ones where the file class has
		// rules. On the blocked file too.
		fresh()
		inside(t, "ok ok", "setxattr /tmp/vma/other trusted.armor", "setxattr /tmp/vma/secret trusted.armor")
	})
	t.Run("differs-open-tree-open", func(t *testing.T) {
		// A detached copy of the mount tree (open_tree OPEN_TREE_CLONE),
		// made in the host's mount namespace or in a user and mount
		// namespace of its own: 6.1's AppArmor mediates neither open_tree
		// (no LSM hook) nor the copy's files by their names in the
		// namespace — the name of a file there is not connected to the
		// namespace's root, and attach_disconnected names it from its
		// filesystem's root (/vma/secret here: /tmp is a tmpfs). So a
		// rule on a file outside the container's root filesystem (a
		// volume, a secret, /tmp) is bypassed by a process that may
		// mount (CAP_SYS_ADMIN, or a user namespace: the runtime's
		// default seccomp profile refuses both). BPF-LSM refuses it
		// (EPERM: no name in the namespace, fail closed).
		fresh()
		inside(t, "ok ok", "open-tree /tmp/vma secret", "userns open-tree /tmp/vma secret")
	})
	t.Run("differs-cgroup-mkdir-move", func(t *testing.T) {
		// The label is the process's, not its cgroup's: the base allows
		// the cgroup filesystem (as the runtime's profile does), and a
		// process that moves to a cgroup of its own is still confined
		// (BPF-LSM refuses the mkdir: its sets are per cgroup).
		cg := fmt.Sprintf("/sys/fs/cgroup/nri-armor-aa-%d", os.Getpid())
		defer os.Remove(cg + "-in")
		defer os.Remove(cg + "-out")
		if got := strings.Join(batch(t, name, "mkdir "+cg+"-in", "cgmove "+cg+"-in", "read /tmp/vma/secret", "label-is "+name), " "); got != "ok ok EACCES ok" {
			t.Errorf("mkdir, move, read the blocked file, label under the profile: %s, want ok ok EACCES ok", got)
		}
		if got := strings.Join(batch(t, "", "mkdir "+cg+"-out", "cgmove "+cg+"-out"), " "); got != "ok ok" {
			t.Errorf("unconfined: %s", got)
		}
	})
	t.Run("differs-network-not-in-profile", func(t *testing.T) {
		// The node's profile leaves network rules to cgroup-BPF (Restrict):
		// a tcp and raw Block writes no network rule, sockets are allowed.
		p := profile(t, NamePrefix+"vmtest.net.0000000000000004", strings.Replace(bypassPolicy, "  capabilities:",
			"  network:\n    matchProtocols:\n    - protocol: tcp\n    - protocol: raw\n  capabilities:", 1))
		if !strings.Contains(p.Text, "\n  network,\n") || strings.Contains(p.Text, "deny network") {
			t.Fatalf("the profile has network rules:\n%s", p.Text)
		}
		f.load(t, p)
		// MPTCP (inet stream, protocol 262), TCP, TCP over IPv6.
		if got := strings.Join(batch(t, p.Name, "socket 2 1 262", "socket 2 1 0", "socket 10 1 0"), " "); got != "ok ok ok" {
			t.Errorf("mptcp, tcp, tcp6 sockets under a tcp Block: %s, want ok ok ok", got)
		}
	})

	// fromSource: not expressible; the source guards are enforced.
	if err := os.MkdirAll("/tmp/vmfs/copy", 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, "/bin/busybox", "/tmp/vmfs/bin/cat")
	copyFile(t, "/bin/busybox", "/tmp/vmfs/evil/cat")
	copyFile(t, "/bin/busybox", "/tmp/vmfs/jail/tmp/vmfs/bin/cat")
	mkfile(t, "/tmp/vmfs/secret", []byte("s"))
	mkfile(t, "/tmp/vmfs/jail/secret", []byte("s"))
	src := func(t *testing.T, want string, ops ...string) {
		t.Helper()
		if got := strings.Join(batch(t, srcName, ops...), " "); got != want {
			t.Errorf("%q under the profile: %s, want %s", ops, got, want)
		}
	}
	t.Run("differs-fromsource-allow", func(t *testing.T) {
		// The allowed source is refused too (BPF-LSM: allowed).
		src(t, "EACCES", "run /tmp/vmfs/bin/cat /tmp/vmfs/secret")
	})
	t.Run("fromsource-rename", func(t *testing.T) {
		src(t, "EACCES EACCES EACCES", "rename /tmp/vmfs/evil/cat /tmp/vmfs/bin/cat", "rename /tmp/vmfs/bin /tmp/vmfs/bin2", "unlink /tmp/vmfs/bin/cat")
		if got := strings.Join(batch(t, "", "rename /tmp/vmfs/bin /tmp/vmfs/bin2", "rename /tmp/vmfs/bin2 /tmp/vmfs/bin"), " "); got != "ok ok" {
			t.Errorf("unconfined, renaming the source's directory and back: %s", got)
		}
	})
	t.Run("fromsource-copy", func(t *testing.T) {
		src(t, "EACCES ok EACCES", "write /tmp/vmfs/bin/cat", "copy /tmp/vmfs/bin/cat /tmp/vmfs/copy/cat", "run /tmp/vmfs/copy/cat /tmp/vmfs/secret")
	})
	t.Run("fromsource-chroot", func(t *testing.T) {
		// The source's copy at the same path in a chroot is not it: the
		// file it reads is /tmp/vmfs/jail/secret, which no rule names.
		src(t, "ok", "chroot-run /tmp/vmfs/jail /tmp/vmfs/bin/cat /secret")
	})

	// The base profile (the runtime's default, in effect).
	for _, c := range []struct{ name, want, op string }{
		{"base-mount", "EACCES", "mount-tmpfs /tmp/vma/mnt"},
		{"base-sysrq-trigger", "EACCES", "write /proc/sysrq-trigger"},
		{"base-kcore", "EACCES", "read /proc/kcore"},
		{"base-proc-sys", "EACCES", "write /proc/sys/kernel/hostname"},
		{"base-proc-sys-shm", "ok", "write /proc/sys/kernel/shmmax"},
		{"base-sys-write", "EACCES", "write /sys/kernel/mm/transparent_hugepage/enabled"},
		{"base-securityfs", "EACCES", "read /sys/kernel/security/apparmor/profiles"},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.MkdirAll("/tmp/vma/mnt", 0o755)
			inside(t, c.want, c.op)
		})
	}

	// Attacks on AppArmor itself.
	sleeper := exec.Command("/bin/busybox", "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	host := strconv.Itoa(sleeper.Process.Pid)
	for _, c := range []struct{ name, want, op string }{
		// Leaving the profile: change_profile, now or at the next exec, to
		// unconfined or to another container's profile; aa-exec, which does
		// the same; replacing or removing its own profile through
		// securityfs (root, with every capability).
		{"aa-change-profile-unconfined", "EACCES", "attr current changeprofile unconfined"},
		{"aa-exec-attr-unconfined", "EACCES", "attr exec exec unconfined"},
		{"aa-exec-attr-sibling", "EACCES", "attr exec exec " + srcName},
		{"aa-exec-tool", "EACCES", "aa-exec unconfined /tmp/vma/secret"},
		{"aa-replace-own-profile", "EACCES", "write /sys/kernel/security/apparmor/.replace"},
		{"aa-remove-own-profile", "EACCES", "write /sys/kernel/security/apparmor/.remove"},
		// Reaching a process outside: signals, ptrace (read and attach).
		{"signal-host", "EACCES", "kill " + host + " 18"},
		{"ptrace-read-host", "EACCES", "ptrace-read " + host},
		{"ptrace-attach-host", "EACCES", "ptrace-seize " + host},
	} {
		t.Run(c.name, func(t *testing.T) {
			fresh()
			inside(t, c.want, c.op)
		})
	}
	t.Run("aa-label-kept", func(t *testing.T) {
		// After all of that, a confined process's children are confined.
		if got := batch(t, name, "label-is "+name); got[0] != "ok" {
			t.Errorf("label: %s", got[0])
		}
	})
}
