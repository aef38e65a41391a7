// Command nri-armor-hook is the start gate's OCI createRuntime hook (package
// ocihook): the runtime runs it while starting a container that has rules,
// with the OCI state on stdin; it has nri-armor enforce the container now,
// and fails (failing the start) when nri-armor does not answer.
//
//	nri-armor-hook -socket /run/nri-armor/gate.sock [-timeout 10s]
//
// With -guard it is the runtime's hook for every container (the base spec
// config/containerd-base-spec.json): nri-armor decides when it answers;
// when it does not, only containers of the namespaces the node trusts
// start (the trust file nri-armor writes beside the hook, and -trusted).
// -runtime names the runtime that runs it (containerd or cri-o), whose
// annotations alone then name a container's pod:
//
//	nri-armor-hook -guard -socket /run/nri-armor/gate.sock \
//	    -trust /opt/nri-armor/bin/trusted-namespaces.json -trusted nri-armor \
//	    -runtime containerd
//
// A binary of its own, not a subcommand of nri-armor: it runs on every
// container's start, and a small binary starts in a fraction of the time.
package main
