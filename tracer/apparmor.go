package tracer

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/tracer/alert"
)

// AuditTypeAVC is the audit log's record type of AppArmor's records
// (AUDIT_AVC, which AppArmor shares with SELinux: common_lsm_audit).
const AuditTypeAVC = 1400

// AppArmorRecord is one AppArmor record of the kernel's audit log: an
// operation an AppArmor profile logged (an `audit` rule: AUDIT), refused
// (DENIED; `audit deny` rules and what the profile does not allow, unless
// a quiet `deny` rule hides it) or let pass in complain mode (ALLOWED).
// The kernel writes it as (security/apparmor/audit.c audit_pre, then
// security/lsm_audit.c, then the class's own fields):
//
//	apparmor="DENIED" operation="open" class="file" profile="P" name="/etc/shadow" pid=1234 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0
//	apparmor="DENIED" operation="exec" class="file" profile="P" name="/usr/bin/apt" pid=9 comm="sh" requested_mask="x" denied_mask="x" fsuid=0 ouid=0 target="P"
//	apparmor="DENIED" operation="capable" class="cap" profile="P" pid=9 comm="ping" capability=13  capname="net_raw"
//	apparmor="DENIED" operation="create" class="net" profile="P" pid=9 comm="ping" family="inet" sock_type="raw" protocol=1 requested_mask="create" denied_mask="create"
//
// (class= is there since Linux 6.2-ish; older kernels leave it out, so
// the class is also read from the fields a record has.)
type AppArmorRecord struct {
	Time time.Time
	// Kind is apparmor=: AUDIT, ALLOWED, DENIED, KILLED, or HINT, STATUS,
	// ERROR, which are about profiles, not operations.
	Kind      string
	Operation string // operation=: open, exec, file_mmap, capable, create …
	Class     string // class=: file, cap, net … ("" on older kernels)
	Info      string // info=: why, when the kernel says more
	Profile   string // profile=: the acting task's profile
	Name      string // name=: the file (for exec: the program)
	PID       int    // pid=: the host's tgid of the acting task
	Comm      string
	// Requested and Denied are requested_mask= and denied_mask=: file
	// permissions (x w r a c d k m l) or network ones (create, …).
	Requested, Denied string
	FSUID, OUID       int64 // fsuid=, ouid=: -1 when absent
	Capability        int   // capability=: -1 when absent
	Family, SockType  string
	Protocol          int
}

// Refused reports whether the operation was refused (DENIED, or KILLED:
// refused and the task killed).
func (r *AppArmorRecord) Refused() bool { return r.Kind == "DENIED" || r.Kind == "KILLED" }

// checked: the record is about an operation a profile checked, not a
// profile's load or a hint.
func (r *AppArmorRecord) checked() bool {
	switch r.Kind {
	case "AUDIT", "ALLOWED", "DENIED", "KILLED":
		return true
	}
	return false
}

// ParseAppArmor reads the text of an AUDIT_AVC record that AppArmor
// wrote (`audit(1796493447.612:1): apparmor="DENIED" …`); ok is false for
// another LSM's (SELinux's `avc:  denied …`) and for unreadable text.
// String fields are decoded as the kernel encodes them: quoted, or in hex
// when they hold a space, a quote or a byte outside printable ASCII.
func ParseAppArmor(text string) (r AppArmorRecord, ok bool) {
	var rest string
	if r.Time, rest, ok = auditHeader(text); !ok {
		return r, false
	}
	r.FSUID, r.OUID, r.Capability = -1, -1, -1
	have := 0
	for _, f := range fields(rest) {
		k, v, _ := strings.Cut(f, "=")
		var err error
		switch k {
		case "apparmor":
			r.Kind = auditString(v)
			have |= 1
		case "operation":
			r.Operation = auditString(v)
		case "class":
			r.Class = auditString(v)
		case "info":
			r.Info = auditString(v)
		case "profile":
			r.Profile = auditString(v)
		case "name":
			r.Name = auditString(v)
		case "pid":
			r.PID, err = strconv.Atoi(v)
			have |= 2
		case "comm":
			r.Comm = auditString(v)
		case "requested_mask":
			r.Requested = auditString(v)
		case "denied_mask":
			r.Denied = auditString(v)
		case "fsuid":
			r.FSUID, err = strconv.ParseInt(v, 10, 64)
		case "ouid":
			r.OUID, err = strconv.ParseInt(v, 10, 64)
		case "capability":
			r.Capability, err = strconv.Atoi(v)
		case "family":
			r.Family = auditString(v)
		case "sock_type":
			r.SockType = auditString(v)
		case "protocol":
			r.Protocol, err = strconv.Atoi(v)
		}
		if err != nil {
			return r, false
		}
	}
	return r, have == 3
}

