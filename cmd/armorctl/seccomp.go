package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/containerd/nri/pkg/api"
	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/policy"
)

// seccompExplanation is what explain -o seccomp prints: what the
// container's filter does with its syscall rules, on this machine's
// architecture, and the filter itself as runc would get it for an
// Unconfined container. A container with a seccomp profile (the runtime
// default) gets the same rules merged into its own (docs/seccomp.md).
type seccompExplanation struct {
	Arch       string           `json:"arch"`
	Blocked    []string         `json:"blocked"`
	Logged     []string         `json:"logged"`
	Unenforced []unenforcedRule `json:"notDecidedByTheFilter"`
	// BPFLSM are the rules of notDecidedByTheFilter that BPF-LSM enforces
	// in the kernel where it is active: there the filter leaves them out
	// (not logged), and they are not unenforced.
	BPFLSM     []int               `json:"enforcedByBPFLSMWhereActive"`
	Merge      string              `json:"merge"`
	Unconfined *rspec.LinuxSeccomp `json:"unconfined,omitempty"`
	Error      string              `json:"error,omitempty"`
}

// writeSeccomp prints the container's seccomp filter as JSON (-o seccomp).
func writeSeccomp(w io.Writer, e *policy.Explanation, _ []*policy.Policy) error {
	x := seccompExplanation{Arch: policy.NodeArch(), Blocked: []string{}, Logged: []string{}, Unenforced: []unenforcedRule{}, BPFLSM: []int{},
		Merge: "merged into the container's own policy where the runtime shows it (containerd 2.3 and later): what the runtime default refuses stays refused, with its errno; with seccompLogRefusals the filter also carries SECCOMP_FILTER_FLAG_LOG"}
	plan, err := seccomp.PlanFor(e.RuleSet, x.Arch)
	if err != nil {
		x.Error = "the container would be refused at creation: " + err.Error()
		return writeJSON(w, x)
	}
	x.BPFLSM = append(x.BPFLSM, bpflsm.KernelSyscallRules(e.RuleSet)...)
	x.Blocked = append(x.Blocked, plan.Blocked...)
	x.Logged = append(x.Logged, plan.Logged...)
	for _, u := range plan.Unenforced {
		x.Unenforced = append(x.Unenforced, unenforcedRule{u.Rule.ID, u.Rule.Describe(), u.Reason})
	}
	if !plan.Empty() {
		x.Unconfined = ociSeccomp(seccomp.Build(plan, x.Arch, nil))
	}
	return writeJSON(w, x)
}

// writeSeccompText says, in explain's text output, what the container's
// seccomp filter does with its syscall rules (nothing when it has none).
func writeSeccompText(w io.Writer, rs *policy.RuleSet) error {
	if len(rs.Syscalls.Rules) == 0 {
		return nil
	}
	plan, err := seccomp.PlanFor(rs, policy.NodeArch())
	if err != nil {
		_, err = fmt.Fprintf(w, "\nsyscall rules: the container would be refused at creation: %v\n", err)
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nsyscall rules: a seccomp filter merged into the container's own (armorctl explain -o seccomp)\n")
	fmt.Fprintf(&b, "  refused (EPERM): %s\n  logged:          %s\n", orNone(plan.Blocked), orNone(plan.Logged))
	kernel := map[int]bool{}
	for _, id := range bpflsm.KernelSyscallRules(rs) {
		kernel[id] = true
	}
	for _, u := range plan.Unenforced {
		fmt.Fprintf(&b, "  #%-4d %s: %s\n", u.Rule.ID, u.Rule.Describe(), u.Reason)
		if kernel[u.Rule.ID] {
			fmt.Fprintf(&b, "        where BPF-LSM is active: enforced in the kernel instead (by the call's LSM hook, 64-bit and int 0x80), not logged by the filter\n")
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, " ")
}

// ociSeccomp is pol as the OCI spec (config.json) writes it.
func ociSeccomp(pol *api.LinuxSeccomp) *rspec.LinuxSeccomp {
	out := &rspec.LinuxSeccomp{DefaultAction: rspec.LinuxSeccompAction(pol.DefaultAction), Syscalls: api.ToOCILinuxSyscalls(pol.Syscalls)}
	for _, a := range pol.Architectures {
		out.Architectures = append(out.Architectures, rspec.Arch(a))
	}
	for _, f := range pol.Flags {
		out.Flags = append(out.Flags, rspec.LinuxSeccompFlag(f))
	}
	return out
}
