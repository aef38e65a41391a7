package bpflsm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/policy"
)

// Syscall rules with fromSource, enforced in the kernel (armor_sys in
// bpf/enforce/armor.bpf.c). A seccomp filter sees a call's number, never
// the executable making it; fmod_ret programs on the calls' entry points
// (__x64_sys_*) would, but the verifier allows fmod_ret only on functions
// of the kernel's error-injection list, which kernels built without
// CONFIG_FUNCTION_ERROR_INJECTION (Debian's 6.1) do not have
// (TestSyscallFmodRet measures it). So a call is decided at an LSM hook
// that each of its calls with an effect passes, by the number of the
// system call the task is in (its saved orig_ax; 64-bit table, or the
// 32-bit one for int 0x80) and its executable's identity (exe_store, as
// every class's fromSource). A system call with no such hook is left to
// seccomp's log and armor-tracer (reported unenforced), as before.

// sysHook is one LSM hook armor_sys can be attached to; its cookie (the
// key's hook byte) is its place in sysHooks, from 1.
var sysHooks = []string{
	"path_mkdir", "path_rmdir", "path_unlink", "path_rename", "path_link", "path_symlink", "path_mknod",
	"path_chmod", "path_chown", "path_truncate", "file_truncate",
	"sb_mount", "sb_umount", "sb_pivotroot", "move_mount",
	"socket_create", "socket_connect", "socket_bind", "socket_listen", "socket_accept", "socket_socketpair",
	"task_kill", "ptrace_access_check", "ptrace_traceme", "bpf", "perf_event_open",
	"kernel_load_data", "kernel_read_file", "bprm_check_security",
	"inode_setxattr", "inode_removexattr", "file_mprotect", "mmap_file", "file_open", "task_alloc",
}

func hookCookie(hook string) uint8 {
	for i, h := range sysHooks {
		if h == hook {
			return uint8(i + 1)
		}
	}
	return 0
}

// syscallHooks maps the x86_64 system calls that armor_sys enforces to
// the LSM hooks that every call of each passes before it has an effect (a
// call that fails before its hook has none). Those of a kernel that lacks
// a hook (file_truncate before 6.2) are skipped; at least one must exist.
var syscallHooks = map[string][]string{
	"mkdir": {"path_mkdir"}, "mkdirat": {"path_mkdir"},
	"rmdir": {"path_rmdir"}, "unlink": {"path_unlink"}, "unlinkat": {"path_unlink", "path_rmdir"},
	"rename": {"path_rename"}, "renameat": {"path_rename"}, "renameat2": {"path_rename"},
	"link": {"path_link"}, "linkat": {"path_link"}, "symlink": {"path_symlink"}, "symlinkat": {"path_symlink"},
	"mknod": {"path_mknod"}, "mknodat": {"path_mknod"},
	"chmod": {"path_chmod"}, "fchmod": {"path_chmod"}, "fchmodat": {"path_chmod"},
	"chown": {"path_chown"}, "fchown": {"path_chown"}, "lchown": {"path_chown"}, "fchownat": {"path_chown"},
	"truncate": {"path_truncate"}, "ftruncate": {"path_truncate", "file_truncate"},
	"mount": {"sb_mount"}, "umount2": {"sb_umount"}, "pivot_root": {"sb_pivotroot"}, "move_mount": {"move_mount"},
	"socket": {"socket_create"}, "connect": {"socket_connect"}, "bind": {"socket_bind"}, "listen": {"socket_listen"},
	"accept": {"socket_accept"}, "accept4": {"socket_accept"}, "socketpair": {"socket_socketpair"},
	"kill": {"task_kill"}, "tkill": {"task_kill"}, "tgkill": {"task_kill"},
	// Attaching (ATTACH, SEIZE, TRACEME): every other request needs a tracee attached.
	"ptrace":          {"ptrace_access_check", "ptrace_traceme"},
	"bpf":             {"bpf"},
	"perf_event_open": {"perf_event_open"},
	"init_module":     {"kernel_load_data"}, "finit_module": {"kernel_read_file"},
	"execve": {"bprm_check_security"}, "execveat": {"bprm_check_security"},
	"setxattr": {"inode_setxattr"}, "lsetxattr": {"inode_setxattr"}, "fsetxattr": {"inode_setxattr"},
	"removexattr": {"inode_removexattr"}, "lremovexattr": {"inode_removexattr"}, "fremovexattr": {"inode_removexattr"},
	"mprotect": {"file_mprotect"}, "pkey_mprotect": {"file_mprotect"}, "mmap": {"mmap_file"},
	// An O_PATH open passes no LSM hook (it gives no access to the
	// file's content): not refused (docs/seccomp.md, Known limits).
	"open": {"file_open"}, "openat": {"file_open"}, "openat2": {"file_open"}, "creat": {"file_open"},
	"fork": {"task_alloc"}, "vfork": {"task_alloc"}, "clone": {"task_alloc"}, "clone3": {"task_alloc"},
}

