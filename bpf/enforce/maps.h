/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel state that the loader (enforce/bpflsm) fills and the programs
 * read: which set each cgroup is in (cg_sets, host_set), the sets' rules
 * (rules, patterns), the event ring buffer, and each task's executable
 * for fromSource rules (exe_store), and the runtime's own setup tasks
 * (setup_store). The codes in these structs are the
 * enums of ../include/abi.h.
 */
#ifndef ARMOR_MAPS_H
#define ARMOR_MAPS_H

#define PATTERN_MAX 256

struct set_hdr {
	__u8 allowlist[NUM_CLASSES];
	__u8 posture[NUM_CLASSES];
	__u8 has_source[NUM_CLASSES];
	/* 1: the set has syscall rules that armor_sys enforces (sys_rules). */
	__u8 syscalls;
	__u8 pad[NUM_CLASSES - 1];
	/* Pre-filters, so that a lookup that cannot hit is not made:
	 * kinds: bit k when the class has rules of kind k;
	 * depths: bit d when a recursive directory or a pattern prefix has d
	 * slashes (bit 63: 63 or more). */
	__u32 kinds[NUM_CLASSES];
	__u64 depths[NUM_CLASSES];
};

/* What a cgroup points at: its set, and the set's header copied in, so
 * that a hook needs one lookup to know both (and a switch of set is still
 * one map update). */
struct cg_val {
	__u32 set_id;
	__u32 pad;
	struct set_hdr hdr;
};

struct rule_key {
	__u32 set_id;
	__u8 cls;
	__u8 kind;
	__u16 slot; /* patterns: the rule's place in its bucket */
	__u32 len;
	__u32 src_len; /* fromSource entries: the source's length, else 0 */
	__u64 hash;
	__u64 src_hash; /* fromSource entries: the source's hash, else 0 */
};

/* What a matcher's rules decide in one of the four cases. */
struct verdict {
	__u32 rule_id;
	__u32 spec;
	__u8 action;
	__u8 pad[3];
};

/* Indexed by (write << 1) | is_owner. */
struct rule_val {
	struct verdict v[4];
};

/* A pattern rule: its verdicts and its remainder after the bucket prefix. */
struct pat_val {
	struct verdict v[4];
	__u16 len;
	__u8 tail; /* the pattern ended in "**" */
	__u8 pad;
	char pat[PATTERN_MAX];
};

struct exe_info {
	__u64 hash;
	__u32 len;
	/* 1: exec'd in a container's cgroup; 0: on the host (under a host set),
	 * which may still be the runtime's setup task (setup.h). */
	__u32 container;
};

/* Capacities are set by the loader (MaxEntries) from its configuration. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, struct cg_val);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cg_sets SEC(".maps");

/* The host set: the rules for the node's own processes, those whose cgroup
 * (and none of its ancestors) is in cg_sets. set_id 0: no host policy.
 * Container cgroups without rules are in cg_sets with set_id 0, so that
 * the host set does not reach into them. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct cg_val);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} host_set SEC(".maps");

/* How deep the cgroup tree is searched for a container above a cgroup
 * missing from cg_sets (only when a host policy is loaded). */
#define MAX_CGROUP_DEPTH 24

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct rule_key);
	__type(value, struct rule_val);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct rule_key);
	__type(value, struct pat_val);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} patterns SEC(".maps");

/* A syscall rule with fromSource that the kernel enforces (armor_sys):
 * the system call (its number in its table), the hook it is decided at
 * (a multiplexer such as the 32-bit socketcall passes several), and the
 * source executable's identity as exe_store holds it. */
struct sys_key {
	__u32 set_id;
	__u16 nr;
	__u8 abi;  /* enum armor_sys_abi */
	__u8 hook; /* the LSM hook, as its link's cookie numbers it */
	__u32 src_len;
	__u32 pad2;
	__u64 src_hash;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sys_key);
	__type(value, struct verdict);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sys_rules SEC(".maps");

#include "../include/events.h" /* events, events_lost, wakeup_bytes */

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct exe_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} exe_store SEC(".maps");

/* The container runtime's own tasks inside a container's cgroup, before
 * they start the container's program (runc init; see setup.h): the
 * runtime's place — mount namespace and root — so that an exec elsewhere
 * (the container's program) ends the mark. */
struct setup_mark {
	__u64 root;   /* the task's root dentry, as a number */
	__u32 mnt_ns; /* its mount namespace's inode number */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct setup_mark);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} setup_store SEC(".maps");

/* How many processes have a setup mark, node-wide: while none has, the
 * hooks do not look (marks live only while a container starts or a
 * `crictl exec` sets up, so nearly always none has). A count that misses a
 * mark only refuses that setup (fails closed). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __s64);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} setup_count SEC(".maps");

#endif
