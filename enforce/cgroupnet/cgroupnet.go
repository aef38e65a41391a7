// Package cgroupnet is the network backend for nodes without BPF-LSM:
// cgroup-BPF programs on socket creation and connect, keyed by cgroup id.
package cgroupnet

import (
	"github.com/nri-armor/nri-armor/bpf"
	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/policy"
)

// Backend enforces network rules with cgroup-BPF programs.
type Backend struct {
	engine *bpf.Engine
}

// Open loads (or re-opens from the pins) the programs and maps, attached at
// the root of the cgroup2 hierarchy so that every container is covered.
func Open(cfg bpf.Config) (*Backend, error) {
	cg2, err := enforce.Cgroup2Mount()
	if err != nil {
		return nil, err
	}
	e, err := bpf.Open(cfg, bpf.HooksCgroupNet, cg2)
	if err != nil {
		return nil, err
	}
	return &Backend{engine: e}, nil
}

var classes = []policy.Class{policy.ClassNetwork}

// Name is "CgroupBPF".
func (b *Backend) Name() string { return enforce.BackendCgroupBPF }

// Classes is network only.
func (b *Backend) Classes() []policy.Class { return classes }

// Apply installs rs for the cgroup. Only its network rules are enforced,
// and of those not the ones with fromSource: cgroup programs cannot see
// the acting executable. Such an Allow rule then never matches, so its
// source falls to the posture — stricter than asked, never looser.
func (b *Backend) Apply(cgroupID uint64, rs *policy.RuleSet) (enforce.Report, error) {
	if _, err := b.engine.Apply(cgroupID, rs); err != nil {
		return enforce.Report{}, err
	}
	rep := enforce.Report{Unenforced: enforce.NotEnforced(rs, classes, "this node has no BPF-LSM: audit only")}
	for _, r := range rs.Network.Rules {
		if len(r.FromSource) > 0 {
			rep.Unenforced = append(rep.Unenforced, enforce.Unenforced{Rule: r, Reason: "cgroup-BPF programs cannot see the acting executable (fromSource)"})
		}
	}
	return rep, nil
}

// Remove releases the cgroup.
func (b *Backend) Remove(cgroupID uint64) error { return b.engine.Remove(cgroupID) }

// Engine is the kernel state, for statistics and the event ring buffer.
func (b *Backend) Engine() *bpf.Engine { return b.engine }

// Close releases descriptors; enforcement stays pinned.
func (b *Backend) Close() error { return b.engine.Close() }
