package seccomp

import (
	"fmt"
	"path"
	"slices"

	"github.com/containerd/nri/pkg/api"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/policy"
)

// Decision is what the plugin does about one container's syscall rules at
// CreateContainer.
type Decision struct {
	// Policy is the seccomp policy to set (SetLinuxSeccompPolicy); nil when
	// there is none to set.
	Policy *api.LinuxSeccomp
	// Localhost is the path of the Localhost profile that carries the
	// filter instead (RouteLocalhost): nothing is set through NRI, and the
	// start gate checks that the bundle's filter is that profile's.
	Localhost string
	// Plan is what the filter does with the rules.
	Plan Plan
	// Refuse, when set, is why the container may not be created: its
	// rules name calls its node's architecture lacks, or it has Block
	// rules that no filter can carry on this runtime. Callers may still
	// start it where the node's fail mode is open, or in audit mode.
	Refuse error
	// Unenforced are the syscall rules no filter decides (Plan's, or every
	// rule when no filter can be set), with the reason.
	Unenforced []enforce.Unenforced
}

// Node is what Decide needs to know of the node.
type Node struct {
	// Arch is its architecture (Go's name).
	Arch string
	// LogRefusals: its OCI runtime accepts seccomp flags (runc 1.2 and
	// later, crun), so filters log their refusals (FlagLog).
	LogRefusals bool
	// KernelSyscalls, when set, says which of a set's syscall rules the
	// node's BPF-LSM enforces in the kernel (enforce.SyscallEnforcer):
	// the filter leaves them out.
	KernelSyscalls func(*policy.RuleSet) []int
}

// Decide builds the filter of container ctr for rs's syscall rules on
// node n, connected to the runtime s describes.
func Decide(s Support, rs *policy.RuleSet, n Node, ctr *api.Container) Decision {
	d, done := planned(rs, n)
	if done {
		return d
	}
	base, why := baseOf(s, ctr)
	if why == "" {
		pol, err := ForRuntime(s, Build(d.Plan, n.Arch, base))
		if err == nil {
			d.Policy = pol
			return d
		}
		why = err.Error()
	}
	return unfiltered(d, rs, why)
}

// DecideLocalhost is Decide on the Localhost route: the filter is the
// Localhost profile at path want (the one nri-armor writes for the
// container: "" when its pod names none), which the runtime read before
// CreateContainer. A runtime that shows the container's profile
// (containerd 2.2.1 and later) must show want; one that does not (CRI-O)
// leaves it to the start gate, which checks the bundle. A pod that names
// none has its Block rules refused, except for an Unconfined container
// where the runtime takes a default-allow policy through NRI.
func DecideLocalhost(s Support, rs *policy.RuleSet, n Node, ctr *api.Container, want string) Decision {
	if want == "" && s.UnconfinedNRI {
		if prof := ctr.GetLinux().GetSeccompProfile(); prof != nil && prof.GetProfileType() == api.SecurityProfile_UNCONFINED {
			// Unconfined: no base, whatever else the container shows.
			bare := &api.Container{Linux: &api.LinuxContainer{SeccompProfile: prof}}
			return Decide(Support{Runtime: s.Runtime, Route: RouteMerge, ErrnoRetCrash: s.ErrnoRetCrash}, rs, n, bare)
		}
	}
	d, done := planned(rs, n)
	if done {
		return d
	}
	if want == "" {
		return unfiltered(d, rs, fmt.Sprintf("%s; its pod names no Localhost seccomp profile of nri-armor's for it (securityContext.seccompProfile {type: Localhost, localhostProfile: %s/…} and the annotation %sCONTAINER, which nri-armor's pod webhook sets)", s.Reason, ProfileDir, ProfileAnnotation))
	}
	if prof := ctr.GetLinux().GetSeccompProfile(); prof != nil {
		if prof.GetProfileType() != api.SecurityProfile_LOCALHOST || path.Clean(prof.GetLocalhostRef()) != want {
			what := prof.GetProfileType().String()
			if ref := prof.GetLocalhostRef(); ref != "" {
				what += " " + ref
			}
			return unfiltered(d, rs, fmt.Sprintf("the container's seccomp profile is %s, not nri-armor's Localhost profile %s, which its pod names for it", what, want))
		}
	}
	if ref, ok := ctr.GetAnnotations()[CRIOProfileAnnotation]; ok && path.Clean(ref) != want {
		return unfiltered(d, rs, fmt.Sprintf("the runtime loaded seccomp profile %q for the container, not nri-armor's Localhost profile %s, which its pod names for it", ref, want))
	}
	d.Localhost = want
	return d
}

// unfiltered is d when no filter can carry rs's rules: every rule goes
// unenforced, and Block rules refuse the container.
func unfiltered(d Decision, rs *policy.RuleSet, why string) Decision {
	plan := d.Plan
	d.Plan.Enforced, d.Unenforced = nil, nil
	blocks := false
	for _, r := range rs.Syscalls.Rules {
		if r.Action == policy.Allow || slices.Contains(plan.Kernel, r.ID) {
			continue // BPF-LSM's, whatever the filter
		}
		blocks = blocks || r.Action == policy.Block
		d.Unenforced = append(d.Unenforced, enforce.Unenforced{Rule: r, Reason: "no seccomp filter: " + why})
	}
	if blocks {
		d.Refuse = fmt.Errorf("syscall Block rules cannot be enforced: %s", why)
	}
	return d
}

// baseOf returns the policy ctr has now (nil for Unconfined), or why it
// cannot be known or merged into on this runtime.
func baseOf(s Support, ctr *api.Container) (*api.LinuxSeccomp, string) {
	lin := ctr.GetLinux()
	if s.Route == RouteMerge {
		return lin.GetSeccompPolicy(), ""
	}
	return nil, s.Reason
}

// planned plans rs's syscall rules on node n, both routes' first step:
// done says that the decision is made (a refusal, or nothing to filter).
func planned(rs *policy.RuleSet, n Node) (d Decision, done bool) {
	plan, err := PlanOn(rs, n)
	if err != nil {
		return Decision{Refuse: fmt.Errorf("syscall rules: %w", err)}, true
	}
	plan.LogRefusals = n.LogRefusals
	if plan.Empty() {
		return Decision{Plan: plan}, true
	}
	return Decision{Plan: plan, Unenforced: plan.Unenforced}, false
}
