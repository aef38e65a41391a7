// Package cgroups finds cgroup v2 facts: where the hierarchy is mounted and
// the id (the directory's inode) of a cgroup, which is what the BPF
// programs see as bpf_get_current_cgroup_id().
package cgroups
