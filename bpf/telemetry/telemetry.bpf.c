//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * armor-tracer's telemetry programs: process exec, exit and fork, file opens,
 * socket / connect / bind / accept, and capability checks, for the cgroups
 * that user space asked to watch (tracer/telemetry, Watch).
 *
 * Only tracepoints: this must run on nodes without BPF-LSM or trampolines
 * (see ../shared/design/ENVIRONMENT.md). Tracepoints fire for every process
 * on the node, so every program starts with the cheapest possible filter:
 *   - the sched/capability programs: the current cgroup v2 id
 *     and one hash lookup in `visible` (cgroup id -> classes), then return;
 *   - the one syscall program (all the syscalls' sys_exit tracepoints):
 *     the syscall number, then the same cgroup lookup;
 *   - fork: the child's cgroup (clone3 CLONE_INTO_CGROUP places a child
 *     elsewhere than its parent), read through the task.
 *
 * Each syscall is seen at its exit only, through its own
 * syscalls/sys_exit_* tracepoint: the arguments are still in the caller's
 * saved registers (bpf_task_pt_regs), and the path or address they point
 * to is resident by then (the kernel has just read it). A syscall that
 * seccomp refused still passes its exit tracepoint, so it is reported too,
 * with its error (an enter tracepoint never saw it: seccomp runs first).
 * One tracepoint per syscall, not an enter and an exit paired per thread
 * through task storage: each syscalls/ tracepoint first formats its record
 * into a perf buffer, which costs more than the programs
 * (BenchmarkOverhead). Not raw_syscalls' sys_enter / sys_exit raw
 * tracepoints either: they skip that formatting, but their programs run at
 * every syscall of every process, which costs more than the syscall slow
 * path that any syscall tracepoint turns on for every task
 * (BenchmarkOtherSyscalls). docs/benchmarks.md has the figures. A
 * process's exit is reported once, by the first of its threads to find the
 * process gone (`exited`).
 *
 * Events go to the `events` ring buffer without a wake-up; one is forced
 * each time the pending data crosses a multiple of wakeup_bytes, so the
 * reader wakes per batch (waking per event costs an interrupt per event:
 * docs/benchmarks.md). The reader also polls with a deadline, so a lone event waits at
 * most that long. An event that finds no room is counted in `lost`.
 */
#include "../include/armor_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "../include/abi.h"
#include "../include/verifier.h"

char LICENSE[] SEC("license") = "GPL";

#define UNIX_PATH_MAX 108
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define AF_UNIX 1
#define SOCK_TYPE_MASK 0xf
#define AT_FDCWD -100
/* creat(path, mode) is open(path, O_CREAT | O_WRONLY | O_TRUNC, mode). */
#define CREAT_FLAGS (0100 | 01 | 01000)

/* The kernel fields read here that bpf/include does not declare. The
 * ___tel suffix is a CO-RE flavour: relocations match the kernel's type
 * without the suffix, and these can never clash with bpf/include's. */
struct kernfs_node___tel {
	__u64 id;
} __attribute__((preserve_access_index));

struct cgroup___tel {
	struct kernfs_node___tel *kn;
} __attribute__((preserve_access_index));

struct css_set___tel {
	struct cgroup___tel *dfl_cgrp;
} __attribute__((preserve_access_index));

struct fdtable___tel {
	unsigned int max_fds;
	struct file___tel **fd;
} __attribute__((preserve_access_index));

struct files_struct___tel {
	struct fdtable___tel *fdt;
} __attribute__((preserve_access_index));

