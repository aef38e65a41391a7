// Package bpf holds nri-armor's BPF programs (armor.bpf.c), their generated
// Go bindings and objects (committed: `go build` needs no clang), the encoder
// that turns a compiled policy.RuleSet into map entries, and the engine that
// loads, pins and updates the kernel state.
package bpf

// Regenerate with `make bpf-generate` (hack/bpf-generate.sh), which pins the
// clang version; `make bpf-check` fails when the committed output differs.
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -target bpfel -type event -type rule_key -type rule_val -type set_hdr -type cg_val -type exe_info -type pat_val -type verdict -type memo_epochs armor armor.bpf.c
