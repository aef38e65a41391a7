// Package daemon wires nri-armor's daemon together: its configuration, the
// node probe choosing the backend, the policies, the NRI plugin connected to
// the runtime (reconnecting when the runtime restarts), and the metrics and
// readiness endpoint. cmd/nri-armor only parses flags and calls Run.
package daemon
