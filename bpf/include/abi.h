/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ABI between nri-armor's BPF programs and the Go that loads them and
 * reads their events: the codes written into the rule maps by the encoder
 * (enforce/bpflsm), the enforcement event read by armor-tracer
 * (enforce/events), and the telemetry's event kinds and visibility classes
 * (tracer/telemetry).
 *
 * This header is the single definition of these numbers: bpf2go's -type
 * generates the Go constants from the enums below (the Go packages name
 * them, never restate their values).
 */
#ifndef ARMOR_ABI_H
#define ARMOR_ABI_H

#define PATH_MAX 4096
#define PATH_MASK (PATH_MAX - 1)

/* A rule's class: the index of a class in a set's header arrays. */
enum armor_class {
	CLASS_PROCESS = 0,
	CLASS_FILE = 1,
	CLASS_NETWORK = 2,
	CLASS_CAPS = 3,
	NUM_CLASSES = 4,
	/* Not in a set's header arrays: syscall rules enforced in the kernel
	 * (armor_sys) come only in events (event.arg: abi << 16 | number). */
	CLASS_SYSCALLS = 4,
};

/* The system call table a syscall rule entry is for (sys_key.abi): on
 * x86_64 a 64-bit process may also enter the 32-bit table (int 0x80). */
enum armor_sys_abi {
	SYS_ABI_64 = 0,
	SYS_ABI_IA32 = 1,
};

/* What a rules-map key matches (rule_key.kind). */
enum armor_kind {
	KIND_PATH = 1,       /* a whole path */
	KIND_EXECNAME = 2,   /* an executable's base name */
	KIND_DIR_REC = 3,    /* a directory and everything below it */
	KIND_DIR_DIRECT = 4, /* a directory's direct children */
	KIND_PROTO = 5,      /* an IP protocol number */
	KIND_SOCKTYPE = 6,   /* a socket type, or SOCKTYPE_PACKET */
	KIND_ALL = 7,        /* every socket */
	KIND_CAP = 8,        /* a capability number */
	KIND_PATTERN = 9,    /* a glob, tried in its directory prefix's bucket */
};

/* KIND_SOCKTYPE's key for AF_PACKET sockets, beyond every SOCK_* type. */
enum armor_socktype {
	SOCKTYPE_PACKET = 0x100,
};

/* A verdict's action, ordered: a higher action beats a lower one. */
enum armor_action {
	ACT_NONE = 0, /* no rule matched */
	ACT_ALLOW = 1,
	ACT_AUDIT = 2,
	ACT_BLOCK = 3,
};

/* What decided an enforcement event (event.posture). */
enum armor_origin {
	ORIGIN_RULE = 0,     /* the rule event.rule_id */
	ORIGIN_POSTURE = 1,  /* the class's default posture (allow-list mode) */
	ORIGIN_BUILTIN = 2,  /* a built-in protection (writing cgroupfs) */
	ORIGIN_UNNAMED = 3,  /* fail closed: the kernel could not name the file (past PATH_MAX) */
	ORIGIN_NO_MEMORY = 4, /* fail closed: no memory to decide in (bpf/enforce/match.h, struct scratch) */
};

/* One Audit or Block decision, as the enforcement programs write it into
 * their ring buffer: this header, then res_len bytes of res. */
struct event {
	__u64 cgroup_id;
	__u64 ts_ns;
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u32 rule_id;
	__u32 set_id;
	__s32 retval;
	__u32 arg; /* network: family<<16|type<<8|protocol; capabilities: cap; syscalls: abi<<16|number */
	__u8 cls;     /* enum armor_class */
	__u8 action;  /* enum armor_action */
	__u8 posture; /* enum armor_origin */
	__u8 write;
	__u16 res_len;
	__u16 pad;
	char comm[16];
	char res[PATH_MAX];
};

/* What a telemetry event observed (tel_event.kind). */
enum tel_kind {
	K_EXEC = 1,    /* sched_process_exec: a successful execve */
	K_EXIT = 2,    /* sched_process_exit */
	K_FORK = 3,    /* sched_process_fork */
	K_OPEN = 4,    /* open, openat, openat2, with the exit status */
	K_SOCKET = 5,  /* socket(2) */
	K_CONNECT = 6, /* connect(2) */
	K_BIND = 7,    /* bind(2) */
	K_ACCEPT = 8,  /* accept(2), accept4(2) */
	K_CAPABLE = 9, /* capability/cap_capable */
};

/* The classes of telemetry a cgroup is watched for (bits of the visible map's value). */
enum tel_visibility {
	V_PROCESS = 1, /* exec, exit, fork */
	V_FILE = 2,    /* open */
	V_NETWORK = 4, /* socket, connect, bind, accept */
	V_CAPS = 8,    /* capability checks */
};

/* BTF describes only the types that something in an object uses, and
 * bpf2go generates Go only from BTF: this read-only global, which no
 * program reads, puts every enum above in each object that includes this
 * header. */
const volatile struct abi_enums {
	enum armor_class cls;
	enum armor_kind kind;
	enum armor_socktype socktype;
	enum armor_sys_abi sys_abi;
	enum armor_action action;
	enum armor_origin origin;
	enum tel_kind tel_kind;
	enum tel_visibility tel_visibility;
} abi_enums;

#endif
