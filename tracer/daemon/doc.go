// Package daemon wires armor-tracer together, as package daemon at the
// repository's root wires nri-armor: its configuration (every key a flag),
// the telemetry programs loaded when asked for, nri-armor's pinned ring
// buffer (reopened whenever nri-armor pins it anew) and set names, the state
// directory followed, the sinks, and the HTTP servers of /metrics, /readyz
// and the alert stream: two listeners, the stream's on loopback or a unix
// socket unless a bearer token guards it (docs/security.md). cmd/armor-tracer only parses flags, handles signals
// and calls Run.
//
// It is its own package so that the pipeline (package tracer) is built from
// values, not from a configuration file, servers and pins: its tests and
// benchmarks run it without any of them, and what only reads alerts
// (package tracer/alert) depends on neither.
package daemon
