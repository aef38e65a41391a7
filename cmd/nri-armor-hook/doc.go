// Command nri-armor-hook is the start gate's OCI createRuntime hook (package
// ocihook): the runtime runs it while starting a container that has rules,
// with the OCI state on stdin; it has nri-armor enforce the container now,
// and fails (failing the start) when nri-armor does not answer.
//
//	nri-armor-hook -socket /run/nri-armor/ocihook.sock [-timeout 10s]
//
// A binary of its own, not a subcommand of nri-armor: it runs on every
// protected container's start, and a small binary starts in a fraction of
// the time.
package main
