package enforce

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/policy"
)

// Check is the outcome of loading (and attaching) one trivial program.
type Check struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func checkOf(err error) Check {
	if errors.Is(err, syscall.EPERM) {
		// cilium/ebpf suggests MEMLOCK for any EPERM; the probe already
		// lifted the limit, so the kernel itself refused.
		msg, _, _ := strings.Cut(err.Error(), " (MEMLOCK")
		return Check{Error: msg + " (refused by the kernel)"}
	}
	if err != nil {
		return Check{Error: err.Error()}
	}
	return Check{OK: true}
}

// ClassSupport says how one class is enforced on this node.
type ClassSupport struct {
	Backend   string `json:"backend"`
	Enforcing bool   `json:"enforcing"`
	Reason    string `json:"reason,omitempty"`
	// Note says more about a class that is enforced (where, how).
	Note string `json:"note,omitempty"`
	// Unseen, for a class that is not enforced, lists what armor-tracer's
	// telemetry, which audits the class instead, does not see.
	Unseen []string `json:"telemetryDoesNotSee,omitempty"`
}

// What armor-tracer's telemetry (tracepoints: sched_process_exec, one
// syscalls/sys_exit_* per open call) does not see, per class it audits on
// a node without BPF-LSM. docs/enforcement.md (Known limits) says the same.
var (
	// UnseenFile: opens that pass no traced open call.
	UnseenFile = []string{
		"32-bit system calls (int 0x80, x32): no syscalls/ tracepoint fires for them",
		"io_uring opens (IORING_OP_OPENAT, IORING_OP_OPENAT2): no system call",
		"open_by_handle_at(2): a file handle, no path (needs CAP_DAC_READ_SEARCH)",
	}
	// UnseenProcess: programs run without an exec of their file.
	UnseenProcess = []string{
		"a binary mapped by the dynamic loader (ld.so /path/binary): an exec of the loader, an open of the binary",
	}
	// unseenCaps: where the kernel has no capability tracepoint.
	unseenCaps = []string{"capability checks: this kernel has no capability/cap_capable tracepoint in the layout the telemetry reads"}
)

// Probe is what the node can do, found by trying rather than by reading
// configuration: a program type counts only once it loaded and attached.
type Probe struct {
	Kernel  string                        `json:"kernel"`
	LSMs    []string                      `json:"lsms"`
	LSMErr  string                        `json:"lsmsError,omitempty"`
	Cgroup2 string                        `json:"cgroup2"`
	Loads   map[string]Check              `json:"loads"`
	Classes map[policy.Class]ClassSupport `json:"classes"`
	// Seccomp is what the kernel and the OCI runtime found here do with
	// seccomp filters' logs.
	Seccomp SeccompProbe `json:"seccomp"`
}

// SeccompProbe is what decides whether seccomp's refusals can be alerts.
type SeccompProbe struct {
	// ActionsLogged is kernel.seccomp.actions_logged: the actions the
	// kernel logs (log: SCMP_ACT_LOG; errno: refusals under
	// SECCOMP_FILTER_FLAG_LOG).
	ActionsLogged []string `json:"actionsLogged,omitempty"`
	// Runc is the runc found in PATH (version), "" when none; RuncFlags
	// the seccomp flags its "features" lists (none before runc 1.2).
	Runc      string   `json:"runc,omitempty"`
	RuncFlags []string `json:"runcSeccompFlags,omitempty"`
	// Advice says what to set seccompLogRefusals to.
	Advice string `json:"advice,omitempty"`
}

// SeccompRoutes says, for the probe, which runtimes take syscall rules
// (enforce/seccomp.Table decides it for the runtime nri-armor connects to).
const SeccompRoutes = "seccomp filters merged into the runtime default at container creation: containerd >= 2.3.0 through NRI; CRI-O and containerd < 2.3.0 through a Localhost profile under the kubelet's seccomp root that the pod names (nri-armor's pod webhook, webhook.seccompLocalhost; containerd 2.2.1-2.2.x also through NRI for Unconfined containers); other runtimes: none (containers with syscall Block rules are refused; docs/seccomp.md)"

// SyscallFromSourceNote says, for the probe and explain, who decides syscall
// rules with fromSource (which seccomp cannot see) on a node with BPF-LSM
// active or without.
func SyscallFromSourceNote(bpfLSM bool) string {
	if bpfLSM && runtime.GOARCH == "amd64" {
		return "matchSyscalls with fromSource paths on calls that pass an LSM hook: enforced by BPF-LSM in the kernel (64-bit and int 0x80 calls; docs/seccomp.md); matchPaths with syscalls and other calls: logged by the filter, decided after the fact by armor-tracer (unenforced)"
	}
	return "rules with fromSource or a path: logged by the filter, decided after the fact by armor-tracer (unenforced): BPF-LSM, which enforces matchSyscalls with fromSource, is not active here"
}

