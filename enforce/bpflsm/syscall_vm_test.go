//go:build vmtest

package bpflsm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/int80"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/internal/vmtest"
	"github.com/nri-armor/nri-armor/policy"
)

// The i386 numbers the 32-bit ops use (asm/unistd_32.h).
const (
	nr32Mkdir  = 39
	nr32Fchmod = 94
)

func init() {
	withFile := func(path string, f func(fd int) error) error {
		fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		return f(fd)
	}
	errno := func(r int32) error {
		if r < 0 {
			return syscall.Errno(-r)
		}
		return nil
	}
	// By number, as syscall(2) makes them.
	bypassOps["fchmod"] = func(arg string) error {
		return withFile(arg, func(fd int) error {
			_, _, e := syscall.Syscall(syscall.SYS_FCHMOD, uintptr(fd), 0o644, 0)
			if e != 0 {
				return e
			}
			return nil
		})
	}
	bypassOps["chmod"] = func(arg string) error {
		p, _ := syscall.BytePtrFromString(arg)
		_, _, e := syscall.Syscall(syscall.SYS_CHMOD, uintptr(unsafe.Pointer(p)), 0o644, 0)
		if e != 0 {
			return e
		}
		return nil
	}
	bypassOps["mkdirat"] = func(arg string) error {
		p, _ := syscall.BytePtrFromString(arg)
		_, _, e := syscall.Syscall(syscall.SYS_MKDIRAT, uintptr(0xffffff9c) /* AT_FDCWD */, uintptr(unsafe.Pointer(p)), 0o755)
		if e != 0 {
			return e
		}
		return syscall.Rmdir(arg)
	}
	// The 32-bit entry (int 0x80) of a 64-bit process.
	bypassOps["fchmod32"] = func(arg string) error {
		return withFile(arg, func(fd int) error { return errno(int80.Syscall(nr32Fchmod, uintptr(fd), 0o644, 0)) })
	}
	bypassOps["mkdir32"] = func(arg string) error {
		// The path must lie below 4 GiB: the 32-bit entry cuts pointers.
		mem, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|0x40 /* MAP_32BIT */)
		if err != nil {
			return err
		}
		defer syscall.Munmap(mem)
		copy(mem, arg)
		if err := errno(int80.Syscall(nr32Mkdir, uintptr(unsafe.Pointer(&mem[0])), 0o755, 0)); err != nil {
			return err
		}
		return syscall.Rmdir(arg)
	}
}

// TestSyscallFmodRet records what the kernel says to the mechanism the
// issue suggested, fmod_ret on a system call's entry point: the verifier
// takes fmod_ret only on functions of the error-injection list (empty
// without CONFIG_FUNCTION_ERROR_INJECTION, as in Debian's kernels) and on
// security_* ones. A measurement: it fails only if the control, an
// fmod_ret program on a security_ function, cannot load.
func TestSyscallFmodRet(t *testing.T) {
	vmtest.RequireLSM(t, "bpf")
	load := func(fn string) error {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Type: ebpf.Tracing, AttachType: ebpf.AttachModifyReturn, AttachTo: fn, License: "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		})
		if err == nil {
			p.Close()
		}
		return err
	}
	for _, fn := range []string{"__x64_sys_fchmod", "__ia32_sys_fchmod", "__x64_sys_mkdirat"} {
		if err := load(fn); err != nil {
			t.Logf("fmod_ret on %s: refused: %v", fn, err)
		} else {
			t.Logf("fmod_ret on %s: loads on this kernel", fn)
		}
	}
	if err := load("security_path_chmod"); err != nil {
		t.Errorf("fmod_ret on security_path_chmod (the control): %v", err)
	}
}