// ia32Syscalls are the 32-bit (int 0x80, sysenter) numbers of each call
// above, by its x86_64 name: its own, and those of the 32-bit table's
// variants of the same call (chown32, truncate64, mmap2 …), so that a
// 64-bit process cannot pass a rule through the other table. socketcall
// (102) multiplexes the socket calls: it is decided at each socket
// call's own hook. From the UAPI header asm/unistd_32.h.
var ia32Syscalls = map[string][]uint16{
	"mkdir": {39}, "mkdirat": {296}, "rmdir": {40}, "unlink": {10}, "unlinkat": {301},
	"rename": {38}, "renameat": {302}, "renameat2": {353}, "link": {9}, "linkat": {303},
	"symlink": {83}, "symlinkat": {304}, "mknod": {14}, "mknodat": {297},
	"chmod": {15}, "fchmod": {94}, "fchmodat": {306},
	"chown": {182, 212}, "fchown": {95, 207}, "lchown": {16, 198}, "fchownat": {298},
	"truncate": {92, 193}, "ftruncate": {93, 194},
	"mount": {21}, "umount2": {52, 22}, "pivot_root": {217}, "move_mount": {429},
	"socket": {359, 102}, "connect": {362, 102}, "bind": {361, 102}, "listen": {363, 102},
	"accept": {102}, "accept4": {364, 102}, "socketpair": {360, 102},
	"kill": {37}, "tkill": {238}, "tgkill": {270}, "ptrace": {26}, "bpf": {357}, "perf_event_open": {336},
	"init_module": {128}, "finit_module": {350}, "execve": {11}, "execveat": {358},
	"setxattr": {226}, "lsetxattr": {227}, "fsetxattr": {228},
	"removexattr": {235}, "lremovexattr": {236}, "fremovexattr": {237},
	"mprotect": {125}, "pkey_mprotect": {380}, "mmap": {90, 192},
	"open": {5}, "openat": {295}, "openat2": {437}, "creat": {8},
	"fork": {2}, "vfork": {190}, "clone": {120}, "clone3": {435},
}

// KernelSyscall says whether armor_sys enforces a syscall rule (by its
// rule alone: the node must also have BPF-LSM active), and why not: a
// matchSyscalls rule with fromSource paths, Block or Audit, naming a call
// with an LSM hook on x86_64.
func KernelSyscall(r *policy.Rule) (bool, string) {
	if r.Class != policy.ClassSyscalls || r.Match.Type != policy.MatchSyscall {
		return false, "not a syscall rule"
	}
	switch {
	case runtime.GOARCH != "amd64":
		return false, "BPF-LSM enforces syscall rules on x86_64 only"
	case r.Match.Path != "":
		return false, "a syscall rule with a path: the path is a user-memory argument, racy to read at the call (docs/seccomp.md)"
	case len(r.FromSource) == 0:
		return false, "no fromSource: seccomp enforces it"
	case r.Action == policy.Allow:
		return false, "Allow: syscalls have no allow-list mode"
	}
	for _, s := range r.FromSource {
		if s.Path == "" {
			return false, "fromSource directories are not enforced by the BPF programs"
		}
	}
	if _, ok := syscallHooks[r.Match.Value]; !ok {
		return false, fmt.Sprintf("system call %s passes no LSM hook that BPF-LSM could decide it at", r.Match.Value)
	}
	return true, ""
}

