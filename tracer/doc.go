// Package tracer turns nri-armor's kernel events into alerts: it reads the
// enforcement ring buffer (Audit and Block decisions taken in the kernel)
// and the telemetry events (exec, open, socket … seen by tracepoints),
// gives each the identity of its container (pod, namespace, container,
// image, labels) and the provenance of its rule (policy, severity, tags,
// message), matches telemetry against the rules of classes that the kernel
// does not enforce for that container (naming the file an open or exec
// named, not its spelling: paths.go), and writes KubeArmor-shaped JSON
// alerts, NDJSON streams and Prometheus metrics. Memory is bounded whatever
// the event rate: every map is an LRU of configured size, and floods are
// cut by token buckets per container and rule whose drops are counted and
// summarised, never hidden (Block alerts and severe ones are never cut).
//
// This package is the pipeline only. The alert's shape and formats are
// package tracer/alert, the stream its clients read is tracer/stream, and
// armor-tracer's wiring (its configuration file, the HTTP servers, nri-armor's
// pins, the telemetry programs) is tracer/daemon.
package tracer