// aaFamilies and aaSockTypes are the kernel's numbers of the names an
// AppArmor record gives a socket's family and type (net_names.h), for the
// families and types network rules name.
var (
	aaFamilies  = map[string]uint32{"unix": syscall.AF_UNIX, "inet": syscall.AF_INET, "inet6": syscall.AF_INET6, "netlink": syscall.AF_NETLINK, "packet": syscall.AF_PACKET}
	aaSockTypes = map[string]uint32{"stream": syscall.SOCK_STREAM, "dgram": syscall.SOCK_DGRAM, "raw": syscall.SOCK_RAW,
		"rdm": syscall.SOCK_RDM, "seqpacket": syscall.SOCK_SEQPACKET, "dccp": 6, "packet": syscall.SOCK_PACKET}
)

// Reasons an AppArmor record is not reported (the reason label of
// nri_armor_tracer_apparmor_unreported_total).
const (
	aaOtherProfile   = "other-profile"      // not a profile of nri-armor's
	aaNotChecked     = "not-an-operation"   // STATUS, HINT, ERROR
	aaNoRuleClass    = "no-rule-class"      // mount, signal, ptrace, … (the base profile's), a lock, a socket family rules do not name
	aaDeniedNotRules = "denied-not-by-rule" // refused, but no Block rule or posture decides it: the base profile or raw rules (spec.apparmor)
	aaAuditNotRules  = "audited-not-by-rule"
	aaReportedByRing = "reported-by-enforcer" // BPF-LSM or cgroup-BPF saw it too and reports it
)

// operation is what a record says was done, as the rules see it: the
// policy event to decide (its Source and UID filled by the caller) and
// the alert's Operation, Resource and Data. This is the one place where
// AppArmor's operations and masks become rule classes. why is a reason
// (aaNoRuleClass) when no rule class decides such an operation.
func (r *AppArmorRecord) operation() (ev policy.Event, op, resource, data string, why string) {
	data = "apparmor=" + r.Kind + " operation=" + quoteData(r.Operation)
	switch {
	case r.Capability >= 0 || r.Class == "cap":
		name := policy.CapabilityName(r.Capability)
		if name == "" {
			return ev, "", "", "", aaNoRuleClass
		}
		ev = policy.Event{Class: policy.ClassCapabilities, Capability: name}
		return ev, alert.OpCapabilities, capResource(r.Capability), data + " capability=" + strconv.Itoa(r.Capability), ""
	case r.Family != "" || r.Class == "net":
		fam, ok1 := aaFamilies[r.Family]
		typ, ok2 := aaSockTypes[r.SockType]
		s, covered := policy.SocketNames(fam, typ, uint32(r.Protocol))
		if !ok1 || !ok2 || !covered {
			return ev, "", "", "", aaNoRuleClass // unix, netlink …: no rule names them
		}
		ev = policy.Event{Class: policy.ClassNetwork, Family: s.Family, SocketType: s.Type, Protocol: s.Protocol}
		return ev, alert.OpNetwork, socketResource(fam, typ, uint32(r.Protocol)), data + " requested_mask=" + quoteData(r.Requested), ""
	case r.Class == "file" || r.Class == "" && r.Requested != "" && r.Name != "":
		data += " requested_mask=" + quoteData(r.Requested)
		ev = policy.Event{Path: r.Name, Owner: uint32(max(r.OUID, 0))}
		switch {
		case strings.ContainsAny(r.Requested, "x"), r.Requested == "m":
			// An exec of the program, or mapping it executable (ld.so
			// PROGRAM): what a process Block's `mx` refuses, as
			// BPF-LSM's bprm_check_security and mmap_file do.
			ev.Class = policy.ClassProcess
			return ev, alert.OpProcess, r.Name, data, ""
		case strings.ContainsAny(r.Requested, "wacdl"):
			// Writing, appending, creating, deleting (unlink, rename,
			// truncate, chmod and chown are w or d), and a new link name:
			// the file rules' write (docs/apparmor.md's table).
			ev.Class, ev.Write = policy.ClassFile, true
			return ev, alert.OpFile, r.Name, data, ""
		case strings.Contains(r.Requested, "r"):
			ev.Class = policy.ClassFile
			return ev, alert.OpFile, r.Name, data, ""
		}
	}
	return ev, "", "", "", aaNoRuleClass // k (lock), and classes no rule names
}