// TestSyscallFromSource: a matchSyscalls Block with fromSource refuses the
// call (by number, through the 64-bit and the 32-bit entries) for the
// named executable only; another executable in the same container makes
// it; an Audit rule lets it through with an event naming the rule; a
// container without the rules is not touched; the hooks are attached only
// while a set needs them, and removing the set lifts the rules.
func TestSyscallFromSource(t *testing.T) {
	f := newLSMFixture(t)
	self, _ := os.Executable()
	a, b := "/tmp/vms/a", "/tmp/vms/b"
	copyFile(t, self, a)
	copyFile(t, self, b)
	file := "/tmp/vms/file"
	touch(t, file, 0)
	if h := f.e.SysHooks(); len(h) != 0 {
		t.Fatalf("hooks attached with no syscall rule loaded: %v", h)
	}
	rs := policytest.Compile(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: sys-from-source, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  syscalls:
    matchSyscalls:
    - syscall: [fchmod, mkdirat, mkdir]
      fromSource: [{path: /tmp/vms/a}]
      action: Block
    - syscall: [chmod]
      fromSource: [{path: /tmp/vms/a}]
      action: Audit
  action: Block
`)
	if got := KernelSyscallRules(rs); len(got) != len(rs.Syscalls.Rules) {
		t.Fatalf("kernel syscall rules %v of %d", got, len(rs.Syscalls.Rules))
	}
	un, err := f.e.Apply(f.cg.ID, rs)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 0 {
		t.Errorf("unenforced: %v", un)
	}
	hooks := f.e.SysHooks()
	if hooks["path_chmod"] != 1 || hooks["path_mkdir"] != 1 || len(hooks) != 2 {
		t.Errorf("hooks %v, want path_chmod and path_mkdir, held once", hooks)
	}
	ops := []string{"fchmod " + file, "mkdirat /tmp/vms/d", "chmod " + file}
	ops32 := []string{"fchmod32 " + file, "mkdir32 /tmp/vms/d32"}
	drain(t, f.rd)
	got := batch(t, f.cg, a, 0, ops)
	want := []string{"EPERM", "EPERM", "ok"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s in the container: %v, want %v", a, got, want)
	}
	evs := drain(t, f.rd)
	rule := func(name string) *policy.Rule {
		for _, r := range rs.Syscalls.Rules {
			if r.Match.Value == name {
				return r
			}
		}
		t.Fatalf("no rule for %s", name)
		return nil
	}
	wantEv := []struct {
		name   string
		nr     int
		action policy.Action
	}{{"fchmod", syscall.SYS_FCHMOD, policy.Block}, {"mkdirat", syscall.SYS_MKDIRAT, policy.Block}, {"chmod", syscall.SYS_CHMOD, policy.Audit}}
	var seen []string
	j := 0
	for _, ev := range evs {
		seen = append(seen, fmt.Sprintf("%s %s rule %d nr %d (32-bit %t) retval %d", ev.Class, ev.Action, ev.RuleID, ev.Syscall, ev.Syscall32, ev.Retval))
		if j < len(wantEv) && ev.Class == policy.ClassSyscalls && ev.Syscall == wantEv[j].nr && !ev.Syscall32 &&
			ev.Action == wantEv[j].action && ev.RuleID == uint32(rule(wantEv[j].name).ID) {
			j++
		}
	}
	if j < len(wantEv) {
		t.Errorf("missing event for %s; events:\n%s", wantEv[j].name, strings.Join(seen, "\n"))
	}
	if r := rule("fchmod"); r.Policy != "sys-from-source" {
		t.Errorf("the event's rule names policy %q", r.Policy)
	}

	// The 32-bit entry: refused as well.
	if !int80.Supported {
		t.Log("no int 0x80 on this architecture")
	} else if got := batch(t, f.cg, a, 0, ops32); strings.Join(got, " ") != "EPERM EPERM" {
		t.Errorf("%s, 32-bit entry: %v, want EPERM EPERM", a, got)
	}
	// Another executable in the same container.
	if got := batch(t, f.cg, b, 0, append(ops, ops32...)); strings.Join(got, " ") != "ok ok ok ok ok" {
		t.Errorf("%s in the same container: %v, want every call to pass", b, got)
	}
	// The same executable in a container without the rules.
	other := testenv.NewCgroup(t)
	if got := batch(t, other, a, 0, append(ops, ops32...)); strings.Join(got, " ") != "ok ok ok ok ok" {
		t.Errorf("%s in a container without rules: %v, want every call to pass", a, got)
	}
	// Removing the set lifts the rules and detaches the hooks.
	if err := f.e.Remove(f.cg.ID); err != nil {
		t.Fatal(err)
	}
	if h := f.e.SysHooks(); len(h) != 0 {
		t.Errorf("hooks still attached with no set: %v", h)
	}
	if got := batch(t, f.cg, a, 0, append(ops, ops32...)); strings.Join(got, " ") != "ok ok ok ok ok" {
		t.Errorf("%s after the set went: %v, want every call to pass", a, got)
	}
}

// TestSyscallFromSourceSharedHooks: two sets needing the same hook hold it
// together; it stays while one does.
func TestSyscallFromSourceSharedHooks(t *testing.T) {
	f := newLSMFixture(t)
	self, _ := os.Executable()
	a := "/tmp/vms/a"
	copyFile(t, self, a)
	file := "/tmp/vms/file2"
	touch(t, file, 0)
	mk := func(name string) *policy.RuleSet {
		return policytest.Compile(t, fmt.Sprintf(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: %s, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  syscalls:
    matchSyscalls:
    - syscall: [fchmod]
      fromSource: [{path: /tmp/vms/a}]
  action: Block
`, name))
	}
	cg2 := testenv.NewCgroup(t)
	if _, err := f.e.Apply(f.cg.ID, mk("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Apply(cg2.ID, mk("two")); err != nil {
		t.Fatal(err)
	}
	if h := f.e.SysHooks(); h["path_chmod"] != 2 {
		t.Errorf("hooks %v, want path_chmod held by both sets", h)
	}
	if err := f.e.Remove(f.cg.ID); err != nil {
		t.Fatal(err)
	}
	if got := batch(t, cg2, a, 0, []string{"fchmod " + file}); got[0] != "EPERM" {
		t.Errorf("the other set's rule after one set went: %v", got)
	}
	if err := f.e.Remove(cg2.ID); err != nil {
		t.Fatal(err)
	}
	if h := f.e.SysHooks(); len(h) != 0 {
		t.Errorf("hooks %v after both sets went", h)
	}
}

