// Package telemetry is the user-space half of armor-tracer's telemetry:
// it loads, pins and attaches the BPF programs of bpf/telemetry (process
// exec, exit and fork; file opens; socket, connect, bind and accept;
// capability checks, on tracepoints), sets which cgroups are watched, and
// decodes the events they write into their ring buffer
// (bpf/telemetry/telemetry.bpf.c says how the programs work).
package telemetry
