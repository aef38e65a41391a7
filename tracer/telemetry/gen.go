// Package telemetry is the kernel half of armor-tracer's telemetry: BPF
// programs on tracepoints (process exec, exit and fork; file opens; socket,
// connect, bind and accept; capability checks) that report, for the cgroups
// user space watches, events into a ring buffer; and the Go API that loads,
// pins and attaches them, sets which cgroups are watched, and decodes the
// events (telemetry.bpf.c says how the programs work).
package telemetry

// Regenerate with `make bpf-generate` (hack/bpf-generate.sh), which pins the
// clang version; `make bpf-check` fails when the committed output differs.
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -target bpfel -type tel_event telemetry telemetry.bpf.c