func init() {
	low := func(n int) ([]byte, error) { // memory below 4 GiB, for the 32-bit entry's pointers
		return syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|0x40 /* MAP_32BIT */)
	}
	closeIf := func(r int32) error {
		if r < 0 {
			return syscall.Errno(-r)
		}
		syscall.Close(int(r))
		return nil
	}
	// x32: the 64-bit table's numbers with bit 30 set.
	bypassOps["fchmod-x32"] = func(arg string) error {
		fd, err := syscall.Open(arg, syscall.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		_, _, e := syscall.Syscall(syscall.SYS_FCHMOD|0x40000000, uintptr(fd), 0o644, 0)
		if e != 0 {
			return e
		}
		return nil
	}
	bypassOps["socket64"] = func(string) error {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
		if err == nil {
			syscall.Close(fd)
		}
		return err
	}
	// socket(2) through the 32-bit table: the call itself (359) and the
	// socketcall multiplexer (102, SYS_SOCKET = 1).
	bypassOps["socket32"] = func(string) error {
		return closeIf(int80.Syscall(359, syscall.AF_INET, syscall.SOCK_DGRAM, 0))
	}
	bypassOps["socketcall32"] = func(string) error {
		mem, err := low(4096)
		if err != nil {
			return err
		}
		defer syscall.Munmap(mem)
		args := (*[3]uint32)(unsafe.Pointer(&mem[0]))
		args[0], args[1], args[2] = syscall.AF_INET, syscall.SOCK_DGRAM, 0
		return closeIf(int80.Syscall(102, 1, uintptr(unsafe.Pointer(&mem[0])), 0))
	}
}

