// Package enforce is what the NRI plugin and the daemon know of enforcement:
// the Backend interface (and the optional interfaces a backend may add —
// host sets, kernel statistics, reaping — found by type assertion), the
// backend names that alerts' Enforcer field carries, and the node probe
// that decides which backend enforces each class here.
//
// Each backend lives in a package of its own below this one: bpflsm (the
// BPF engine and the BPF-LSM backend), cgroupnet (cgroup-BPF network rules
// on nodes without BPF-LSM); events holds the kernel's enforcement event as
// armor-tracer reads it.
package enforce