// AppArmor turns one AppArmor record into an alert when it is a profile
// of nri-armor's and a rule or a Block posture of the acting process's
// container decides the operation (policy.Decide, so that the alert names
// the policy and rule as BPF-LSM's do): a refusal is Permission denied
// by AppArmor; a logged operation of an Audit rule is Passed by AppArmor;
// one that a rule the profile does not have (fromSource …) decides is
// the tracer's, eBPF Monitor, a Block saying unenforced=true. Records of
// processes outside published containers or that Audit could not place
// (cg 0) are counted (events_unattributed_total{type="apparmor"}); records
// of other profiles, of operations no rule decides, and refusals that no
// Block rule or posture explains (the base profile's, raw rules') are
// counted by reason (apparmor_unreported_total), not reported.
func (t *Tracer) AppArmor(r *AppArmorRecord, cg uint64) {
	ev, op, resource, data, why := r.operation()
	kind := string(ev.Class)
	if why != "" {
		kind = "other"
	}
	t.countEvent("apparmor", kind)
	switch {
	case !strings.HasPrefix(r.Profile, apparmor.NamePrefix):
		why = aaOtherProfile
	case !r.checked():
		why = aaNotChecked
	}
	if why != "" {
		t.m.aaUnreported.WithLabelValues(why).Inc()
		return
	}
	c := t.ids.Container(cg)
	var set *ruleSet
	if c != nil {
		set = t.ids.containerSet(c)
	}
	if set == nil {
		t.m.unknown.WithLabelValues("apparmor").Inc()
		return
	}
	a := &t.scratch
	*a = alert.Alert{Cgroup: cg, Time: r.Time}
	if a.Time.IsZero() {
		a.Time = t.now()
	}
	t.identify(a, c, nil)
	p := t.process(a, uint32(r.PID), uint32(r.PID), 0, r.Comm)
	// The acting process's executable (for an exec, the caller's: a
	// refused exec leaves it in place). The record has no uid but the
	// fsuid of file operations, which is what AppArmor's owner
	// qualifier compares with ouid, as ownerOnly rules do.
	ev.Source, ev.UID = p.exe, uint32(max(r.FSUID, 0))
	if r.FSUID < 0 {
		ev.UID = uint32(max(t.uidOf(r.PID), 0))
	}
	d := policy.Decide(set.rs, ev)
	refused := r.Refused()
	switch {
	case refused && d.Action != policy.Block:
		why = aaDeniedNotRules
	case d.Action == policy.Allow:
		why = aaAuditNotRules
	case !refused && ringReports(ev, d, c.Enforcers, c.unenforced):
		// The profile let it pass and logged it, and an enforcement
		// program that runs after AppArmor's hook (cgroup-BPF's
		// sock_create, BPF-LSM) decided it too: its event is the alert.
		why = aaReportedByRing
	}
	if why != "" {
		t.m.aaUnreported.WithLabelValues(why).Inc()
		return
	}
	a.UID = int64(ev.UID)
	a.Type, a.Operation, a.Resource = alert.TypeMatchedPolicy, op, resource
	a.Action = string(d.Action)
	a.Result = alert.ResultPassed
	if refused {
		a.Result = alert.ResultPermissionDenied
	}
	data += " set=" + policy.ShortDigest(c.PolicySet)
	switch {
	case d.DefaultPosture:
		a.PolicyName = "DefaultPosture"
	case d.Rule != nil:
		setRule(a, set, d.Rule)
		data += " rule=" + strconv.Itoa(d.Rule.ID)
	}
	// Who enforced: AppArmor refused it, or the profile's line of the
	// deciding rule logged it; a rule the profile does not have (its
	// record came from another line) was decided here, as seccomp.go does.
	a.Enforcer = enforce.BackendAppArmor
	if !refused && !set.inProfile(d) {
		a.Enforcer = alert.EnforcerMonitor
		if d.Action == policy.Block {
			data += " unenforced=true"
		}
	}
	a.Data = data
	t.emit(a)
}

