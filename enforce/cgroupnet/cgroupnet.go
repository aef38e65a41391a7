package cgroupnet

import (
	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/policy"
)

var classes = []policy.Class{policy.ClassNetwork}

// Open loads (or re-opens from the pins) the programs and maps, attached at
// the root of the cgroup2 hierarchy so that every container is covered.
//
// Only network rules are enforced, and of those not the ones with
// fromSource: cgroup programs cannot see the acting executable. Such an
// Allow rule then never matches, so its source falls to the posture —
// stricter than asked, never looser. Nor do they see AF_PACKET sockets
// (the cgroup socket hooks are inet's): rules that cover them are reported,
// so that armor-tracer audits what they would block.
func Open(cfg bpflsm.Config) (*bpflsm.Backend, error) {
	return bpflsm.OpenBackend(enforce.BackendCgroupBPF, classes, bpflsm.HooksCgroupNet, cfg, limits)
}

func limits(rs *policy.RuleSet) []enforce.Unenforced {
	out := enforce.NotEnforced(rs, classes, "this node has no BPF-LSM: audit only")
	for _, r := range rs.Network.Rules {
		switch {
		case len(r.FromSource) > 0:
			out = append(out, enforce.Unenforced{Rule: r, Reason: "cgroup-BPF programs cannot see the acting executable (fromSource)"})
		case r.Match.Value == "packet" || r.Match.Value == "raw" || r.Match.Value == "all":
			out = append(out, enforce.Unenforced{Rule: r, Reason: "cgroup-BPF programs see inet sockets only: not on AF_PACKET sockets", Partial: true})
		}
	}
	return out
}
