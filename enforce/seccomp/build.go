package seccomp

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/proto"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/policy"
)

// Enforcer is the name alerts' Enforcer field gives seccomp.
const Enforcer = enforce.BackendSeccomp

// The OCI actions and the flag used here (runtime-spec's names, which runc
// and crun read).
const (
	ActAllow = "SCMP_ACT_ALLOW"
	ActErrno = "SCMP_ACT_ERRNO" // EPERM unless ErrnoRet says otherwise
	ActLog   = "SCMP_ACT_LOG"
	// FlagLog makes the kernel log every action of the filter but ALLOW
	// (SECCOMP_FILTER_FLAG_LOG), so that a refusal (ERRNO, which the kernel
	// does not log otherwise) reaches armor-tracer as an audit record.
	// runc before 1.2 refuses to start a container whose spec has any
	// seccomp flag ("seccomp flags are not yet supported by runc"), so it
	// is set only where the node says its runtime takes it
	// (Plan.LogRefusals).
	FlagLog = "SECCOMP_FILTER_FLAG_LOG"
)

// eperm is the errno a plain SCMP_ACT_ERRNO returns.
const eperm = 1

// Unexpressible is why seccomp does not enforce a syscall rule with a path
// or a fromSource: a filter sees the system call's number and its
// arguments' values, not the file a pointer names nor the executable
// making the call.
const Unexpressible = "seccomp sees a system call's number and argument values, not the path it names nor the executable making it: the call is logged (SCMP_ACT_LOG) and armor-tracer decides the rule from the record"

// Arches are the seccomp architectures of a filter for a node of Go
// architecture arch: the native one and those its kernel also runs
// (as containerd's default profile lists them).
func Arches(arch string) []string {
	switch arch {
	case "amd64":
		return []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}
	case "arm64":
		return []string{"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"}
	}
	return nil
}

// Plan is what Build made of a rule set's syscall rules.
type Plan struct {
	// Blocked are the system calls refused (EPERM), Logged those logged
	// and allowed; each sorted.
	Blocked, Logged []string
	// Enforced are the ids of the rules the filter decides by itself.
	Enforced []int
	// Unenforced are the rules it cannot decide (a path, a fromSource):
	// their calls are logged, and armor-tracer decides them.
	Unenforced []enforce.Unenforced
	// Kernel are the ids of the rules the node's BPF-LSM enforces
	// (Node.KernelSyscalls): left out of the filter, neither logged nor
	// unenforced.
	Kernel []int
	// LogRefusals: the filter logs its refusals too (FlagLog), for
	// armor-tracer's Block alerts; set by the caller where the node's OCI
	// runtime accepts seccomp flags.
	LogRefusals bool
}

// Empty reports whether the set has no syscall rule the filter acts on.
func (p Plan) Empty() bool { return len(p.Blocked) == 0 && len(p.Logged) == 0 }

// Plan decides what a filter does for rs's syscall rules: a Block rule
// without a path or fromSource refuses its call with EPERM; an Audit one
// logs it (SCMP_ACT_LOG); a rule with a path or fromSource is logged,
// whatever its action, for armor-tracer to decide; Allow rules change
// nothing (syscalls have no allow-list mode). It fails, naming the policy
// and field, when a rule names a call arch does not have.
func PlanFor(rs *policy.RuleSet, arch string) (Plan, error) {
	return PlanOn(rs, Node{Arch: arch})
}

// PlanOn is PlanFor on node n: the rules n's BPF-LSM enforces in the
// kernel (n.KernelSyscalls) are left to it.
func PlanOn(rs *policy.RuleSet, n Node) (Plan, error) {
	arch := n.Arch
	var p Plan
	kernel := map[int]bool{}
	if rs != nil && n.KernelSyscalls != nil {
		for _, id := range n.KernelSyscalls(rs) {
			kernel[id] = true
		}
	}
	if rs == nil {
		return p, nil
	}
	if errs := policy.MissingSyscalls(rs, arch); len(errs) > 0 {
		return p, errors.Join(errs...)
	}
	block, log := map[string]bool{}, map[string]bool{}
	for _, r := range rs.Syscalls.Rules {
		if r.Action == policy.Allow {
			continue
		}
		name := r.Match.Value
		if kernel[r.ID] {
			p.Kernel = append(p.Kernel, r.ID)
			continue
		}
		if len(r.FromSource) > 0 || r.Match.Path != "" {
			log[name] = true
			p.Unenforced = append(p.Unenforced, enforce.Unenforced{Rule: r, Reason: Unexpressible})
			continue
		}
		if r.Action == policy.Block {
			block[name] = true
		} else {
			log[name] = true
		}
		p.Enforced = append(p.Enforced, r.ID)
	}
	for n := range block {
		p.Blocked = append(p.Blocked, n)
		delete(log, n) // refused: nothing to log but the refusal (FlagLog)
	}
	for n := range log {
		p.Logged = append(p.Logged, n)
	}
	sort.Strings(p.Blocked)
	sort.Strings(p.Logged)
	return p, nil
}

