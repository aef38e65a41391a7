// Package ocihook is nri-armor's start gate: an OCI createRuntime hook that
// closes the last fail-open window of NRI, a container created while
// nri-armor runs and started after it died. NRI skips a plugin whose
// connection is gone, so its StartContainer is skipped and the container
// would start without its rules.
//
// The three parts live here together:
//   - Spec: what the NRI plugin adds, at CreateContainer, to every
//     container that has rules — the hook, nri-armor-hook, with the
//     daemon's socket;
//   - Hook: the hook itself (cmd/nri-armor-hook). The runtime runs it while
//     starting the container (runc create: the container's init process
//     and cgroup exist, its first instruction has not run), before NRI's
//     StartContainer. It reads the OCI state from stdin and asks the
//     running daemon, over a unix socket, to enforce the container now. If
//     the daemon does not answer, or answers with an error, the hook fails,
//     and so does the start: the container never runs without its rules;
//   - Serve: the daemon's side of that socket, which installs the set
//     exactly as StartContainer would (which then finds it installed), and
//     Install, which puts the hook binary where the runtime runs it;
//   - Guard (guard.go): the same binary with -guard, which the runtime runs
//     for every container (its base OCI spec): it closes the pods that
//     tolerate nri-armor's absence (nri-armor.dev/tolerate-missing)
//     outside the namespaces the node trusts, which the trust file the
//     daemon writes (WriteTrust) names while it is down.
//
// Once installed, the rules are pinned in the kernel and survive the
// daemon. The protocol is one JSON request and one JSON reply per
// connection.
package ocihook
