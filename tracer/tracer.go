package tracer

import (
	"bufio"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer/alert"
	"github.com/nri-armor/nri-armor/tracer/stream"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// SetDigests names kernel set ids: events.Pinned.
type SetDigests interface {
	SetDigest(id uint32) string
}

// Options are what a Tracer is built from.
type Options struct {
	Config Config
	State  *state.Dir
	// Digests names the set ids of enforcement events; nil means "the
	// container's current set" (right except during a swap).
	Digests SetDigests
	// Sinks receive every alert and log in Config.Format, buffered and
	// flushed whenever the input is drained.
	Sinks   []io.Writer
	Metrics *Metrics
	Hub     *stream.Hub
	Now     func() time.Time // the clock (tests freeze it)
}

// Tracer is the pipeline: events in, alerts out. Its handlers run on one
// goroutine (Run's); nothing in the hot path takes a lock but the
// identity cache's.
type Tracer struct {
	cfg      Config
	ids      *Identity
	procs    *procTable
	paths    *resolver
	digests  SetDigests
	limiter  *limiter
	out      *bufio.Writer
	hub      *stream.Hub
	m        *Metrics
	now      func() time.Time
	hostName string

	bootBase  time.Time // wall clock at CLOCK_BOOTTIME 0
	setNames  map[uint32]setName
	buf, fbuf []byte
	scratch   alert.Alert
	evCount   map[[2]string]prometheus.Counter // (source, type): no label hashing per event
	cg2       string                           // the cgroup v2 mount (seccomp.go)
	// auditPending: audit records waiting for telemetry to place their
	// process (Audit).
	auditPending []pendingAudit
}

type setName struct {
	digest string
	at     time.Time
}

// setNameTTL bounds how long a set id → digest answer is reused. Ids are
// reused after a set is freed, so the answer must not live long; re-asking
// the kernel for every event would cost a system call each.
const setNameTTL = time.Second

// New builds a tracer; it starts nothing.
func New(o Options) *Tracer {
	cfg := o.Config
	now := o.Now
	if now == nil {
		now = time.Now
	}
	host := cfg.NodeName
	if host == "" {
		host, _ = os.Hostname()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(false, func() int { return 0 }, func() int { return 0 })
	}
	if o.Hub == nil {
		o.Hub = stream.NewHub(0, 1, 1, nil)
	}
	paths := newResolver(cfg.ProcRoot)
	t := &Tracer{
		cfg: cfg, ids: NewIdentity(o.State, cfg.MaxContainers, cfg.NegativeCacheTTL, cfg.StateMaxAge, now),
		procs: newProcTable(paths, cfg.MaxProcesses), paths: paths, digests: o.Digests,
		limiter: newLimiter(cfg.RateBurst, cfg.RatePerSecond, cfg.RateExemptSeverity, cfg.MaxContainers),
		out:     bufio.NewWriterSize(io.MultiWriter(o.Sinks...), 64<<10),
		hub:     o.Hub, m: o.Metrics, now: now, hostName: host,
		setNames: map[uint32]setName{}, evCount: map[[2]string]prometheus.Counter{},
	}
	t.limiter.counter = func(a *alert.Alert) prometheus.Counter { return t.m.limitedCounter(a) }
	t.syncBootClock()
	return t
}

// Identity is the tracer's container cache (Watch it to follow changes).
func (t *Tracer) Identity() *Identity { return t.ids }

// syncBootClock re-reads the offset between CLOCK_BOOTTIME (the kernel's
// event clock) and the wall clock, which moves when the wall clock is set.
func (t *Tracer) syncBootClock() {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err == nil {
		t.bootBase = time.Now().Add(-time.Duration(ts.Nano()))
	}
}

func (t *Tracer) eventTime(bootNs uint64) time.Time {
	if bootNs == 0 || t.bootBase.IsZero() {
		return t.now()
	}
	return t.bootBase.Add(time.Duration(bootNs))
}

// Run handles events until ctx ends or every input is closed (a nil one
// counts as closed); summaries go out every ThresholdWindow, and output is
// flushed whenever the inputs are drained (batched under load, immediate
// when idle). audit are the seccomp and AppArmor records of the kernel's
// audit log.
func (t *Tracer) Run(ctx context.Context, enf <-chan events.Event, tel <-chan telemetry.Event, audit <-chan AuditRecord) error {
	tick := time.NewTicker(t.cfg.ThresholdWindow)
	defer tick.Stop()
	defer t.Flush()
	defer t.settleAudit(true)
	retry := time.NewTimer(time.Hour)
	retry.Stop() // armed by settleAudit's answer
	defer retry.Stop()
	var retryAt time.Time // when retry fires; zero when it is stopped
	for enf != nil || tel != nil || audit != nil {
		if due := t.settleAudit(false); !due.Equal(retryAt) {
			retry.Stop()
			if retryAt = due; !due.IsZero() {
				retry.Reset(due.Sub(t.now()))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-enf:
			if !ok {
				enf = nil
				continue
			}
			t.Enforcement(&ev)
		case ev, ok := <-tel:
			if !ok {
				tel = nil
				continue
			}
			t.Telemetry(&ev)
		case r, ok := <-audit:
			if !ok {
				audit = nil
				continue
			}
			t.Audit(r)
		case <-retry.C:
			retryAt = time.Time{}
		case <-tick.C:
			t.Flush()
			t.syncBootClock()
		}
		if len(enf) == 0 && len(tel) == 0 && len(audit) == 0 {
			_ = t.out.Flush()
			t.paths.release()
		}
	}
	return nil
}

// Flush emits one AlertThreshold summary per container that had alerts
// or logs dropped since the last flush (the counts per policy, rule and
// severity included), then flushes the output.
func (t *Tracer) Flush() {
	now := t.now()
	for _, s := range t.limiter.flush(now) {
		a := &t.scratch
		*a = identityOf(s.who)
		a.ClusterName, a.HostName = t.cfg.ClusterName, t.hostName
		a.Time = now
		a.Type, a.Operation = alert.TypeSystemEvent, alert.OpAlertThreshold
		a.Message = s.message(t.cfg.ThresholdWindow)
		a.Data = s.data(t.cfg.RateBurst, t.cfg.RatePerSecond)
		t.write(a)
	}
	_ = t.out.Flush()
}

func (t *Tracer) countEvent(source, kind string) {
	key := [2]string{source, kind}
	c, ok := t.evCount[key]
	if !ok {
		c = t.m.events.WithLabelValues(source, kind)
		t.evCount[key] = c
	}
	c.Inc()
}

// identify fills a's identity from the container c, or from the host
// record h, or with the node's names only when both are nil.
func (t *Tracer) identify(a *alert.Alert, c *container, h *host) {
	a.ClusterName, a.HostName = t.cfg.ClusterName, t.hostName
	switch {
	case c != nil:
		a.NamespaceName, a.PodName, a.Labels = c.PodNamespace, c.PodName, c.labels
		a.ContainerID, a.ContainerName, a.ContainerImage = c.ContainerID, c.ContainerName, c.Image
		if c.idJSON == nil {
			c.idJSON = alert.AppendIdentity(nil, a)
		}
		a.IdentityJSON = c.idJSON
	case h != nil:
		if h.idJSON == nil {
			h.idJSON = alert.AppendIdentity(nil, a)
		}
		a.IdentityJSON = h.idJSON
	}
}

// cgroupSaw: rule r, which cgroup-BPF cannot enforce everywhere, was the
// kernel's to decide for ev: an inet socket (cgroup-BPF misses AF_PACKET
// sockets only), by a rule without fromSource (which it never sees).
func cgroupSaw(ev policy.Event, enforcers map[policy.Class]string, r *policy.Rule) bool {
	return ev.Class == policy.ClassNetwork && enforcers[policy.ClassNetwork] == enforce.BackendCgroupBPF &&
		ev.Family != "packet" && len(r.FromSource) == 0
}

// process fills a's process fields from the process table; pid is the
// acting thread's.
func (t *Tracer) process(a *alert.Alert, pid, tgid, ppid uint32, comm string) *proc {
	p := t.procs.get(tgid)
	if comm != "" && comm != p.comm && (p.inherited || pid == tgid) {
		// The process exec'd — since it forked, or in place (a shell's
		// last command) — and its exec event is not read yet: the table
		// holds the program before. (Not for other threads, which may
		// have comms of their own.)
		p = t.procs.reread(tgid, comm)
	}
	a.HostPID = int64(tgid)
	a.ProcessName = p.name()
	if a.ProcessName == "" {
		a.ProcessName = comm
	}
	if ppid == 0 {
		ppid = p.ppid
	}
	a.HostPPID = int64(ppid)
	// PID and PPID are the container's view when /proc told it (NSpid);
	// otherwise the host's, which is all the kernel event says.
	a.PID, a.PPID = int64(tgid), int64(ppid)
	if p.nspid != 0 {
		a.PID = int64(p.nspid)
	}
	if ppid != 0 {
		pp := t.procs.get(ppid)
		a.ParentProcessName = pp.name()
		if p.nspid != 0 {
			// The parent's container pid; 0 when the parent is outside the
			// container's pid namespace (runc's init: PPID 0 in the container).
			a.PPID = int64(pp.nspid)
			if pp.nspid == ppid && p.nspid != tgid {
				a.PPID = 0
			}
		}
	}
	a.Source = a.ProcessName
	return p
}

func (t *Tracer) setDigest(id uint32) string {
	if t.digests == nil {
		return ""
	}
	now := t.now()
	if n, ok := t.setNames[id]; ok && now.Sub(n.at) < setNameTTL {
		return n.digest
	}
	if len(t.setNames) > 4096 {
		clear(t.setNames) // ids are bounded by maxContainers; this only bounds a burst of churn
	}
	d := t.digests.SetDigest(id)
	t.setNames[id] = setName{d, now}
	return d
}

// Enforcement turns one kernel decision into a MatchedPolicy (or
// MatchedHostPolicy) alert; the kernel already enforced it.
func (t *Tracer) Enforcement(ev *events.Event) {
	t.countEvent("enforcement", string(ev.Class))
	a := &t.scratch
	*a = alert.Alert{Cgroup: ev.CgroupID, Time: t.eventTime(ev.BootNs)}
	c := t.ids.Container(ev.CgroupID)
	var h *host
	a.Type = alert.TypeMatchedPolicy
	if c == nil {
		if h = t.ids.Host(); h != nil {
			a.Type = alert.TypeMatchedHostPolicy
		}
	}
	t.identify(a, c, h)
	t.process(a, ev.PID, ev.TGID, ev.PPID, ev.Comm)
	a.UID = int64(ev.UID)

	var enforcers map[policy.Class]string
	digest := t.setDigest(ev.SetID)
	switch {
	case c != nil:
		enforcers = c.Enforcers
		if digest == "" {
			digest = c.PolicySet
		}
	case h != nil:
		enforcers = h.Enforcers
		if digest == "" {
			digest = h.PolicySet
		}
	}
	a.Enforcer = enforcers[ev.Class]
	if ev.Class == policy.ClassSyscalls {
		a.Enforcer = "" // the syscalls class's published enforcer is seccomp's filter; these come from BPF-LSM
	}
	if a.Enforcer == "" {
		// Not published (the container's record is gone): the cgroup
		// programs cannot read the parent, the LSM programs can.
		a.Enforcer = enforce.BackendBPFLSM
		if ev.Class == policy.ClassNetwork && ev.PPID == 0 {
			a.Enforcer = enforce.BackendCgroupBPF
		}
	}
	a.Operation = operation(ev.Class)
	a.Action = string(ev.Action)
	a.Result = alert.ResultPassed
	if ev.Retval < 0 {
		a.Result = alert.ResultPermissionDenied
	}
	switch ev.Class {
	case policy.ClassNetwork:
		a.Resource = socketResource(ev.Family, ev.SockType, ev.Protocol)
	case policy.ClassCapabilities:
		a.Resource = capResource(ev.Capability)
	case policy.ClassSyscalls:
		a.Resource = "SYS_" + strconv.Itoa(ev.Syscall)
		if name, ok := policy.SyscallName("amd64", ev.Syscall); ok && !ev.Syscall32 {
			a.Resource = "SYS_" + strings.ToUpper(name)
		}
	default:
		a.Resource = ev.Resource
	}
	var rule *policy.Rule
	var set *ruleSet
	if digest != "" {
		if set = t.ids.Set(digest); !set.missing && ev.RuleID != 0 {
			rule = set.rs.RuleByID(int(ev.RuleID))
		}
	}
	switch {
	case ev.Builtin:
		a.PolicyName = "nri-armor-builtin"
		a.Message = "enforced containers may not write to cgroupfs, make cgroups or clone into one"
	case ev.Unnamed:
		a.PolicyName = "nri-armor-builtin"
		a.Message = "the kernel could not name the file (a path longer than PATH_MAX): refused, as no rule can be checked"
	case ev.NoMemory:
		a.PolicyName = "nri-armor-builtin"
		a.Message = "the kernel had no memory to decide in (decisions preempted halfway held every scratch, and none could be made): refused, as no rule can be checked"
	case ev.Posture:
		a.PolicyName = "DefaultPosture"
	case rule != nil:
		setRule(a, set, rule)
	}
	data := "set=" + policy.ShortDigest(digest)
	if ev.Class == policy.ClassSyscalls {
		if rule != nil && ev.Syscall32 {
			a.Resource = "SYS_" + strings.ToUpper(rule.Match.Value) // the rule's name for the 32-bit call
		}
		data = "syscall=" + a.Resource + " nr=" + strconv.Itoa(ev.Syscall) + " " + data
		if ev.Syscall32 {
			data += " abi=ia32"
		}
	}
	if ev.RuleID != 0 {
		data += " rule=" + strconv.FormatUint(uint64(ev.RuleID), 10)
		if rule == nil {
			// Never drop what the kernel reported: say what is unknown.
			data += " unresolved=set-not-published"
		}
	}
	if ev.Write {
		data += " write=true"
	}
	a.Data = data
	t.emit(a)
}

// setRule fills the rule's alert fields, rendered once per rule of set.
func setRule(a *alert.Alert, set *ruleSet, r *policy.Rule) {
	ri := set.info(r)
	a.PolicyName, a.Severity, a.Tags, a.Message = r.Policy, ri.severity, ri.tags, r.Message
	a.RuleID = r.ID // flood control's key
	if len(r.Tags) > 0 {
		a.ATags = r.Tags
	}
	a.RuleJSON = ri.json
}

func operation(c policy.Class) string {
	switch c {
	case policy.ClassProcess:
		return alert.OpProcess
	case policy.ClassFile:
		return alert.OpFile
	case policy.ClassNetwork:
		return alert.OpNetwork
	case policy.ClassCapabilities:
		return alert.OpCapabilities
	}
	return alert.OpSyscall
}

// Telemetry handles one telemetry event: it keeps the process table,
// matches the event against the rules of a class that the kernel does not
// enforce for the container (an audit-only node), and reports it as a
// ContainerLog when the container's visibility asks for its class.
func (t *Tracer) Telemetry(ev *telemetry.Event) {
	t.countEvent("telemetry", kindName(ev.Kind))
	if ev.Kind == telemetry.KindExit || ev.Kind == telemetry.KindFork || ev.Kind == 0 {
		t.procs.observe(ev, "")
		if ev.Kind == telemetry.KindExit && t.paths.root.tgid == ev.TGID {
			t.paths.release() // its root may go
		}
		return // only the process table cares
	}
	c := t.ids.Container(ev.CgroupID)
	var h *host
	if c == nil {
		if h = t.ids.Host(); h == nil {
			t.procs.observe(ev, ev.Path)
			t.m.unknown.WithLabelValues(kindName(ev.Kind)).Inc()
			return
		}
	}
	var set *ruleSet
	var enforcers map[policy.Class]string
	var unenforced map[int]bool
	var vis policy.Visibility
	if c != nil {
		set, enforcers, unenforced, vis = t.ids.containerSet(c), c.Enforcers, c.unenforced, c.Visibility
	} else {
		if h.set != nil && !h.set.missing {
			set = h.set
		}
		enforcers, unenforced, vis = h.Enforcers, h.unenforced, h.Visibility
	}
	// The file an exec or open named, resolved before the process table
	// records an exec's executable by it.
	var f fileName
	switch ev.Kind {
	case telemetry.KindExec:
		f = t.execName(ev, lookups(set, policy.ClassProcess, enforcers, unenforced))
	case telemetry.KindOpen:
		f = t.openName(ev, lookups(set, policy.ClassFile, enforcers, unenforced))
	}
	prevExe := t.procs.observe(ev, f.path)

	a := &t.scratch
	*a = alert.Alert{Cgroup: ev.CgroupID, Time: t.eventTime(ev.BootNs)}
	t.identify(a, c, h)
	p := t.procs.get(ev.TGID)
	pev, matchable := t.describe(a, ev, &f, p, prevExe)
	t.process(a, ev.PID, ev.TGID, ev.PPID, ev.Comm)
	a.UID = int64(ev.UID)
	a.Result = result(ev.Ret)
	if ev.Kind == telemetry.KindExec && prevExe != "" {
		a.Source = prevExe // the caller's executable, as KubeArmor reports an exec
	}

	if set != nil && matchable {
		d := policy.Decide(set.rs, pev)
		if d.Action != policy.Allow {
			// A Block that went through was not enforced, whatever the
			// profile says: AppArmor checks the program runc itself
			// executes (a container's command, each exec's) under runc's
			// profile, not the container's (docs/apparmor.md). Only this
			// path sees it; a refusal never completes an exec.
			passedBlock := d.Action == policy.Block && a.Result == alert.ResultPassed
			if ringReports(pev, d, enforcers, unenforced) || appArmorLogs(set, enforcers, pev.Class, d) && !passedBlock {
				// The kernel enforced this class and reported the decision
				// — on the enforcement ring buffer, or in the audit log for
				// what the container's AppArmor profile refuses or logs
				// (Tracer.AppArmor): that is the alert, and a log of the
				// same operation would report it twice. Rules that the
				// enforcer cannot express (the record's Unenforced ids;
				// for AppArmor those its profile leaves out, such as
				// fromSource rules, not those it enforces in part, whose
				// every event seen here it logs) are the exception: only
				// this path sees them; and so is an Audit posture, which a
				// profile does not log.
				return
			}
			a.Type = alert.TypeMatchedPolicy
			if c == nil {
				a.Type = alert.TypeMatchedHostPolicy
			}
			a.Enforcer = alert.EnforcerMonitor
			// The truthful action: a Block rule that nothing on this node
			// enforces says Action Block with Result Passed (the operation
			// went through), never a silent "Audit".
			a.Action = string(d.Action)
			switch {
			case d.DefaultPosture:
				a.PolicyName = "DefaultPosture"
			case d.Rule != nil:
				setRule(a, set, d.Rule)
				a.Data += " rule=" + strconv.Itoa(d.Rule.ID)
			}
			if d.Action == policy.Block && a.Result == alert.ResultPassed {
				a.Data += " unenforced=true"
			}
			t.emit(a)
			return
		}
	}
	if visible(vis, pev.Class) {
		a.Type = alert.TypeContainerLog
		if c == nil {
			a.Type = alert.TypeHostLog
		}
		t.emit(a)
	}
}

func visible(v policy.Visibility, c policy.Class) bool {
	switch c {
	case policy.ClassProcess:
		return v.Process
	case policy.ClassFile:
		return v.File
	case policy.ClassNetwork:
		return v.Network
	case policy.ClassCapabilities:
		return v.Capabilities
	}
	return false
}

// result is KubeArmor's Result for a system call's return value.
func result(ret int64) string {
	switch {
	case ret >= 0:
		return alert.ResultPassed
	case ret == -int64(syscall.EACCES):
		return alert.ResultPermissionDenied
	case ret == -int64(syscall.EPERM):
		return "Operation not permitted"
	}
	return syscall.Errno(-ret).Error()
}

// emit applies flood control (which counts what it drops), then writes a.
func (t *Tracer) emit(a *alert.Alert) {
	if t.limiter.allow(a, t.now()) {
		t.write(a)
	}
}

// write encodes a to the sinks and the stream, and counts it.
func (t *Tracer) write(a *alert.Alert) {
	a.Timestamp = a.Time.Unix()
	t.buf = append(a.AppendJSON(t.buf[:0]), '\n')
	if t.cfg.Format == "falco" {
		t.fbuf = append(alert.AppendFalco(t.fbuf[:0], a), '\n')
		_, _ = t.out.Write(t.fbuf)
	} else {
		_, _ = t.out.Write(t.buf)
	}
	t.hub.Publish(a, t.buf)
	t.m.countAlert(a)
}