// refuses reports whether a seccomp action stops the call.
func refuses(action string) bool {
	return action != ActAllow && action != ActLog
}

// Build returns the policy the container gets: base — what it has now,
// nil when it runs Unconfined — with plan merged in. The base's decisions
// stay: a call it refuses stays refused (with its own errno); a call it
// allows under conditions on its arguments is logged under the same
// conditions when audited, and refused outright when blocked. Unconfined
// becomes a default-allow policy for arch with the rules. With
// plan.LogRefusals the filter logs every action but ALLOW (FlagLog). base
// is not modified.
func Build(plan Plan, arch string, base *api.LinuxSeccomp) *api.LinuxSeccomp {
	var out *api.LinuxSeccomp
	if base == nil {
		out = &api.LinuxSeccomp{DefaultAction: ActAllow, Architectures: Arches(arch)}
	} else {
		out = proto.Clone(base).(*api.LinuxSeccomp)
	}
	blocked := setOf(plan.Blocked)
	logged := setOf(plan.Logged)
	// How the base treats each name the plan touches: named by a rule that
	// refuses it unconditionally, by rules that allow it (with or without
	// conditions).
	refusedAlways, refusedSome := map[string]bool{}, map[string]bool{}
	named := map[string]bool{}
	for _, r := range out.Syscalls {
		for _, n := range r.Names {
			named[n] = true
			if refuses(r.Action) {
				refusedSome[n] = true
				refusedAlways[n] = refusedAlways[n] || len(r.Args) == 0
			}
		}
	}
	defaultRefuses := refuses(out.DefaultAction)
	// An audited call the base lets through whatever its arguments (no
	// rule refuses it, nor the default) gets one unconditional LOG rule in
	// place of its rules; one the base refuses in some cases keeps them,
	// its allows turned into logs under the same conditions. (A base that
	// allows by default and refuses a call only for some arguments leaves
	// the other cases unlogged: a LOG rule without conditions beside a
	// refusal with them is a conflict libseccomp refuses.)
	logAll := map[string]bool{}
	for n := range logged {
		if !refusedSome[n] && !defaultRefuses {
			logAll[n] = true
		}
	}
	// A blocked name the base already refuses in every case keeps the
	// base's rule (and errno); any other is taken out of every rule and
	// refused outright, which no base condition may loosen.
	redo := map[string]bool{}
	for n := range blocked {
		if refusedAlways[n] || (!named[n] && defaultRefuses) {
			continue
		}
		redo[n] = true
	}
	var rules []*api.LinuxSyscall
	for _, r := range out.Syscalls {
		var keep, toLog []string
		for _, n := range r.Names {
			switch {
			case redo[n], logAll[n]:
				// dropped here, refused or logged below
			case logged[n] && r.Action == ActAllow:
				toLog = append(toLog, n)
			default:
				keep = append(keep, n)
			}
		}
		if len(keep) > 0 {
			c := proto.Clone(r).(*api.LinuxSyscall)
			c.Names = keep
			rules = append(rules, c)
		}
		if len(toLog) > 0 {
			c := proto.Clone(r).(*api.LinuxSyscall)
			c.Names, c.Action, c.ErrnoRet = toLog, ActLog, nil
			rules = append(rules, c)
		}
	}
	if names := sortedKeys(redo); len(names) > 0 {
		rules = append(rules, &api.LinuxSyscall{Names: names, Action: ActErrno})
	}
	if names := sortedKeys(logAll); len(names) > 0 {
		rules = append(rules, &api.LinuxSyscall{Names: names, Action: ActLog})
	}
	out.Syscalls = rules
	if plan.LogRefusals && !slices.Contains(out.Flags, FlagLog) {
		out.Flags = append(out.Flags, FlagLog)
	}
	// NRI never carries the default errno to the runtime (its conversion
	// drops it): keep it out rather than pretend.
	out.DefaultErrno = nil
	return out
}

// ForRuntime makes a built policy safe to send to the runtime s describes:
// where its NRI crashes on ErrnoRet, an ErrnoRet of EPERM (what a plain
// SCMP_ACT_ERRNO returns anyway) is dropped, and any other is an error —
// the rule cannot be sent faithfully (containerd's default profile refuses
// clone3 with ENOSYS so that the C library falls back to clone; EPERM
// there would break thread creation).
func ForRuntime(s Support, pol *api.LinuxSeccomp) (*api.LinuxSeccomp, error) {
	if !s.ErrnoRetCrash {
		return pol, nil
	}
	out := proto.Clone(pol).(*api.LinuxSeccomp)
	for _, r := range out.Syscalls {
		if r.ErrnoRet == nil {
			continue
		}
		if r.ErrnoRet.GetValue() != eperm {
			return nil, fmt.Errorf("the policy has a rule for %v with errno %d, and %s crashes on any rule with an errno (NRI v0.11; fixed in v0.12.0): not sent", r.Names, r.ErrnoRet.GetValue(), s.Runtime)
		}
		r.ErrnoRet = nil
	}
	out.DefaultErrno = nil
	return out, nil
}

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
