package enforce

import (
	"github.com/nri-armor/nri-armor/policy"
)

// Backend names, as alerts' Enforcer field, the published state and the
// probe show them.
const (
	BackendBPFLSM    = "BPFLSM"
	BackendCgroupBPF = "CgroupBPF"
	// BackendSeccomp enforces syscall rules: a seccomp filter set at
	// container creation (enforce/seccomp), not a Backend.
	BackendSeccomp = "Seccomp"
	// BackendAppArmor enforces process, file and capability rules where
	// BPF-LSM is not active: a profile per container identity
	// (enforce/apparmor), named in the container's spec and loaded by the
	// daemon before the container is created; not a Backend (it is not
	// keyed by cgroup).
	BackendAppArmor  = "AppArmor"
	BackendAuditOnly = "audit only"
)

// Backend enforces compiled rule sets on containers, which it knows by
// their cgroup v2 id. The NRI plugin calls it; each backend lives in a
// package of its own under enforce/. What a backend can do beyond this is
// an optional interface below, found by type assertion.
type Backend interface {
	// Name is the backend as alerts' Enforcer field names it.
	Name() string
	// Classes are the classes it enforces on this node.
	Classes() []policy.Class
	// Apply points the cgroup at rs, atomically replacing its previous set.
	// The report lists the rules of rs that this backend does not enforce.
	Apply(cgroupID uint64, rs *policy.RuleSet) (Report, error)
	// Remove stops enforcing on the cgroup.
	Remove(cgroupID uint64) error
	// Close releases the backend's descriptors; pinned kernel state stays.
	Close() error
}

// HostBackend is a Backend that also enforces a host policy on the node's
// own processes: those outside every container. Containers without rules
// must then be marked (Exempt) so that the host set does not reach them.
type HostBackend interface {
	Backend
	// ApplyHost makes rs the host set, atomically replacing the previous one.
	ApplyHost(rs *policy.RuleSet) (Report, error)
	// RemoveHost stops enforcing on the node's own processes.
	RemoveHost() error
	// Exempt marks the cgroup as a container with nothing to enforce.
	Exempt(cgroupID uint64) error
}

// Report says what of a rule set a backend does not enforce, and why: such
// rules are matched in user space (audit only), never silently dropped.
type Report struct {
	Unenforced []Unenforced
}

// Unenforced is one rule the backend cannot enforce.
type Unenforced struct {
	Rule   *policy.Rule
	Reason string
	// Partial: the backend enforces the rule on some of what it covers
	// (cgroup-BPF: inet sockets, not AF_PACKET ones); its class still
	// counts as the backend's, and armor-tracer audits the rest.
	Partial bool
}

// NotEnforced lists every rule of rs in a class outside classes, with reason.
func NotEnforced(rs *policy.RuleSet, classes []policy.Class, reason string) []Unenforced {
	var out []Unenforced
	for _, c := range policy.Classes {
		covered := false
		for _, k := range classes {
			covered = covered || k == c
		}
		if covered {
			continue
		}
		for _, r := range rs.Class(c).Rules {
			out = append(out, Unenforced{Rule: r, Reason: reason})
		}
	}
	return out
}

// SyscallEnforcer is a Backend that enforces some syscall rules in the
// kernel itself (BPF-LSM: those with fromSource that a hook can decide),
// which a seccomp filter cannot: the filter leaves them out, and
// armor-tracer does not decide them again.
type SyscallEnforcer interface {
	KernelSyscalls(rs *policy.RuleSet) []int
}

// KernelStater is a Backend that keeps rule sets in kernel maps and can say
// how full they are (the daemon exports it as metrics).
type KernelStater interface {
	KernelStats() KernelStats
}

// KernelStats is what a backend's kernel maps hold now.
type KernelStats struct {
	Sets           int               // distinct rule sets loaded
	RuleEntries    int               // rule entries over all sets
	MaxContainers  int               // configured capacity: cgroups with a set
	MaxRuleEntries int               // configured capacity: rule entries
	MapBytes       map[string]uint64 // kernel memory charged, by map
	// Decisions that found their CPU's first scratch taken (another
	// decision preempted halfway on that CPU): in all, and of those the
	// ones that decided in memory of their own, and the ones refused.
	ScratchContended, ScratchSpilled, ScratchRefused uint64
}

// Reaper is a Backend that keeps unused state for reuse for a while; the
// daemon calls Reap periodically to free what has been unused too long.
type Reaper interface {
	Reap()
}
