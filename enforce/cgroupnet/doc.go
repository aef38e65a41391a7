// Package cgroupnet is the network backend for nodes without BPF-LSM:
// cgroup-BPF programs on socket creation and connect, keyed by cgroup id.
// They are part of the same BPF object and engine as BPF-LSM's programs
// (enforce/bpflsm); only the programs attached and the limits differ.
package cgroupnet