struct file___tel {
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

typedef struct {
	int counter;
} atomic_t___tel;

struct signal_struct___tel {
	atomic_t___tel live;
} __attribute__((preserve_access_index));

struct task_struct___tel {
	int pid;
	int tgid;
	int exit_code;
	__u64 start_time;
	char comm[16];
	struct task_struct___tel *group_leader;
	struct task_struct *real_parent;
	struct css_set___tel *cgroups;
	struct files_struct___tel *files;
	struct signal_struct___tel *signal;
} __attribute__((preserve_access_index));

/* Tracepoint contexts. Syscall exit records have a fixed shape (the
 * common header, the syscall number, the return value); the
 * cap_capable layout is checked against tracefs by the loader before the
 * program is attached. */
/* x86-64's saved user registers: a syscall's first four arguments are
 * di, si, dx and r10 (the objects are built for x86 only). */
struct pt_regs___tel {
	unsigned long r10;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
} __attribute__((preserve_access_index));

struct sys_exit_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

struct sched_exec_ctx {
	__u64 common;
	__u32 filename_loc; /* __data_loc: offset | length << 16 */
	__s32 pid;
	__s32 old_pid;
};

struct cap_capable_ctx {
	__u64 common;
	void *cred;
	void *target_ns;
	void *capable_ns;
	__s32 cap;
	__s32 ret;
};

struct raw_tp_args {
	__u64 args[2];
};

struct open_how___tel {
	__u64 flags;
	__u64 mode;
	__u64 resolve;
};

/* The system call behind an open event (tel_event.call). 0 is what
 * programs before this field wrote: an unknown call. */
enum tel_open_call {
	OC_OPEN = 1,
	OC_OPENAT = 2,
	OC_OPENAT2 = 3,
	OC_CREAT = 4,
};

/* bpf2go generates Go only from what BTF describes: this read-only global,
 * which no program reads, puts the enum in the object (as abi.h does for
 * its own). */
const volatile enum tel_open_call tel_open_calls;

/* One event as user space reads it: the header, then path_len bytes of
 * path (exec, open, or a unix socket's address). Read by
 * tracer/telemetry through the Go type bpf2go generates from it. */
struct tel_event {
	__u64 cgroup_id;
	__u64 ts_ns;
	__s64 ret;
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u32 flags;
	__u32 family;
	__u32 sock_type;
	__u32 protocol;
	__s32 cap;
	__u16 addr_family; /* the sockaddr's family: AF_INET, AF_INET6, AF_UNIX */
	__u16 port;        /* network byte order, as in the sockaddr */
	__u8 addr[16];
	__u16 path_len;
	__u8 kind;
	__u8 call;   /* open: enum tel_open_call */
	__s32 dirfd; /* open: the directory a relative path starts from (AT_FDCWD: the cwd) */
	char comm[16];
	char path[PATH_MAX];
};

#define HDR_SIZE __builtin_offsetof(struct tel_event, path)

/* Capacities are set by the loader from its configuration. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);   /* cgroup v2 id */
	__type(value, __u32); /* V_* classes */
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} visible SEC(".maps");

#include "../include/events.h" /* events, events_lost, wakeup_bytes */

/* Processes whose exit was reported, by tgid and start time (a tgid can be
 * reused, a start time makes it unique). The entries matter only while a
 * process's threads exit; the least recently used go. */
struct exit_key {
	__u32 tgid;
	__u32 pad;
	__u64 start;
};

#define MAP_TYPE_LRU_HASH 9 /* BPF_MAP_TYPE_LRU_HASH: not in bpf/include */

struct {
	__uint(type, MAP_TYPE_LRU_HASH);
	__type(key, struct exit_key);
	__type(value, __u8);
	__uint(max_entries, 4096);
} exited SEC(".maps");

/* Exec's and the syscalls' events are built here: a path can be PATH_MAX
 * long. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct tel_event);
	__uint(max_entries, 1);
} scratch SEC(".maps");

/* The classes the current cgroup is watched for (0: none). */
static __always_inline __u32 visibility(__u64 *cgid)
{
	*cgid = bpf_get_current_cgroup_id();
	__u32 *v = bpf_map_lookup_elem(&visible, cgid);
	return v ? *v : 0;
}

/* fill clears e's header and sets what every event has. */
static __always_inline void fill(struct tel_event *e, __u8 kind, __u64 cgid)
{
	__builtin_memset(e, 0, HDR_SIZE);
	/* A BTF pointer: plain loads, checked by the verifier, instead of a
	 * helper call per field. */
	struct task_struct___tel *t = (void *)bpf_get_current_task_btf();
	e->kind = kind;
	e->cgroup_id = cgid;
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->pid = t->pid;
	e->tgid = t->tgid;
	e->ppid = t->real_parent->tgid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	__builtin_memcpy(e->comm, t->comm, sizeof(e->comm));
}

/* emit copies e's header and path into the ring buffer. */
static __always_inline void emit(struct tel_event *e)
{
	__u64 size = HDR_SIZE + bounded(e->path_len, PATH_MASK);
	events_output(e, size);
}

/* emit_fixed submits an event without path, written in place. */
#define EMIT_FIXED(kind, cgid, body)                                              \
	({                                                                        \
		__u64 __f = events_wakeup(HDR_SIZE);                                     \
		struct tel_event *e = bpf_ringbuf_reserve(&events, HDR_SIZE, 0);  \
		if (!e) {                                                         \
			events_count_lost();                                      \
		} else {                                                          \
			fill(e, kind, cgid);                                      \
			body;                                                     \
			bpf_ringbuf_submit(e, __f);                               \
		}                                                                 \
	})