// AppArmorNote says, for the probe, what AppArmor's enforcement needs.
const AppArmorNote = "a profile per container, loaded by nri-armor when the pod starts; the pod names it (securityContext.appArmorProfile Localhost, set by the admission webhook) and the container is refused otherwise; fromSource rules and #! interpreters are not enforced (docs/apparmor.md)"

// The trivial programs tried, by the name the probe reports.
const (
	loadLSM         = "lsm/file_open"
	loadCgroupSock  = "cgroup/sock_create"
	loadCgroupConn4 = "cgroup/connect4"
	loadCgroupConn6 = "cgroup/connect6"
	loadTracepoint  = "tracepoint/sched/sched_process_exec"
	loadCapTP       = "tracepoint/capability/cap_capable"
	loadRingbuf     = "ringbuf"
	// Not used: measured because it is the obvious way to refuse a
	// system call by executable, and kernels without
	// CONFIG_FUNCTION_ERROR_INJECTION (Debian's) refuse it ("is not
	// modifiable"); BPF-LSM decides such rules at LSM hooks instead.
	loadFmodRet = "fmod_ret/__x64_sys_fchmod (not used)"
	// Not a program: an empty profile loaded with apparmor_parser.
	loadAppArmor = "apparmor/profile"
)

// RunProbe probes the node. It needs root (CAP_BPF, CAP_SYS_ADMIN); without
// it every load fails, and the probe says so for each.
func RunProbe() *Probe {
	p := &Probe{Loads: map[string]Check{}, Classes: map[policy.Class]ClassSupport{}}
	var uts syscall.Utsname
	if err := syscall.Uname(&uts); err == nil {
		p.Kernel = charsToString(uts.Release[:])
	}
	p.LSMs, p.LSMErr = activeLSMs()
	cg, cgErr := cgroups.Mount()
	p.Cgroup2 = cg
	_ = rlimit.RemoveMemlock() // kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK

	p.Loads[loadLSM] = checkOf(tryLSM())
	for name, attach := range map[string]ebpf.AttachType{
		loadCgroupSock:  ebpf.AttachCGroupInetSockCreate,
		loadCgroupConn4: ebpf.AttachCGroupInet4Connect,
		loadCgroupConn6: ebpf.AttachCGroupInet6Connect,
	} {
		if cgErr != nil {
			p.Loads[name] = checkOf(cgErr)
			continue
		}
		p.Loads[name] = checkOf(tryCgroup(cg, attach))
	}
	ensureTracefs()
	p.Loads[loadTracepoint] = checkOf(tryTracepoint("sched", "sched_process_exec"))
	p.Loads[loadCapTP] = checkOf(tryTracepoint("capability", "cap_capable"))
	p.Loads[loadRingbuf] = checkOf(tryRingbuf())
	if runtime.GOARCH == "amd64" {
		p.Loads[loadFmodRet] = checkOf(tryFmodRet())
	}
	p.Loads[loadAppArmor] = checkOf(tryAppArmor(p.LSMs))

	lsm := p.Loads[loadLSM]
	lsmActive := contains(p.LSMs, "bpf")
	lsmOK := lsm.OK && lsmActive
	lsmWhy := "BPF-LSM unavailable: "
	switch {
	case !lsm.OK:
		lsmWhy += "loading " + loadLSM + " failed: " + lsm.Error
	case !lsmActive:
		lsmWhy += "\"bpf\" is not among the active LSMs (boot with lsm=...,bpf)"
	}
	unseen := map[policy.Class][]string{policy.ClassProcess: UnseenProcess, policy.ClassFile: UnseenFile}
	if !p.Loads[loadCapTP].OK {
		unseen[policy.ClassCapabilities] = unseenCaps
	}
	// Per class: BPF-LSM, else AppArmor (a profile per container), else
	// armor-tracer's audit.
	aa := p.Loads[loadAppArmor]
	for _, c := range []policy.Class{policy.ClassProcess, policy.ClassFile, policy.ClassCapabilities} {
		switch {
		case lsmOK:
			p.Classes[c] = ClassSupport{Backend: BackendBPFLSM, Enforcing: true}
		case aa.OK:
			p.Classes[c] = ClassSupport{Backend: BackendAppArmor, Enforcing: true, Reason: lsmWhy, Note: AppArmorNote}
		default:
			p.Classes[c] = ClassSupport{Backend: BackendAuditOnly, Reason: lsmWhy + "; AppArmor: " + aa.Error, Unseen: unseen[c]}
		}
	}
	cgOK := p.Loads[loadCgroupSock].OK && p.Loads[loadCgroupConn4].OK && p.Loads[loadCgroupConn6].OK
	switch {
	case lsmOK:
		p.Classes[policy.ClassNetwork] = ClassSupport{Backend: BackendBPFLSM, Enforcing: true}
	case cgOK:
		p.Classes[policy.ClassNetwork] = ClassSupport{Backend: BackendCgroupBPF, Enforcing: true, Reason: lsmWhy}
	default:
		p.Classes[policy.ClassNetwork] = ClassSupport{Backend: BackendAuditOnly,
			Reason: lsmWhy + "; cgroup-BPF: " + firstError(p.Loads[loadCgroupSock], p.Loads[loadCgroupConn4], p.Loads[loadCgroupConn6])}
	}
	// Syscall rules are seccomp filters, whatever the LSMs: the kernel
	// must have seccomp filters; the runtime decides the rest (the table).
	if err := seccompAvailable(); err != nil {
		p.Classes[policy.ClassSyscalls] = ClassSupport{Backend: BackendAuditOnly, Reason: "seccomp unavailable: " + err.Error()}
	} else {
		note := SeccompRoutes + "; " + SyscallFromSourceNote(lsmOK)
		p.Classes[policy.ClassSyscalls] = ClassSupport{Backend: BackendSeccomp, Enforcing: true, Note: note}
	}
	p.Seccomp = probeSeccompLog()
	return p
}

