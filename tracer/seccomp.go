package tracer

import (
	"strconv"
	"strings"
	"time"

	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/tracer/alert"
)

// SeccompRecord is one seccomp record of the kernel's audit log
// (AUDIT_SECCOMP, type 1326): the kernel writes one for a filter's
// SCMP_ACT_LOG, and for its refusals when the filter was installed with
// SECCOMP_FILTER_FLAG_LOG (docs/seccomp.md).
type SeccompRecord struct {
	Time    time.Time
	PID     int    // the host's pid of the calling task
	UID     int64  // its uid
	Comm    string // its comm
	Exe     string // its executable
	Arch    uint32 // AUDIT_ARCH_* of the call
	Syscall int    // the call's number on Arch
	Code    uint32 // the filter's return: action (and errno)
}

// The seccomp actions of a record's code (SECCOMP_RET_ACTION_FULL).
const (
	seccompRetActionFull = 0xffff0000
	seccompRetLog        = 0x7ffc0000
	seccompRetAllow      = 0x7fff0000
)

// Refused reports whether the filter refused the call (anything but
// SCMP_ACT_LOG and ALLOW).
func (r *SeccompRecord) Refused() bool {
	a := r.Code & seccompRetActionFull
	return a != seccompRetLog && a != seccompRetAllow
}

// AuditTypeSeccomp is the audit log's record type of seccomp records
// (AUDIT_SECCOMP).
const AuditTypeSeccomp = 1326

// ParseSeccomp reads the text of an AUDIT_SECCOMP record:
// `audit(1796493447.612:1): auid=4294967295 uid=0 gid=0 ses=4294967295
// pid=17804 comm="sct" exe="/tmp/sct" sig=0 arch=c000003e syscall=110
// compat=0 ip=0x40866e code=0x7ffc0000`. ok is false when it is not one.
func ParseSeccomp(text string) (r SeccompRecord, ok bool) {
	var rest string
	if r.Time, rest, ok = auditHeader(text); !ok {
		return r, false
	}
	have := 0
	for _, f := range fields(rest) {
		k, v, _ := strings.Cut(f, "=")
		var err error
		switch k {
		case "pid":
			r.PID, err = strconv.Atoi(v)
			have |= 1
		case "uid":
			r.UID, err = strconv.ParseInt(v, 10, 64)
		case "comm":
			r.Comm = auditString(v)
		case "exe":
			r.Exe = auditString(v)
		case "arch":
			var a uint64
			a, err = strconv.ParseUint(v, 16, 32)
			r.Arch = uint32(a)
			have |= 2
		case "syscall":
			r.Syscall, err = strconv.Atoi(v)
			have |= 4
		case "code":
			var c uint64
			c, err = strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 32)
			r.Code = uint32(c)
			have |= 8
		}
		if err != nil {
			return r, false
		}
	}
	return r, have == 15
}

// archNames are the AUDIT_ARCH values of the architectures whose system
// call names nri-armor knows (policy's tables).
var archNames = map[uint32]string{
	0xc000003e: "amd64", // AUDIT_ARCH_X86_64
	0xc00000b7: "arm64", // AUDIT_ARCH_AARCH64
}

// Seccomp turns one seccomp record into an alert when a syscall rule of
// the calling process's container decides it: a refusal by a rule the
// filter enforces is Block, Permission denied, Enforcer Seccomp; a logged
// call of an Audit rule is Audit, Passed; a logged call that a rule the
// filter cannot decide (fromSource) matches is decided here, Enforcer
// eBPF Monitor, a Block saying unenforced=true. Records of calls no rule
// names (the runtime default's own refusals, under FLAG_LOG), of
// processes outside published containers or that Audit could not place
// (cg 0), and of architectures without a name table are counted, not
// reported.
func (t *Tracer) Seccomp(r *SeccompRecord, cg uint64) {
	t.countEvent("seccomp", "syscall")
	c := t.ids.Container(cg)
	arch, known := archNames[r.Arch]
	if c == nil || !known {
		t.m.unknown.WithLabelValues("seccomp").Inc()
		return
	}
	set := t.ids.containerSet(c)
	name, ok := policy.SyscallName(arch, r.Syscall)
	if set == nil || !ok {
		t.m.unknown.WithLabelValues("seccomp").Inc()
		return
	}
	d := policy.Decide(set.rs, policy.Event{Class: policy.ClassSyscalls, Syscall: name, Source: r.Exe, UID: uint32(r.UID)})
	if d.Rule == nil || d.Action == policy.Allow {
		return
	}
	if len(d.Rule.FromSource) > 0 && d.Rule.Match.Path == "" && !c.unenforced[d.Rule.ID] {
		// A fromSource rule the container's record does not list as
		// unenforced is BPF-LSM's (enforce.SyscallEnforcer): the kernel
		// decided the call and reported it; a record of it here comes
		// from another rule's log (an Audit of the same call).
		return
	}
	a := &t.scratch
	*a = alert.Alert{Cgroup: cg, Time: r.Time}
	if a.Time.IsZero() {
		a.Time = t.now()
	}
	t.identify(a, c, nil)
	t.process(a, uint32(r.PID), uint32(r.PID), 0, r.Comm)
	a.UID = r.UID
	a.Type = alert.TypeMatchedPolicy
	a.Operation = alert.OpSyscall
	a.Resource = "SYS_" + strings.ToUpper(name)
	a.Action = string(d.Action)
	a.Result = alert.ResultPassed
	if r.Refused() {
		a.Result = alert.ResultPermissionDenied
	}
	setRule(a, set, d.Rule)
	a.Data = "syscall=" + a.Resource + " set=" + policy.ShortDigest(c.PolicySet) + " rule=" + strconv.Itoa(d.Rule.ID)
	a.Enforcer = seccomp.Enforcer
	if c.Enforcers[policy.ClassSyscalls] != seccomp.Enforcer || c.unenforced[d.Rule.ID] {
		a.Enforcer = alert.EnforcerMonitor
		if d.Action == policy.Block && !r.Refused() {
			a.Data += " unenforced=true"
		}
	}
	t.emit(a)
}

// cgroup2 is the cgroup v2 mount, found once.
func (t *Tracer) cgroup2() string {
	if t.cg2 == "" {
		if m, err := cgroups.Mount(); err == nil {
			t.cg2 = m
		}
	}
	return t.cg2
}
