// Package plugin is the NRI glue of nri-armor: it follows the runtime's pod
// and container lifecycle over NRI, resolves each container's policies,
// compiles them, and has an enforce.Backend install the compiled set for the
// container's cgroup v2 id before the container's first instruction runs.
//
// The lifecycle, as containerd 2.4 delivers it:
//
//   - RunPodSandbox: the pod is recorded (namespace, name, uid, labels,
//     annotations).
//   - CreateContainer: the container's policies are resolved and compiled.
//     An unknown policy name or a bad nri-armor annotation is returned as an
//     error, so the runtime refuses the container. A non-empty set is named
//     on the container by the OCI annotation nri-armor.dev/policy-set (its
//     digest). A container whose set is empty (no policy, or mode disabled)
//     is remembered as such and costs no kernel state.
//   - StartContainer: the container's init process exists (pid > 0) and so
//     does its cgroup, and the runtime waits for the answer. The cgroup id
//     is resolved from the pid (for every container not in mode disabled,
//     so that a policy added later reaches it) and the set is applied; an
//     error refuses the start (fail closed) when the container is in
//     enforce mode and has a set.
//   - StopContainer: nothing. Stopping only signals the container; its
//     processes keep running through the grace period, and they must stay
//     confined while they do. The cgroup (and so its id) stays until the
//     container is removed, so there is no stale id to worry about either.
//   - RemoveContainer, RemovePodSandbox: the backend stops enforcing on the
//     cgroup, the container's state record is deleted and the container is
//     forgotten.
//   - Synchronize (on every connection, e.g. after nri-armor restarts): the
//     state is rebuilt from the runtime's list of pods and containers, the
//     set of every live container is applied again (idempotent), and the
//     published state records are rewritten.
//   - UpdateContainer changes nothing of ours and is not subscribed to.
//
// With Config.State set, every started container that has a rule set or
// asks for visibility is published for armor-tracer (see publish.go).
//
// The plugin must see the host's /proc and the host's cgroup2 mount in the
// host's cgroup namespace (a privileged DaemonSet with hostPID): cgroup
// paths in /proc/<pid>/cgroup are relative to the reader's namespace.
package plugin