func firstError(cs ...Check) string {
	for _, c := range cs {
		if !c.OK {
			return c.Error
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func charsToString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

// activeLSMs reads the active LSM list, mounting securityfs if it is not.
func activeLSMs() ([]string, string) {
	const lsmFile = "/sys/kernel/security/lsm"
	data, err := os.ReadFile(lsmFile)
	if errors.Is(err, os.ErrNotExist) {
		if merr := syscall.Mount("securityfs", "/sys/kernel/security", "securityfs", 0, ""); merr == nil {
			data, err = os.ReadFile(lsmFile)
		}
	}
	if err != nil {
		return nil, err.Error()
	}
	return strings.Split(strings.TrimSpace(string(data)), ","), ""
}

// ensureTracefs mounts tracefs where tracepoint attachment looks for it,
// if neither tracefs nor debugfs is mounted.
func ensureTracefs() {
	for _, p := range []string{"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"} {
		if _, err := os.Stat(p); err == nil {
			return
		}
	}
	_ = syscall.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, "")
}

// WriteText prints the probe for people.
func (p *Probe) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "kernel:   %s\n", p.Kernel)
	if p.LSMErr != "" {
		fmt.Fprintf(&b, "lsms:     unknown (%s)\n", p.LSMErr)
	} else {
		fmt.Fprintf(&b, "lsms:     %s\n", strings.Join(p.LSMs, ","))
	}
	fmt.Fprintf(&b, "cgroup2:  %s\n\nprograms:\n", p.Cgroup2)
	names := make([]string, 0, len(p.Loads))
	for n := range p.Loads {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if c := p.Loads[n]; c.OK {
			fmt.Fprintf(&b, "  %-40s loads\n", n)
		} else {
			fmt.Fprintf(&b, "  %-40s FAILS: %s\n", n, c.Error)
		}
	}
	b.WriteString("\nclasses:\n")
	for _, c := range policy.Classes {
		s := p.Classes[c]
		state := "enforced"
		if !s.Enforcing {
			state = "NOT enforced"
		}
		fmt.Fprintf(&b, "  %-13s %-11s %s", c, s.Backend, state)
		if s.Reason != "" && !s.Enforcing {
			fmt.Fprintf(&b, ": %s", s.Reason)
		}
		if s.Note != "" && s.Enforcing {
			fmt.Fprintf(&b, ": %s", s.Note)
		}
		b.WriteString("\n")
		if !s.Enforcing && len(s.Unseen) > 0 {
			fmt.Fprintf(&b, "  %-13s telemetry does not see: %s\n", "", strings.Join(s.Unseen, "; "))
		}
	}
	sc := p.Seccomp
	fmt.Fprintf(&b, "\nseccomp logs:\n  kernel.seccomp.actions_logged: %s\n", strings.Join(sc.ActionsLogged, " "))
	if sc.Runc != "" {
		flags := strings.Join(sc.RuncFlags, " ")
		if flags == "" {
			flags = "none"
		}
		fmt.Fprintf(&b, "  runc: %s, seccomp flags: %s\n", sc.Runc, flags)
	}
	fmt.Fprintf(&b, "  %s\n", sc.Advice)
	_, err := io.WriteString(w, b.String())
	return err
}

