// Package bpflsm is the BPF-LSM backend: process, file, network and
// capabilities rules enforced by LSM programs keyed by cgroup id.
package bpflsm

import (
	"github.com/nri-armor/nri-armor/bpf"
	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/policy"
)

// Backend enforces with the BPF-LSM programs.
type Backend struct {
	engine *bpf.Engine
}

// Open loads (or re-opens from the pins) the programs and maps.
func Open(cfg bpf.Config) (*Backend, error) {
	cg2, err := enforce.Cgroup2Mount()
	if err != nil {
		return nil, err
	}
	e, err := bpf.Open(cfg, bpf.HooksLSM, cg2)
	if err != nil {
		return nil, err
	}
	return &Backend{engine: e}, nil
}

var classes = []policy.Class{policy.ClassProcess, policy.ClassFile, policy.ClassNetwork, policy.ClassCapabilities}

// Name is "BPFLSM".
func (b *Backend) Name() string { return enforce.BackendBPFLSM }

// Classes are process, file, network and capabilities.
func (b *Backend) Classes() []policy.Class { return classes }

// Apply installs rs for the cgroup.
func (b *Backend) Apply(cgroupID uint64, rs *policy.RuleSet) (enforce.Report, error) {
	un, err := b.engine.Apply(cgroupID, rs)
	if err != nil {
		return enforce.Report{}, err
	}
	rep := enforce.Report{Unenforced: enforce.NotEnforced(rs, classes, "syscall rules are enforced by seccomp, not BPF-LSM")}
	for _, u := range un {
		rep.Unenforced = append(rep.Unenforced, enforce.Unenforced{Rule: u.Rule, Reason: u.Reason})
	}
	return rep, nil
}

// Remove releases the cgroup.
func (b *Backend) Remove(cgroupID uint64) error { return b.engine.Remove(cgroupID) }

// Engine is the kernel state, for statistics and the event ring buffer.
func (b *Backend) Engine() *bpf.Engine { return b.engine }

// Close releases descriptors; enforcement stays pinned.
func (b *Backend) Close() error { return b.engine.Close() }
