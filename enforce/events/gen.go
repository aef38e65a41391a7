package events

// The Go type of the enforcement event and the ABI enums it carries, from
// bpf/include/abi.h (through bpf/enforce/event.bpf.c, which has no
// programs). Regenerate with `make bpf-generate` (hack/bpf-generate.sh),
// which pins the clang version; `make bpf-check` fails when the committed
// output differs.
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -target bpfel -type event -type armor_class -type armor_action -type armor_origin -type armor_sys_abi events ../../bpf/enforce/event.bpf.c