// TestSyscallBypass: other ways into the same system call for the named
// executable — the x32 entry, socket(2) through the 32-bit table and
// through its socketcall multiplexer — are refused (or do not exist: x32
// is off by default in Debian's kernel, ENOSYS), while another executable
// makes them.
func TestSyscallBypass(t *testing.T) {
	f := newLSMFixture(t)
	self, _ := os.Executable()
	a, b := "/tmp/vms/a", "/tmp/vms/b"
	copyFile(t, self, a)
	copyFile(t, self, b)
	file := "/tmp/vms/file3"
	touch(t, file, 0)
	rs := policytest.Compile(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: sys-bypass, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  syscalls:
    matchSyscalls:
    - syscall: [fchmod, socket]
      fromSource: [{path: /tmp/vms/a}]
  action: Block
`)
	if _, err := f.e.Apply(f.cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	ops := []string{"fchmod-x32 " + file, "socket64", "socket32", "socketcall32"}
	got := batch(t, f.cg, a, 0, ops)
	for i, op := range ops {
		if got[i] != "EPERM" && !(op == "fchmod-x32 "+file && got[i] == fmt.Sprintf("errno %d", int(syscall.ENOSYS))) {
			t.Errorf("%s by %s: %s, want EPERM", op, a, got[i])
		}
	}
	t.Logf("x32 fchmod by the named executable: %s", got[0])
	got = batch(t, f.cg, b, 0, ops[1:])
	if strings.Join(got, " ") != "ok ok ok" {
		t.Errorf("%v by %s: %v, want every call to pass", ops[1:], b, got)
	}
}

// TestSyscallFromSourceRestart: the engine's process goes (its descriptors
// closed, the pins stay) and the rule stays in force; the next engine
// finds the set's hooks in the pins, holds them, and releases them when
// the set goes.
func TestSyscallFromSourceRestart(t *testing.T) {
	vmtest.RequireLSM(t, "bpf")
	root, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	pin := testPinPath(t)
	cfg := Config{PinPath: pin, MaxContainers: 64, MaxRuleEntries: 1 << 12, RingBytes: 1 << 16}
	e, err := OpenEngine(cfg, HooksLSM, root)
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	a := "/tmp/vms/a"
	copyFile(t, self, a)
	file := "/tmp/vms/file4"
	touch(t, file, 0)
	cg := testenv.NewCgroup(t)
	rs := policytest.Compile(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: sys-restart, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  syscalls:
    matchSyscalls:
    - syscall: [fchmod]
      fromSource: [{path: /tmp/vms/a}]
  action: Block
`)
	if _, err := e.Apply(cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if got := batch(t, cg, a, 0, []string{"fchmod " + file}); got[0] != "EPERM" {
		t.Errorf("with no engine running: %v, want EPERM", got)
	}
	e, err = OpenEngine(cfg, HooksLSM, root)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if h := e.SysHooks(); h["path_chmod"] != 1 || len(h) != 1 {
		t.Errorf("hooks after the restart: %v", h)
	}
	if _, err := e.Apply(cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	if got := batch(t, cg, a, 0, []string{"fchmod " + file}); got[0] != "EPERM" {
		t.Errorf("after the restart: %v, want EPERM", got)
	}
	if err := e.Remove(cg.ID); err != nil {
		t.Fatal(err)
	}
	if h := e.SysHooks(); len(h) != 0 {
		t.Errorf("hooks after the set went: %v", h)
	}
	if pins, _ := filepath.Glob(filepath.Join(pin, "links", "sys_*")); len(pins) != 0 {
		t.Errorf("pins left: %v", pins)
	}
	if got := batch(t, cg, a, 0, []string{"fchmod " + file}); got[0] != "ok" {
		t.Errorf("after the set went: %v, want ok", got)
	}
}
