package telemetry

// The Go bindings of bpf/telemetry/telemetry.bpf.c, with the telemetry's
// ABI enums of bpf/include/abi.h.
// Regenerate with `make bpf-generate` (hack/bpf-generate.sh), which pins the
// clang version; `make bpf-check` fails when the committed output differs.
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -target bpfel -type tel_event -type tel_kind -type tel_visibility telemetry ../../bpf/telemetry/telemetry.bpf.c
