// Package bpflsm is the BPF-LSM backend: process, file, network and
// capabilities rules enforced by LSM programs keyed by cgroup id.
package bpflsm

import (
	"github.com/nri-armor/nri-armor/bpf"
	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/policy"
)

var classes = []policy.Class{policy.ClassProcess, policy.ClassFile, policy.ClassNetwork, policy.ClassCapabilities}

// Open loads (or re-opens from the pins) the LSM programs and the maps.
func Open(cfg bpf.Config) (*enforce.BPFBackend, error) {
	return enforce.OpenBPF(enforce.BackendBPFLSM, classes, bpf.HooksLSM, cfg, func(rs *policy.RuleSet) []enforce.Unenforced {
		return enforce.NotEnforced(rs, classes, "syscall rules are enforced by seccomp, not BPF-LSM")
	})
}
