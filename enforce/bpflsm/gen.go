package bpflsm

// The Go bindings of bpf/enforce/armor.bpf.c: its maps, programs, the
// structs the encoder writes and the ABI enums of bpf/include/abi.h.
// Regenerate with `make bpf-generate` (hack/bpf-generate.sh), which pins the
// clang version; `make bpf-check` fails when the committed output differs.
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -target bpfel -type rule_key -type rule_val -type set_hdr -type cg_val -type exe_info -type pat_val -type verdict -type memo_epochs -type sip_key -type scratch_counts -type armor_class -type armor_kind -type armor_socktype -type armor_action -type armor_sys_abi -type sys_key armor ../../bpf/enforce/armor.bpf.c
