// Package events is the kernel's enforcement event as its readers see it:
// the record the BPF programs write for each Audit and Block decision (its
// layout and codes generated from bpf/include/abi.h), its decoding, and the
// pins a reader opens without loading anything — the event ring buffer, the
// count of events it had no room for, and the names of the kernel's rule
// sets. armor-tracer imports this, never the engine that writes them.
package events