// KernelSyscallRules are the ids of rs's syscall rules that armor_sys
// enforces where BPF-LSM is active (KernelSyscall), sorted.
func KernelSyscallRules(rs *policy.RuleSet) []int {
	var ids []int
	for _, r := range rs.Syscalls.Rules {
		if ok, _ := KernelSyscall(r); ok {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// encodeSyscalls adds rs's kernel-enforced syscall rules to enc: one
// entry per (hook, table, number, source), the best rule's verdict.
func encodeSyscalls(enc *Encoded, rs *policy.RuleSet, setID uint32, paths PathKey) {
	type entry struct {
		key  armorSysKey
		best *policy.Rule
	}
	entries := map[armorSysKey]*entry{}
	var order []armorSysKey
	hooks := map[string]bool{}
	for _, r := range rs.Syscalls.Rules {
		if ok, _ := KernelSyscall(r); !ok {
			continue
		}
		name := r.Match.Value
		nr64, ok := policy.SyscallNumberOn("amd64", name)
		if !ok {
			continue // refused at creation (MissingSyscalls)
		}
		for _, hook := range syscallHooks[name] {
			hooks[hook] = true
			for _, s := range r.FromSource {
				base := armorSysKey{SetId: setID, Hook: hookCookie(hook), SrcLen: uint32(len(s.Path)), SrcHash: paths.hash(s.Path)}
				keys := []armorSysKey{base}
				keys[0].Nr, keys[0].Abi = uint16(nr64), uint8(armorArmorSysAbiSYS_ABI_64)
				for _, n := range ia32Syscalls[name] {
					k := base
					k.Nr, k.Abi = n, uint8(armorArmorSysAbiSYS_ABI_IA32)
					keys = append(keys, k)
				}
				for _, k := range keys {
					e := entries[k]
					if e == nil {
						e = &entry{key: k}
						entries[k] = e
						order = append(order, k)
					}
					if e.best == nil || r.Beats(e.best) {
						e.best = r
					}
				}
			}
		}
		enc.SysRules = append(enc.SysRules, r.ID)
	}
	for _, k := range order {
		b := entries[k].best
		enc.SysKeys = append(enc.SysKeys, k)
		enc.SysValues = append(enc.SysValues, armorVerdict{RuleId: uint32(b.ID), Action: actionCode(b.Action)})
	}
	for h := range hooks {
		enc.SysHooks = append(enc.SysHooks, h)
	}
	sort.Strings(enc.SysHooks)
	if len(enc.SysKeys) > 0 {
		enc.Header.Syscalls = 1
	}
}

// syscallLimits reports rs's syscall rules that BPF-LSM does not enforce:
// all of them but KernelSyscall's (those without fromSource are seccomp's).
func syscallLimits(rs *policy.RuleSet) []enforce.Unenforced {
	var out []enforce.Unenforced
	for _, r := range rs.Syscalls.Rules {
		ok, why := KernelSyscall(r)
		switch {
		case ok:
		case len(r.FromSource) == 0 || r.Action == policy.Allow:
			out = append(out, enforce.Unenforced{Rule: r, Reason: "syscall rules are enforced by seccomp, not BPF-LSM"})
		default:
			out = append(out, enforce.Unenforced{Rule: r, Reason: "not by BPF-LSM: " + why})
		}
	}
	return out
}

// sysAttach is armor_sys loaded for one hook and attached (its link
// pinned as links/sys_<hook>), with the number of loaded sets that hold it.
type sysAttach struct {
	prog *ebpf.Program
	link link.Link
	refs int
}

func (a *sysAttach) close() {
	if a.link != nil {
		a.link.Close()
	}
	if a.prog != nil {
		a.prog.Close()
	}
}

func (e *Engine) sysPin(hook string) string {
	return filepath.Join(e.cfg.PinPath, "links", "sys_"+hook)
}

// loadSys loads armor_sys for hook, its maps this engine's.
func (e *Engine) loadSys(hook string) (*ebpf.Program, error) {
	if e.sysProg == nil {
		return nil, errors.New("the BPF-LSM programs are not loaded on this node")
	}
	spec := e.sysProg.Copy()
	spec.AttachTo = hook
	for i := range spec.Instructions {
		ins := &spec.Instructions[i]
		if ref := ins.Reference(); ref != "" && ins.IsLoadFromMap() {
			m := e.coll.Maps[ref] // the data sections; Assign took the rest
			if m == nil {
				m = e.mapByName(ref)
			}
			if m == nil {
				return nil, fmt.Errorf("armor_sys: map %s not loaded", ref)
			}
			if err := ins.AssociateMap(m); err != nil {
				return nil, fmt.Errorf("armor_sys: map %s: %w", ref, err)
			}
		}
	}
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("loading armor_sys for LSM hook %s: %+v", hook, ve)
		}
		return nil, fmt.Errorf("loading armor_sys for LSM hook %s: %w", hook, err)
	}
	return prog, nil
}

// hookExists says whether the running kernel has LSM hook name (its BPF
// attach point bpf_lsm_<name>).
func hookExists(name string) bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return false
	}
	var fn *btf.Func
	return spec.TypeByName("bpf_lsm_"+name, &fn) == nil
}

