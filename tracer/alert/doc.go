// Package alert is armor-tracer's alert model and its formats: the Alert
// record with KubeArmor's keys and its hand-written JSON encoder, Falco's
// JSON output, the values of its Type, Operation and Result fields, and the
// filter and path of the alert stream.
//
// It is its own package so that what reads alerts (armorctl logs, a test
// decoding a stream) depends on the alert's shape only: it imports neither
// the pipeline (package tracer), nor Prometheus, fsnotify, cilium/ebpf or
// logrus.
package alert
