//go:build vmtest

package bpflsm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nri-armor/nri-armor/internal/attackops"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

// The attack suite of issue 13, against BPF-LSM: each subtest is one way
// around a rule, asserts the refusal inside the enforced cgroup and that a
// process outside it is unaffected. (More of the list live in
// bypass_vm_test.go and setup_vm_test.go, from before the suite.)

// deepDepth levels of deepName make a directory past PATH_MAX (4,096).
const deepDepth = 24

var deepName = attackops.DeepName

func init() {
	for name, op := range attackops.Ops {
		bypassOps[name] = op
	}
	// exec-cat PROGRAM FILE: run PROGRAM (busybox, as cat) on FILE.
	bypassOps["exec-cat"] = func(arg string) error {
		prog, file, _ := strings.Cut(arg, " ")
		return attackops.Said(exec.Command(prog, file))
	}
	// userns-bind DIR MOUNTPOINT FILE: in a user and mount namespace of
	// its own (root mapped to root), bind DIR on MOUNTPOINT and read FILE
	// through it.
	bypassOps["userns-bind"] = func(arg string) error {
		f := strings.Fields(arg)
		return childBatch("bind "+f[0]+" "+f[1]+"\nread "+f[1]+"/"+f[2], &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		})
	}
	// mkdir DIR: make a directory (and take it away again).
	bypassOps["mkdir"] = func(arg string) error {
		if err := os.Mkdir(arg, 0o755); err != nil {
			return err
		}
		return os.Remove(arg)
	}
	// deep ROOT OP NAME: from ROOT, chdir deepDepth levels down, then
	// "exec ./NAME" or "read NAME" (a relative path: the whole one is too
	// long for any system call).
	bypassOps["deep"] = func(arg string) error {
		f := strings.Fields(arg)
		if err := os.Chdir(f[0]); err != nil {
			return err
		}
		defer os.Chdir("/")
		for i := 0; i < deepDepth; i++ {
			if err := os.Chdir(deepName); err != nil {
				return err
			}
		}
		if f[1] == "exec" {
			return runBatchOp("exec ./" + f[2])
		}
		return runBatchOp("read " + f[2])
	}
}

// runBatchOp performs one batch op in this process.
func runBatchOp(op string) error {
	var out strings.Builder
	runBatchTo(strings.NewReader(op+"\n"), &out)
	if res := strings.TrimSpace(out.String()); res != "ok" {
		return opResult(res)
	}
	return nil
}

const hostAuditPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: host-audit, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  file:
    matchPaths:
    - path: /tmp/vmb/host-audited
  action: Audit