SEC("tracepoint/sched/sched_process_exec")
int tel_exec(struct sched_exec_ctx *ctx)
{
	__u64 cgid;
	if (!(visibility(&cgid) & V_PROCESS))
		return 0;
	__u32 k = 0;
	struct tel_event *e = bpf_map_lookup_elem(&scratch, &k);
	if (!e)
		return 0;
	fill(e, K_EXEC, cgid);
	/* The filename as passed to execve (bprm->filename): tracer/paths.go resolves it. */
	long n = bpf_probe_read_kernel_str(e->path, PATH_MAX, (void *)ctx + (ctx->filename_loc & 0xffff));
	e->path_len = n > 1 ? n - 1 : 0;
	emit(e);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int tel_exit(void *ctx)
{
	__u64 cgid;
	if (!(visibility(&cgid) & V_PROCESS))
		return 0;
	/* The tracepoint fires for every thread; report the process once, when
	 * its last thread goes (the group's live count already dropped). Two
	 * threads exiting at once can both see the count at 0 (older kernels'
	 * tracepoint has no group_dead field), so the first one to claim the
	 * process in `exited` reports it. */
	struct task_struct___tel *t = (void *)bpf_get_current_task_btf();
	if (t->signal->live.counter != 0)
		return 0;
	struct exit_key k = {.tgid = t->tgid, .start = t->group_leader->start_time};
	__u8 one = 1;
	if (bpf_map_update_elem(&exited, &k, &one, BPF_NOEXIST))
		return 0;
	/* A wait(2) status: the exit code, or the terminating signal. */
	int code = t->exit_code;
	EMIT_FIXED(K_EXIT, cgid, {
		e->ret = code & 0x7f ? 128 + (code & 0x7f) : (code >> 8) & 0xff;
	});
	return 0;
}

/* A raw tracepoint: the classic one does not say whether the child is a
 * process or a thread, nor which cgroup the child is in. */
SEC("raw_tracepoint/sched_process_fork")
int tel_fork(struct raw_tp_args *ctx)
{
	struct task_struct___tel *parent = (void *)ctx->args[0];
	struct task_struct___tel *child = (void *)ctx->args[1];
	__u64 cgid = BPF_CORE_READ(child, cgroups, dfl_cgrp, kn, id);
	__u32 *v = bpf_map_lookup_elem(&visible, &cgid);
	if (!v || !(*v & V_PROCESS))
		return 0;
	int pid = BPF_CORE_READ(child, pid);
	if (pid != BPF_CORE_READ(child, tgid))
		return 0; /* a new thread, not a new process */
	int ppid = BPF_CORE_READ(parent, tgid);
	EMIT_FIXED(K_FORK, cgid, {
		/* The event is the child's: its ids, its parent's tgid. */
		e->pid = pid;
		e->tgid = pid;
		e->ppid = ppid;
	});
	return 0;
}

/* x86-64 syscall numbers. */
#define NR_open 2
#define NR_creat 85
#define NR_socket 41
#define NR_connect 42
#define NR_accept 43
#define NR_bind 49
#define NR_openat 257
#define NR_accept4 288
#define NR_openat2 437

static __always_inline void read_path(struct tel_event *e, const char *upath)
{
	long n = bpf_probe_read_user_str(e->path, PATH_MAX, upath);
	e->path_len = n > 1 ? n - 1 : 0;
}

/* open_event fills an open's call, the directory its path starts from,
 * its flags and its path. */
static __always_inline void open_event(struct tel_event *e, __u8 call, int dirfd, __u32 flags, const char *upath)
{
	e->call = call;
	e->dirfd = dirfd;
	e->flags = flags;
	read_path(e, upath);
}

/* sock_info sets the family, type and protocol of the socket at fd. */
static __always_inline void sock_info(struct tel_event *e, int fd)
{
	struct task_struct___tel *t = (void *)bpf_get_current_task();
	struct fdtable___tel *fdt = BPF_CORE_READ(t, files, fdt);
	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return;
	struct file___tel **fds = BPF_CORE_READ(fdt, fd);
	struct file___tel *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return;
	struct socket *s = BPF_CORE_READ(f, private_data);
	e->family = BPF_CORE_READ(s, sk, __sk_common.skc_family);
	e->sock_type = BPF_CORE_READ(s, type);
	e->protocol = BPF_CORE_READ(s, sk, sk_protocol);
}

/* read_addr copies the sockaddr the caller passed (len bytes at u): an
 * IPv4 or IPv6 address and port, or a unix socket's path. It returns
 * whether the caller's memory could be read. */
static __always_inline bool read_addr(struct tel_event *e, const void *u, __u64 len)
{
	__u16 fam = 0;
	if (!u || len < 2)
		return true;
	if (bpf_probe_read_user(&fam, sizeof(fam), u))
		return false;
	e->addr_family = fam;
	if (fam == AF_INET && len >= 8) {
		bpf_probe_read_user(&e->port, 2, u + 2);
		bpf_probe_read_user(e->addr, 4, u + 4);
	} else if (fam == AF_INET6 && len >= 24) {
		bpf_probe_read_user(&e->port, 2, u + 2);
		bpf_probe_read_user(e->addr, 16, u + 8);
	} else if (fam == AF_UNIX) {
		__u32 n = len - 2;
		if (n > UNIX_PATH_MAX)
			n = UNIX_PATH_MAX;
		n = bounded(n, 127);
		if (!bpf_probe_read_user(e->path, n, u + 2))
			e->path_len = n;
	}
	return true;
}

/* One program for every sys_exit tracepoint the loader attaches: the exit
 * records all have the same shape, and the syscall's arguments are still
 * in the caller's registers. */
SEC("tracepoint/syscalls/sys_exit")
int tel_sys_exit(struct sys_exit_ctx *ctx)
{
	int nr = ctx->nr;
	__u32 cls = V_NETWORK;
	__u8 kind;
	switch (nr) {
	case NR_openat:
	case NR_open:
	case NR_openat2:
	case NR_creat:
		kind = K_OPEN;
		cls = V_FILE;
		break;
	case NR_socket:
		kind = K_SOCKET;
		break;
	case NR_connect:
		kind = K_CONNECT;
		break;
	case NR_bind:
		kind = K_BIND;
		break;
	case NR_accept:
	case NR_accept4:
		kind = K_ACCEPT;
		break;
	default:
		return 0;
	}
	__u64 cgid;
	if (!(visibility(&cgid) & cls))
		return 0;
	__u32 k = 0;
	struct tel_event *e = bpf_map_lookup_elem(&scratch, &k);
	if (!e)
		return 0;
	fill(e, kind, cgid);
	struct pt_regs___tel *regs = (void *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__u64 a0 = regs->di, a1 = regs->si, a2 = regs->dx, a3 = regs->r10;
	long ret = ctx->ret;
	e->ret = ret;
	switch (nr) {
	case NR_openat:
		open_event(e, OC_OPENAT, a0, a2, (const char *)a1);
		break;
	case NR_open:
		open_event(e, OC_OPEN, AT_FDCWD, a1, (const char *)a0);
		break;
	case NR_creat:
		open_event(e, OC_CREAT, AT_FDCWD, CREAT_FLAGS, (const char *)a0);
		break;
	case NR_openat2: {
		__u64 flags = 0;
		bpf_probe_read_user(&flags, sizeof(flags), &((struct open_how___tel *)a2)->flags);
		open_event(e, OC_OPENAT2, a0, flags, (const char *)a1);
		break;
	}
	case NR_socket:
		/* As asked; from the socket itself when it was made. */
		e->family = a0;
		e->sock_type = a1 & SOCK_TYPE_MASK;
		e->flags = a1 & ~SOCK_TYPE_MASK; /* SOCK_NONBLOCK, SOCK_CLOEXEC */
		e->protocol = a2;
		if (ret >= 0)
			sock_info(e, ret);
		break;
	case NR_connect:
	case NR_bind:
		/* connect(fd, addr, len) and bind(fd, addr, len). */
		sock_info(e, a0);
		read_addr(e, (const void *)a1, a2);
		break;
	default:
		/* accept(fd, addr, lenp) and accept4(fd, addr, lenp, flags): the
		 * new socket, and the peer's address as written back. */
		if (nr == NR_accept4)
			e->flags = a3;
		if (ret >= 0) {
			sock_info(e, ret);
			int len = 0;
			if (a2)
				bpf_probe_read_user(&len, sizeof(len), (void *)a2);
			read_addr(e, (const void *)a1, len);
		}
	}
	emit(e);
	return 0;
}

SEC("tracepoint/capability/cap_capable")
int tel_capable(struct cap_capable_ctx *ctx)
{
	__u64 cgid;
	if (!(visibility(&cgid) & V_CAPS))
		return 0;
	int cap = ctx->cap, ret = ctx->ret;
	EMIT_FIXED(K_CAPABLE, cgid, {
		e->cap = cap;
		e->ret = ret;
	});
	return 0;
}