// probeSeccompLog reads what the kernel logs of seccomp's actions and which
// seccomp flags the runc in PATH takes (runc features).
func probeSeccompLog() SeccompProbe {
	var s SeccompProbe
	if data, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_logged"); err == nil {
		s.ActionsLogged = strings.Fields(string(data))
	}
	logs := contains(s.ActionsLogged, "log")
	if path, err := exec.LookPath("runc"); err == nil {
		if out, err := exec.Command(path, "features").Output(); err == nil {
			var f struct {
				Linux struct {
					Seccomp struct {
						SupportedFlags []string `json:"supportedFlags"`
					} `json:"seccomp"`
				} `json:"linux"`
				Annotations map[string]string `json:"annotations"`
			}
			if json.Unmarshal(out, &f) == nil {
				s.Runc = f.Annotations["org.opencontainers.runc.version"]
				if s.Runc == "" {
					s.Runc = path
				}
				s.RuncFlags = f.Linux.Seccomp.SupportedFlags
			}
		} else {
			s.Runc = path + " (no \"runc features\": older than 1.1)"
		}
	}
	switch {
	case !logs:
		s.Advice = "the kernel does not log SCMP_ACT_LOG (\"log\" missing from kernel.seccomp.actions_logged): syscall Audit rules raise no alert"
	case s.Runc != "" && contains(s.RuncFlags, "SECCOMP_FILTER_FLAG_LOG") && contains(s.ActionsLogged, "errno"):
		s.Advice = "seccompLogRefusals: true gives syscall Block alerts with this runc"
	case s.Runc != "":
		s.Advice = "keep seccompLogRefusals: false with this runc (it takes no SECCOMP_FILTER_FLAG_LOG): syscall Block rules refuse without an alert; Audit rules alert"
	default:
		s.Advice = "no runc in PATH: set seccompLogRefusals: true only where the node's OCI runtime takes SECCOMP_FILTER_FLAG_LOG (runc >= 1.2, crun)"
	}
	return s
}

var allow = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
var allowSock = asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()}

// tryFmodRet loads (without attaching) an fmod_ret program on a system
// call's entry point.
func tryFmodRet() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "probe_fmodret", Type: ebpf.Tracing, AttachType: ebpf.AttachModifyReturn, AttachTo: "__x64_sys_fchmod",
		Instructions: allow, License: "GPL",
	})
	if err != nil {
		return err
	}
	return prog.Close()
}

func tryLSM() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "probe_lsm", Type: ebpf.LSM, AttachType: ebpf.AttachLSMMac, AttachTo: "file_open",
		Instructions: allow, License: "GPL",
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		return err
	}
	return l.Close()
}

func tryCgroup(cgroot string, attach ebpf.AttachType) error {
	typ := ebpf.CGroupSockAddr
	if attach == ebpf.AttachCGroupInetSockCreate {
		typ = ebpf.CGroupSock
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "probe_cg", Type: typ, AttachType: attach, Instructions: allowSock, License: "GPL",
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	dir := filepath.Join(cgroot, fmt.Sprintf("nri-armor-probe-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	defer os.Remove(dir)
	l, err := link.AttachCgroup(link.CgroupOptions{Path: dir, Attach: attach, Program: prog})
	if err != nil {
		return err
	}
	return l.Close()
}

func tryTracepoint(group, name string) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "probe_tp", Type: ebpf.TracePoint, Instructions: allow, License: "GPL",
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.Tracepoint(group, name, prog, nil)
	if err != nil {
		return err
	}
	return l.Close()
}

func tryRingbuf() error {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 16})
	if err != nil {
		return err
	}
	return m.Close()
}

// seccompAvailable checks that the kernel has seccomp filters, from the
// calling process's status.
func seccompAvailable() error {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	if !strings.Contains(string(data), "\nSeccomp:") {
		return errors.New("kernel without CONFIG_SECCOMP (no Seccomp line in /proc/self/status)")
	}
	if _, err := os.Stat("/proc/sys/kernel/seccomp/actions_avail"); err != nil {
		return fmt.Errorf("kernel without seccomp filters: %v", err)
	}
	return nil
}
