// Package bpflsm is the BPF engine and the BPF-LSM backend. The engine
// turns a compiled policy.RuleSet into entries of the kernel maps (the
// encoder, with the glob model the kernel matcher follows), loads and pins
// the programs of bpf/enforce and their maps, points each container's
// cgroup at its rule set (shared by digest), and recovers all of it from
// the pins after a restart, so that enforcement never lapses. The Go
// bindings (armor_bpfel.go, .o) are bpf2go's, committed so that `go build`
// needs no clang.
//
// Backend is the enforce.Backend on the engine; Open gives the BPF-LSM one
// (process, file, network and capability rules), and enforce/cgroupnet
// opens the same engine with the cgroup-BPF programs instead.
package bpflsm
