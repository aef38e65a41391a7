// Package seccomp enforces syscall rules with seccomp filters, through the
// container runtime: the plugin asks for a filter at CreateContainer (an
// NRI adjustment of the container's OCI spec, SetLinuxSeccompPolicy) and
// runc installs it in the container's process before its first
// instruction. That is why this is not an enforce.Backend: a Backend is
// keyed by cgroup and applied at StartContainer, when the process exists;
// a seccomp filter can only be installed by the process on itself, so it
// must be in the spec runc reads, and it cannot be swapped later (a
// policy edit reaches a running container's syscall rules only when the
// container is created again).
//
// Build merges a rule set's syscall rules into the policy the container
// already has (the runtime default stays in force; Unconfined gets a
// default-allow policy); Support says, from the runtime's name, version
// and NRI version, whether and how a runtime can take it (Route), and
// never lets an ErrnoRet reach a runtime whose NRI crashes on one.
// docs/seccomp.md has the mapping and the table.
package seccomp