// attachSys attaches armor_sys to hook, or adopts the pinned link of a
// previous engine when it runs the same program (an upgrade replaces it:
// the new one attached before the old one goes).
func (e *Engine) attachSys(hook string) (*sysAttach, error) {
	prog, err := e.loadSys(hook)
	if err != nil {
		return nil, err
	}
	pin := e.sysPin(hook)
	old, err := link.LoadPinnedLink(pin, nil)
	if err == nil && sameProgram(old, prog) {
		return &sysAttach{prog: prog, link: old}, nil
	}
	l, err := link.AttachLSM(link.LSMOptions{Program: prog, Cookie: uint64(hookCookie(hook))})
	if err != nil {
		prog.Close()
		if old != nil {
			old.Close()
		}
		return nil, fmt.Errorf("attaching armor_sys to LSM hook %s: %w", hook, err)
	}
	if old != nil {
		_ = old.Unpin()
		old.Close()
	}
	if err := l.Pin(pin); err != nil {
		l.Close()
		prog.Close()
		return nil, fmt.Errorf("pinning %s: %w", pin, err)
	}
	return &sysAttach{prog: prog, link: l}, nil
}

// holdHooks attaches (or counts one more holder of) each hook s needs;
// hooks the kernel lacks are skipped, but each of s's rules needs one of
// its hooks (syscallHooks): the encoder lists only hooks, so a missing
// hook is an error only when every hook is missing.
func (e *Engine) holdHooks(s *loadedSet, hooks []string) error {
	attached := 0
	for _, h := range hooks {
		a := e.sysHooks[h]
		if a == nil {
			if !hookExists(h) {
				continue
			}
			var err error
			if a, err = e.attachSys(h); err != nil {
				e.releaseHooks(s)
				return err
			}
			e.sysHooks[h] = a
		}
		a.refs++
		s.hooksHeld = append(s.hooksHeld, h)
		attached++
	}
	if len(hooks) > 0 && attached == 0 {
		return fmt.Errorf("none of the LSM hooks %v exists in this kernel", hooks)
	}
	return nil
}

// releaseHooks gives back s's hooks; one no set holds is detached.
func (e *Engine) releaseHooks(s *loadedSet) {
	for _, h := range s.hooksHeld {
		a := e.sysHooks[h]
		if a == nil {
			continue
		}
		if a.refs--; a.refs <= 0 {
			if a.link != nil {
				_ = a.link.Unpin()
			}
			a.close()
			delete(e.sysHooks, h)
		}
	}
	s.hooksHeld = nil
}

// recoverSysHooks holds, for each set found in the pins, the hooks its
// sys_rules entries name, and removes the pins of hooks no set needs.
func (e *Engine) recoverSysHooks() error {
	for _, s := range e.byID {
		if e.sysProg == nil {
			break // no LSM programs: the entries decide nothing
		}
		seen := map[string]bool{}
		var hooks []string
		for _, k := range s.sysKeys {
			if k.Hook == 0 || int(k.Hook) > len(sysHooks) {
				continue
			}
			if h := sysHooks[k.Hook-1]; !seen[h] {
				seen[h] = true
				hooks = append(hooks, h)
			}
		}
		if err := e.holdHooks(s, hooks); err != nil {
			return fmt.Errorf("rule set %d: syscall rules with fromSource: %w", s.id, err)
		}
	}
	pins, _ := filepath.Glob(filepath.Join(e.cfg.PinPath, "links", "sys_*"))
	for _, p := range pins {
		if e.sysHooks[strings.TrimPrefix(filepath.Base(p), "sys_")] == nil {
			_ = os.Remove(p)
		}
	}
	return nil
}

// SysHooks are the LSM hooks armor_sys is attached to now, and how many
// loaded sets hold each.
func (e *Engine) SysHooks() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]int{}
	for h, a := range e.sysHooks {
		out[h] = a.refs
	}
	return out
}

// KernelSyscalls are the ids of rs's syscall rules this backend enforces
// in the kernel (none without the LSM programs): seccomp need not log
// them, and armor-tracer must not decide them again.
func (b *Backend) KernelSyscalls(rs *policy.RuleSet) []int {
	if b.engine == nil || b.engine.hooks&HooksLSM == 0 {
		return nil
	}
	return KernelSyscallRules(rs)
}

// mapByName is one of the engine's maps (armorMaps) by its name in the
// object.
func (e *Engine) mapByName(name string) *ebpf.Map {
	v := reflect.ValueOf(&e.maps).Elem()
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Tag.Get("ebpf") == name {
			m, _ := v.Field(i).Interface().(*ebpf.Map)
			return m
		}
	}
	return nil
}
