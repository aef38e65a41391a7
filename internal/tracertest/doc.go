// Package tracertest holds what the tests of armor-tracer's pipeline
// (package tracer) and of its wiring (tracer/daemon) share: the policy
// their alerts come from, the container it is published for, and the probe
// process that trips it in a real cgroup. It imports neither package, so
// that the in-package tests of both can use it.
package tracertest
