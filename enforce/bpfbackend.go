package enforce

import (
	"github.com/nri-armor/nri-armor/bpf"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/policy"
)

// BPFBackend is a Backend on the BPF engine. The BPF-LSM and cgroup-BPF
// backends differ only in the programs they attach and in what they cannot
// enforce; enforce/bpflsm and enforce/cgroupnet open one each.
type BPFBackend struct {
	name    string
	classes []policy.Class
	engine  *bpf.Engine
	// limits lists what the attached programs cannot enforce of a set, on
	// top of what the encoder reports.
	limits func(rs *policy.RuleSet) []Unenforced
}

// OpenBPF loads (or re-opens from the pins) the engine with hooks attached.
func OpenBPF(name string, classes []policy.Class, hooks bpf.Hooks, cfg bpf.Config, limits func(*policy.RuleSet) []Unenforced) (*BPFBackend, error) {
	cg2, err := cgroups.Mount()
	if err != nil {
		return nil, err
	}
	e, err := bpf.Open(cfg, hooks, cg2)
	if err != nil {
		return nil, err
	}
	return &BPFBackend{name: name, classes: classes, engine: e, limits: limits}, nil
}

// Name is the Enforcer name alerts carry.
func (b *BPFBackend) Name() string { return b.name }

// Classes are the classes this backend enforces.
func (b *BPFBackend) Classes() []policy.Class { return b.classes }

// Apply installs rs for the cgroup and reports what it does not enforce.
func (b *BPFBackend) Apply(cgroupID uint64, rs *policy.RuleSet) (Report, error) {
	un, err := b.engine.Apply(cgroupID, rs)
	if err != nil {
		return Report{}, err
	}
	return b.report(rs, un), nil
}

// ApplyHost installs rs for the node's own processes.
func (b *BPFBackend) ApplyHost(rs *policy.RuleSet) (Report, error) {
	un, err := b.engine.ApplyHost(rs)
	if err != nil {
		return Report{}, err
	}
	return b.report(rs, un), nil
}

// RemoveHost stops enforcing on the node's own processes.
func (b *BPFBackend) RemoveHost() error { return b.engine.RemoveHost() }

// Exempt marks a container without rules.
func (b *BPFBackend) Exempt(cgroupID uint64) error { return b.engine.Exempt(cgroupID) }

// report is what of rs this backend does not enforce: its own limits and
// what the encoder could not put in the kernel.
func (b *BPFBackend) report(rs *policy.RuleSet, un []bpf.Unenforced) Report {
	rep := Report{Unenforced: b.limits(rs)}
	for _, u := range un {
		if b.covers(u.Rule.Class) {
			rep.Unenforced = append(rep.Unenforced, Unenforced{Rule: u.Rule, Reason: u.Reason})
		}
	}
	return rep
}

var _ HostBackend = (*BPFBackend)(nil)

func (b *BPFBackend) covers(c policy.Class) bool {
	for _, k := range b.classes {
		if k == c {
			return true
		}
	}
	return false
}

// Remove releases the cgroup.
func (b *BPFBackend) Remove(cgroupID uint64) error { return b.engine.Remove(cgroupID) }

// Engine is the kernel state, for statistics and the event ring buffer.
func (b *BPFBackend) Engine() *bpf.Engine { return b.engine }

// Close releases descriptors; enforcement stays pinned.
func (b *BPFBackend) Close() error { return b.engine.Close() }