`

func TestBypassLSM(t *testing.T) {
	f := newLSMFixture(t)
	self, _ := os.Executable()
	app := "/tmp/vmb/bin/app"
	copyFile(t, self, app)
	rs := policytest.Compile(t, bypassPolicy) // process and file rules: both classes have rules
	if _, err := f.e.Apply(f.cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	// inside runs one op in the enforced cgroup and the same outside it:
	// refused inside, unaffected outside.
	inside := func(t *testing.T, op, want string) {
		t.Helper()
		if got := batch(t, f.cg, app, 0, []string{op}); got[0] != want {
			t.Errorf("%s in the enforced cgroup: %s, want %s", op, got[0], want)
		}
		if got := batch(t, nil, app, 0, []string{op}); got[0] != "ok" {
			t.Errorf("%s outside: %s, want ok", op, got[0])
		}
	}

	// Item 3: a path the kernel cannot name (past PATH_MAX) fails closed
	// for a class with rules, with an event saying why.
	deep := "/tmp/vmb/deep"
	if err := attackops.DeepTree(deep, deepDepth); err != nil {
		t.Fatal(err)
	}
	t.Run("deep-exec", func(t *testing.T) {
		drain(t, f.rd)
		inside(t, "deep "+deep+" exec x", "EPERM")
		var unnamed bool
		for _, ev := range drain(t, f.rd) {
			unnamed = unnamed || (ev.Unnamed && ev.CgroupID == f.cg.ID && ev.Resource == "x")
		}
		if !unnamed {
			t.Error("no event says the kernel could not name the program")
		}
	})
	t.Run("deep-open", func(t *testing.T) {
		inside(t, "deep "+deep+" read secret", "EPERM")
	})

	// Item 2: a chroot does not rename files: /tmp/vmb/bin/blocked run
	// as /bin/blocked in a chroot to /tmp/vmb, /tmp/vmb/secret read as
	// /secret, are what the rules name.
	t.Run("chroot-exec", func(t *testing.T) {
		copyFile(t, "/bin/busybox", "/tmp/vmb/bin/blocked")
		inside(t, "chroot-exec /tmp/vmb /bin/blocked", "EPERM")
	})
	t.Run("chroot-open", func(t *testing.T) {
		copyFile(t, "/bin/busybox", "/tmp/vmb/busybox")
		touch(t, "/tmp/vmb/secret", 0)
		inside(t, "chroot-run /tmp/vmb /busybox cat /secret", "EPERM")
	})

	// Item 8, in part: fromSource is the program's name in the namespace,
	// so a copy of the allowed source at the same path inside a chroot is
	// not it.
	t.Run("fromsource-chroot", func(t *testing.T) {
		fs := policytest.Compile(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: fromsource, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  file:
    matchPaths:
    - path: /tmp/vmb/jail/secret
      fromSource:
      - path: /tmp/vmb/bin/cat
      action: Allow
    - path: /tmp/vmb/jail/secret
      action: Block
`)
		cg := testenv.NewCgroup(t)
		if _, err := f.e.Apply(cg.ID, fs); err != nil {
			t.Fatal(err)
		}
		copyFile(t, "/bin/busybox", "/tmp/vmb/bin/cat")
		copyFile(t, "/bin/busybox", "/tmp/vmb/jail/tmp/vmb/bin/cat")
		touch(t, "/tmp/vmb/jail/secret", 0)
		if got := batch(t, cg, app, 0, []string{"exec-cat /tmp/vmb/bin/cat /tmp/vmb/jail/secret", "chroot-run /tmp/vmb/jail /tmp/vmb/bin/cat /secret"}); strings.Join(got, " ") != "ok EPERM" {
			t.Errorf("the allowed source, then its copy in a chroot, reading the file: %v, want ok EPERM", got)
		}
		if got := batch(t, nil, app, 0, []string{"chroot-run /tmp/vmb/jail /tmp/vmb/bin/cat /secret"}); got[0] != "ok" {
			t.Errorf("outside: %s", got[0])
		}
	})

	// Item 8: a fromSource program is named by its path, and the
	// container cannot put another file at that name (policy/guard.go):
	// not by renaming one onto it, by renaming the directory
	// above it, nor by writing over it; and a copy of it elsewhere is
	// another name, which gets nothing.
	srcSet := policytest.Compile(t, attackops.FromSourcePolicy)
	srcCg := testenv.NewCgroup(t)
	if _, err := f.e.Apply(srcCg.ID, srcSet); err != nil {
		t.Fatal(err)
	}
	copyFile(t, "/bin/busybox", "/tmp/vmfs/bin/cat")
	copyFile(t, "/bin/busybox", "/tmp/vmfs/evil/cat") // busybox runs as its name
	touch(t, "/tmp/vmfs/secret", 0)
	if err := os.MkdirAll("/tmp/vmfs/copy", 0o755); err != nil {
		t.Fatal(err)
	}
	srcCase := func(t *testing.T, ops []string, want string) {
		t.Helper()
		if got := batch(t, srcCg, app, 0, ops); strings.Join(got, " ") != want {
			t.Errorf("%q in the enforced cgroup: %v, want %s", ops, got, want)
		}
	}
	t.Run("fromsource-rename", func(t *testing.T) {
		drain(t, f.rd)
		srcCase(t, []string{
			"rename /tmp/vmfs/evil/cat /tmp/vmfs/bin/cat",
			"rename /tmp/vmfs/bin /tmp/vmfs/bin2",
			"unlink /tmp/vmfs/bin/cat",
			"exec-cat /tmp/vmfs/evil/cat /tmp/vmfs/secret",
			"exec-cat /tmp/vmfs/bin/cat /tmp/vmfs/secret", // the grant is intact
		}, "EPERM EPERM EPERM EPERM ok")
		var guard bool
		for _, ev := range drain(t, f.rd) {
			guard = guard || (ev.CgroupID == srcCg.ID && ev.Resource == "/tmp/vmfs/bin" && ev.Action == policy.Block)
		}
		if !guard {
			t.Error("no Block event names the source's directory")
		}
		if got := batch(t, nil, app, 0, []string{"rename /tmp/vmfs/bin /tmp/vmfs/bin2", "rename /tmp/vmfs/bin2 /tmp/vmfs/bin"}); strings.Join(got, " ") != "ok ok" {
			t.Errorf("outside, renaming the source's directory and back: %v", got)
		}
	})
	t.Run("fromsource-copy", func(t *testing.T) {
		srcCase(t, []string{
			"write /tmp/vmfs/bin/cat", // cp evil /tmp/vmfs/bin/cat
			"copy /tmp/vmfs/bin/cat /tmp/vmfs/copy/cat",
			"exec-cat /tmp/vmfs/copy/cat /tmp/vmfs/secret",
		}, "EPERM ok EPERM")
		if got := batch(t, nil, app, 0, []string{"write /tmp/vmfs/bin/cat", "exec-cat /tmp/vmfs/copy/cat /tmp/vmfs/secret"}); strings.Join(got, " ") != "ok ok" {
			t.Errorf("outside, opening the source for writing and reading by the copy: %v", got)
		}
	})

	// ... nor does a bind mount, another name for the files below it (as
	// a hard link is for one), made by a process that may mount in
	// namespaces of its own: an enforced container with file or process
	// rules may not mount (built in).
	t.Run("userns-bind-open", func(t *testing.T) {
		touch(t, "/tmp/vmb/secret", 0)
		if err := os.MkdirAll("/tmp/vmbind", 0o755); err != nil {
			t.Fatal(err)
		}
		drain(t, f.rd)
		inside(t, "userns-bind /tmp/vmb /tmp/vmbind secret", "EPERM")
		var builtin bool
		for _, ev := range drain(t, f.rd) {
			builtin = builtin || (ev.Builtin && ev.Resource == "/tmp/vmbind")
		}
		if !builtin {
			t.Error("no built-in event names the mount point")
		}
	})

	// ... nor a detached mount tree: its files have no name in the
	// namespace, which fails closed.
	t.Run("open-tree-open", func(t *testing.T) {
		touch(t, "/tmp/vmb/secret", 0)
		inside(t, "open-tree /tmp/vmb secret", "EPERM")
	})

	// Item 4: a change made without a write-open is still a write; a
	// program a Block rule names may not be moved or linked to another
	// name, nor mapped executable by mprotect.
	fresh := func() {
		touch(t, "/tmp/vmb/ro", 0)
		touch(t, "/tmp/vmb/secret", 0)
		touch(t, "/tmp/vmb/other", 0)
		copyFile(t, "/bin/busybox", "/tmp/vmb/bin/blocked")
		for _, p := range []string{"/tmp/vmb/moved", "/tmp/vmb/hl3", "/tmp/vmb/preload"} {
			os.Remove(p)
		}
	}
	for _, c := range []struct{ name, op string }{
		{"trunc-readonly", "trunc /tmp/vmb/ro"},
		{"truncate-readonly", "truncate /tmp/vmb/ro"},
		{"unlink-protected", "unlink /tmp/vmb/ro"},
		{"rename-over", "rename /tmp/vmb/other /tmp/vmb/secret"},
		{"rename-exec", "rename /tmp/vmb/bin/blocked /tmp/vmb/moved"},
		{"link-blocked", "link /tmp/vmb/secret /tmp/vmb/hl3"},
		{"symlink-create", "symlink /tmp/vmb/other /tmp/vmb/preload"},
		{"mprotect-exec", "mprotect /tmp/vmb/bin/blocked"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fresh()
			if got := batch(t, f.cg, app, 0, []string{c.op}); got[0] != "EPERM" {
				t.Errorf("%s in the enforced cgroup: %s, want EPERM", c.op, got[0])
			}
			fresh()
			if got := batch(t, nil, app, 0, []string{c.op}); got[0] != "ok" {
				t.Errorf("%s outside: %s, want ok", c.op, got[0])
			}
			fresh()
		})
	}
	// ... and extended attributes, whose hooks get no mount (so no name):
	// security.* and trusted.* ones fail closed where the file class has
	// rules; user.* ones are data beside the file and pass.
	t.Run("xattr-trusted", func(t *testing.T) {
		fresh()
		drain(t, f.rd)
		inside(t, "setxattr /tmp/vmb/other trusted.armor", "EPERM")
		var unnamed bool
		for _, ev := range drain(t, f.rd) {
			unnamed = unnamed || (ev.Unnamed && ev.CgroupID == f.cg.ID && ev.Resource == "other")
		}
		if !unnamed {
			t.Error("no event names the file whose attribute was refused")
		}
	})
	t.Run("readonly-read", func(t *testing.T) {
		fresh()
		inside(t, "read /tmp/vmb/ro", "ok")
	})

	// Item 7: a socket is named by what the kernel makes of it: MPTCP is
	// tcp, an AF_PACKET raw socket is raw, SOCK_SEQPACKET with protocol 0
	// is SCTP. (Outside, a protocol the kernel lacks — sctp without its
	// module — is refused too, but not with EPERM.)
	netSet := policytest.Compile(t, strings.Replace(bypassPolicy, "  capabilities:",
		"  network:\n    matchProtocols:\n    - protocol: tcp\n    - protocol: raw\n    - protocol: sctp\n  capabilities:", 1))
	netCg := testenv.NewCgroup(t)
	if _, err := f.e.Apply(netCg.ID, netSet); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]string{"mptcp-tcp": "mptcp", "packet-raw": "packet-raw", "sctp-seqpacket": "sctp-seqpacket"} {
		t.Run(name, func(t *testing.T) {
			if got := batch(t, netCg, app, 0, []string{op}); got[0] != "EPERM" {
				t.Errorf("%s under a tcp, raw and sctp Block: %s, want EPERM", op, got[0])
			}
			if got := batch(t, nil, app, 0, []string{op}); got[0] == "EPERM" {
				t.Errorf("%s outside: %s", op, got[0])
			}
		})
	}

	// ... and a raw socket that writes whole IP packets (IPPROTO_RAW) is
	// every IP protocol's: an icmp Block covers it.
	t.Run("icmp-over-ipproto-raw", func(t *testing.T) {
		icmp := policytest.Compile(t, strings.Replace(bypassPolicy, "  capabilities:",
			"  network:\n    matchProtocols:\n    - protocol: icmp\n  capabilities:", 1))
		cg := testenv.NewCgroup(t)
		if _, err := f.e.Apply(cg.ID, icmp); err != nil {
			t.Fatal(err)
		}
		if got := batch(t, cg, app, 0, []string{"ipproto-raw", "udp"}); strings.Join(got, " ") != "EPERM ok" {
			t.Errorf("IPPROTO_RAW and udp sockets under an icmp Block: %v, want EPERM ok", got)
		}
		if got := batch(t, nil, app, 0, []string{"ipproto-raw"}); got[0] != "ok" {
			t.Errorf("IPPROTO_RAW outside: %s", got[0])
		}
	})

	// Item 5: a child cgroup is in no set; an enforced container may not
	// make one (to move or clone a process into it), as it may not write
	// cgroup files.
	t.Run("cgroup-mkdir-move", func(t *testing.T) {
		drain(t, f.rd)
		inside(t, "mkdir "+filepath.Join(f.cg.Path, "escape"), "EPERM")
		var builtin bool
		for _, ev := range drain(t, f.rd) {
			builtin = builtin || (ev.Builtin && ev.Resource == "escape")
		}
		if !builtin {
			t.Error("no built-in event names the cgroup it refused")
		}
	})

	// ... nor clone a process into one (clone3 CLONE_INTO_CGROUP takes a
	// read-only directory): a child cgroup the node made is in no set.
	t.Run("cgroup-clone-child", func(t *testing.T) {
		child := f.cg.Child(t)
		drain(t, f.rd)
		inside(t, "clone-into "+child.Path+" read /tmp/vmb/bin/app", "EPERM")
		var builtin bool
		for _, ev := range drain(t, f.rd) {
			builtin = builtin || (ev.Builtin && ev.Resource == "CLONE_INTO_CGROUP")
		}
		if !builtin {
			t.Error("no built-in event names CLONE_INTO_CGROUP")
		}
	})

	// Item 1: with a host set loaded, the node's own processes (the
	// runtime) still write cgroup files: a container can start; a
	// container's process still cannot.
	t.Run("host-policy-container-start", func(t *testing.T) {
		touch(t, "/tmp/vmb/host-audited", 0)
		touch(t, "/tmp/vmb/secret", 0)
		if _, err := f.e.ApplyHost(policytest.Compile(t, hostAuditPolicy)); err != nil {
			t.Fatal(err)
		}
		defer f.e.RemoveHost()
		cg := testenv.NewCgroup(t)
		if _, err := f.e.Apply(cg.ID, rs); err != nil {
			t.Fatal(err)
		}
		// The runtime's part: it moves its child into the new cgroup (a
		// write to cgroup.procs), which starts the container's program.
		// The child, exec'd on the host under the host set (which
		// records the node's programs too), is still the runtime's setup
		// (setup.h), which the container's rules do not govern (runc
		// init's pivot_root, refused to the container, depends on it).
		if got := movedIn(t, cg.Path, helperCmd(app), []string{"read /tmp/vmb/secret", "child-ns read /tmp/vmb/secret"}); strings.Join(got, " ") != "ok EPERM" {
			t.Errorf("a container started by a host process under a host policy: %v, want ok (the runtime's setup) EPERM (the container's program)", got)
		}
		root := filepath.Dir(cg.Path)
		if got := batch(t, f.cg, app, 0, []string{"cgmove " + root}); got[0] != "EPERM" {
			t.Errorf("a container's process moving itself: %s, want EPERM", got[0])
		}
		// The host set still applies to the node's processes.
		drain(t, f.rd)
		if got := batch(t, nil, app, 0, []string{"read /tmp/vmb/host-audited"}); got[0] != "ok" {
			t.Errorf("host process reading its audited file: %s", got[0])
		}
		var audited bool
		for _, ev := range drain(t, f.rd) {
			audited = audited || ev.Resource == "/tmp/vmb/host-audited"
		}
		if !audited {
			t.Error("no Audit event for the host process")
		}
	})

	// Item 6: decisions preempted halfway on one CPU do not share memory
	// (scratch_vm_test.go).
	t.Run("scratch-race-preempt", func(t *testing.T) { scratchRace(t, f.e, app) })
}
