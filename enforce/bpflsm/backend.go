package bpflsm

import (
	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/policy"
)

// classes are what the LSM programs enforce; syscalls are seccomp's.
var classes = []policy.Class{policy.ClassProcess, policy.ClassFile, policy.ClassNetwork, policy.ClassCapabilities}

// Backend is an enforce.Backend on the engine. The BPF-LSM backend and the
// cgroup-BPF one (enforce/cgroupnet) differ only in the programs they
// attach and in what they cannot enforce.
type Backend struct {
	name    string
	classes []policy.Class
	engine  *Engine
	// limits lists what the attached programs cannot enforce of a set, on
	// top of what the encoder reports.
	limits func(rs *policy.RuleSet) []enforce.Unenforced
}

// Open loads (or re-opens from the pins) the LSM programs and the maps:
// the BPF-LSM backend.
func Open(cfg Config) (*Backend, error) {
	return OpenBackend(enforce.BackendBPFLSM, classes, HooksLSM, cfg, lsmLimits)
}

// lsmLimits: the BPF-LSM backend enforces every class but syscalls, and
// of those the rules with fromSource that a hook can decide (syscalls.go);
// seccomp enforces the rest where it can.
func lsmLimits(rs *policy.RuleSet) []enforce.Unenforced {
	return syscallLimits(rs)
}

// OpenBackend loads (or re-opens from the pins) the engine with the programs
// of hooks attached, as the backend name enforcing classes; limits says
// what of a set those programs cannot enforce.
func OpenBackend(name string, classes []policy.Class, hooks Hooks, cfg Config, limits func(*policy.RuleSet) []enforce.Unenforced) (*Backend, error) {
	cg2, err := cgroups.Mount()
	if err != nil {
		return nil, err
	}
	e, err := OpenEngine(cfg, hooks, cg2)
	if err != nil {
		return nil, err
	}
	return &Backend{name: name, classes: classes, engine: e, limits: limits}, nil
}

// Plan is what the BPF-LSM backend would not enforce of rs, and why,
// computed without a kernel (armorctl explain): the rules beyond its
// programs and those the encoder cannot put in the maps.
func Plan(rs *policy.RuleSet) (enforce.Report, error) {
	enc, err := Encode(rs, 1, PathKey{}) // its entries are not written: any key will do
	if err != nil {
		return enforce.Report{}, err
	}
	b := &Backend{classes: classes, limits: lsmLimits}
	return b.report(rs, enc.Unenforced), nil
}

// Name is the Enforcer name alerts carry.
func (b *Backend) Name() string { return b.name }

// Classes are the classes this backend enforces.
func (b *Backend) Classes() []policy.Class { return b.classes }

// Apply installs rs for the cgroup and reports what it does not enforce.
func (b *Backend) Apply(cgroupID uint64, rs *policy.RuleSet) (enforce.Report, error) {
	un, err := b.engine.Apply(cgroupID, rs)
	if err != nil {
		return enforce.Report{}, err
	}
	return b.report(rs, un), nil
}

// ApplyHost installs rs for the node's own processes.
func (b *Backend) ApplyHost(rs *policy.RuleSet) (enforce.Report, error) {
	un, err := b.engine.ApplyHost(rs)
	if err != nil {
		return enforce.Report{}, err
	}
	return b.report(rs, un), nil
}

// RemoveHost stops enforcing on the node's own processes.
func (b *Backend) RemoveHost() error { return b.engine.RemoveHost() }

// Exempt marks a container without rules.
func (b *Backend) Exempt(cgroupID uint64) error { return b.engine.Exempt(cgroupID) }

// report is what of rs this backend does not enforce: its own limits and
// what the encoder could not put in the kernel.
func (b *Backend) report(rs *policy.RuleSet, un []enforce.Unenforced) enforce.Report {
	rep := enforce.Report{Unenforced: b.limits(rs)}
	for _, u := range un {
		if b.covers(u.Rule.Class) {
			rep.Unenforced = append(rep.Unenforced, u)
		}
	}
	return rep
}

func (b *Backend) covers(c policy.Class) bool {
	for _, k := range b.classes {
		if k == c {
			return true
		}
	}
	return false
}

// Remove releases the cgroup.
func (b *Backend) Remove(cgroupID uint64) error { return b.engine.Remove(cgroupID) }

// KernelStats is what the kernel maps hold now (enforce.KernelStater).
func (b *Backend) KernelStats() enforce.KernelStats {
	st := b.engine.Stats()
	return enforce.KernelStats{
		Sets: st.Sets, RuleEntries: st.RuleEntries,
		MaxContainers: st.Capacity.MaxContainers, MaxRuleEntries: st.Capacity.MaxRuleEntries,
		MapBytes:         st.MapBytes,
		ScratchContended: st.Scratch.Contended, ScratchSpilled: st.Scratch.Spilled, ScratchRefused: st.Scratch.Refused,
	}
}

// Reap frees the lingering sets whose time has passed (enforce.Reaper).
func (b *Backend) Reap() { b.engine.Reap() }

// Engine is the kernel state, for tests and diagnostics.
func (b *Backend) Engine() *Engine { return b.engine }

// Close releases descriptors; enforcement stays pinned.
func (b *Backend) Close() error { return b.engine.Close() }

var (
	_ enforce.HostBackend  = (*Backend)(nil)
	_ enforce.KernelStater = (*Backend)(nil)
	_ enforce.Reaper       = (*Backend)(nil)
)