// ringReports: an enforcement program of the container's that reports on
// the ring buffer (BPF-LSM, cgroup-BPF) decided ev, whose decision is d —
// its event is the alert. Rules that the enforcer cannot express (the
// record's Unenforced ids) are the exception, but where cgroup-BPF saw
// the socket anyway.
func ringReports(ev policy.Event, d policy.Decision, enforcers map[policy.Class]string, unenforced map[int]bool) bool {
	switch enforcers[ev.Class] {
	case enforce.BackendBPFLSM, enforce.BackendCgroupBPF:
		return d.Rule == nil || !unenforced[d.Rule.ID] || cgroupSaw(ev, enforcers, d.Rule)
	}
	return false
}

// appArmorLogs: the container's AppArmor profile logs operations of ev's
// class decided d, so that its record (Tracer.AppArmor) is the alert. A
// container has a profile when AppArmor enforces one of its classes; the
// profile holds the rules of apparmor.Classes it can express (the
// daemon compiles apparmor.Restrict of the set: network rules are
// cgroup-BPF's, and what cgroup-BPF leaves out — AF_PACKET, fromSource —
// only the telemetry sees). It logs what its rules' lines decide — those
// of the rules it enforces in part too (Partial: a process rule misses a
// script's interpreter, which no exec event names either) — and a Block
// posture's refusals, but not an Audit posture's (Profile.Unlogged).
func appArmorLogs(set *ruleSet, enforcers map[policy.Class]string, class policy.Class, d policy.Decision) bool {
	if set == nil || !slices.Contains(apparmor.Classes, class) {
		return false
	}
	for _, e := range enforcers {
		if e == enforce.BackendAppArmor {
			return set.inProfile(d)
		}
	}
	return false
}

// inProfile: the AppArmor profile of s has a line that decides as d
// does: d's rule is written (enforced, or in part), or d is a Block
// posture (what the profile does not allow is refused and logged).
func (s *ruleSet) inProfile(d policy.Decision) bool {
	if d.DefaultPosture {
		return d.Action == policy.Block
	}
	if d.Rule == nil {
		return false
	}
	if s.aaNotWritten == nil {
		// The compiler is the one definition of which rules a profile
		// leaves out (the state record's Unenforced ids mix them with
		// those it enforces in part). The profile's name and raw rules
		// change neither; a set it refuses has no profile at all.
		s.aaNotWritten = map[int]bool{}
		prof, err := apparmor.Compile(apparmor.NamePrefix+"tracer", apparmor.Restrict(s.rs), nil)
		for _, u := range prof.Unenforced {
			if !u.Partial {
				s.aaNotWritten[u.Rule.ID] = true
			}
		}
		if err != nil {
			for _, cl := range apparmor.Classes {
				for _, r := range s.rs.Class(cl).Rules {
					s.aaNotWritten[r.ID] = true
				}
			}
		}
	}
	return !s.aaNotWritten[d.Rule.ID]
}

// uidOf is the real uid of process pid (/proc/<pid>/status), -1 when
// unknown.
func (t *Tracer) uidOf(pid int) int64 {
	b, err := os.ReadFile(t.cfg.ProcRoot + "/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	_, rest, ok := strings.Cut(string(b), "\nUid:")
	if !ok {
		return -1
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return -1
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return -1
	}
	return n
}
