//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nri-armor's enforcement programs.
 *
 * Every hook starts the same way: the current task's cgroup v2 id is looked
 * up in cg_sets; a task whose cgroup has no rule set returns at once (that is
 * the whole cost for unprotected processes). Otherwise the event's resource
 * (path, protocol, capability) is matched against the set's rules, which the
 * loader (bpf/encode.go) wrote into the rules map, keyed by
 * (set, class, kind, hash of the matched text, slot).
 *
 * The verdict follows policy.Decide exactly (see policy/decide.go):
 *   fromSource rules beat generic ones; then Block > Audit > Allow; among
 *   equals the most specific and then the lowest rule id is reported; no
 *   rule in an allow-list class gives the class posture (DefaultPosture).
 *
 * Paths come from bpf_d_path (as the process sees them, up to PATH_MAX) and
 * are walked byte by byte in bpf_loop, hashing with FNV-1a 64: at every '/'
 * the prefix's hash looks up recursive directory rules; at the end the whole
 * path looks up exact rules, its last directory the direct-children rules,
 * and its base name the execname rules. Cost follows the path's length and
 * depth, never the number of rules.
 */
#include "include/armor_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define PATH_MAX 4096
#define PATH_MASK (PATH_MAX - 1)

/* Classes, kinds, actions and flags: keep in step with bpf/abi.go. */
#define CLASS_PROCESS 0
#define CLASS_FILE 1
#define CLASS_NETWORK 2
#define CLASS_CAPS 3
#define NUM_CLASSES 4

#define KIND_PATH 1
#define KIND_EXECNAME 2
#define KIND_DIR_REC 3
#define KIND_DIR_DIRECT 4
#define KIND_PROTO 5
#define KIND_SOCKTYPE 6
#define KIND_ALL 7
#define KIND_CAP 8
#define KIND_PATTERN 9

#define PATTERN_MAX 256

#define ACT_NONE 0
#define ACT_ALLOW 1
#define ACT_AUDIT 2
#define ACT_BLOCK 3

#define F_OWNER_ONLY 1
#define F_READ_ONLY 2
#define F_SOURCE 4
#define F_MORE 8

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

struct set_hdr {
	__u8 allowlist[NUM_CLASSES];
	__u8 posture[NUM_CLASSES];
	__u8 has_source[NUM_CLASSES];
	__u8 has_patterns[NUM_CLASSES];
};

/* A pattern rule's remainder after its directory prefix (bpf/glob.go). */
struct pat_key {
	__u32 set_id;
	__u32 rule_id;
};

struct pat_val {
	__u16 len;
	__u8 tail; /* the pattern ended in "**" */
	__u8 pad;
	char pat[PATTERN_MAX];
};

struct rule_key {
	__u32 set_id;
	__u8 cls;
	__u8 kind;
	__u16 slot;
	__u32 len;
	__u32 pad;
	__u64 hash;
};

struct rule_val {
	__u32 rule_id;
	__u8 action;
	__u8 flags;
	__u16 pad;
	__u32 spec;
	__u32 src_len;
	__u64 src_hash;
};

struct exe_info {
	__u64 hash;
	__u32 len;
	__u32 pad;
};

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
	__u32 arg; /* network: family<<16|type<<8|protocol; capabilities: cap */
	__u8 cls;
	__u8 action;
	__u8 posture;
	__u8 write;
	__u16 res_len;
	__u16 pad;
	char comm[16];
	char res[PATH_MAX];
};

/* Capacities are set by the loader (MaxEntries) from its configuration. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, __u32);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cg_sets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct set_hdr);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} set_hdrs SEC(".maps");

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
	__type(key, struct pat_key);
	__type(value, struct pat_val);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} patterns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct exe_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} exe_store SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct event);
	__uint(max_entries, 1);
} scratch SEC(".maps");

/* Events are submitted without wake-up; a wake-up is forced once this much
 * is pending, so a reader is woken per batch, not per event (readers also
 * poll with a deadline, so a lone event waits at most that long). */
const volatile __u64 wakeup_bytes = 64 * 1024;

/* The most rules that may share one matcher; the encoder refuses more. */
const volatile __u32 max_slots = 1024;

/* A candidate rule, in the order of policy.Rule.beats. */
struct best {
	__u32 rule_id;
	__u8 action;
	__u8 sourced;
	__u32 spec;
};

struct match_ctx {
	__u32 set_id;
	__u8 cls;
	__u8 write;
	__u8 is_owner;
	__u8 has_exe;
	struct exe_info exe;
	struct best best;
	/* For pattern rules: the path, and where the text after the bucket
	 * prefix starts. */
	struct event *e;
	__u32 len;
	__u32 text_off;
};

/* glob_ctx is globMatch of bpf/glob.go, one step per bpf_loop iteration. */
struct glob_ctx {
	struct pat_val *p;
	struct event *e;
	__u32 off, tlen; /* the text is e->res[off .. off+tlen) */
	__s32 i, j, star_i, star_j;
	__u8 result;
};

static long glob_step(__u32 n, void *data)
{
	struct glob_ctx *g = data;
	__u32 plen = g->p->len;
	if (plen > PATTERN_MAX)
		return 1;
	if (g->p->tail && g->j == plen) {
		g->result = 1;
		return 1;
	}
	if (g->i >= g->tlen) {
		while (g->j < plen && g->j >= 0 && g->p->pat[g->j & (PATTERN_MAX - 1)] == '*')
			g->j++;
		g->result = g->j == plen;
		return 1;
	}
	char pc = g->j < plen ? g->p->pat[g->j & (PATTERN_MAX - 1)] : 0;
	char tc = g->e->res[(g->off + g->i) & PATH_MASK];
	if (g->j < plen && pc == '*') {
		g->star_j = g->j;
		g->star_i = g->i;
		g->j++;
	} else if (g->j < plen && (pc == tc || (pc == '?' && tc != '/'))) {
		g->i++;
		g->j++;
	} else if (g->star_j >= 0 && g->e->res[(g->off + g->star_i) & PATH_MASK] != '/') {
		g->star_i++;
		g->i = g->star_i;
		g->j = g->star_j + 1;
	} else {
		return 1;
	}
	return 0;
}

/* pattern_matches runs the rule's pattern over the text after its prefix. */
static __always_inline bool pattern_matches(struct match_ctx *m, __u32 rule_id)
{
	struct pat_key pk = {.set_id = m->set_id, .rule_id = rule_id};
	struct pat_val *p = bpf_map_lookup_elem(&patterns, &pk);
	if (!p || !m->e || m->text_off > m->len)
		return false;
	struct glob_ctx g = {.p = p, .e = m->e, .off = m->text_off, .tlen = m->len - m->text_off, .star_j = -1};
	/* The algorithm takes at most (text+1) * (pattern+1) steps. */
	bpf_loop((g.tlen + 1) * (PATTERN_MAX + 1), glob_step, &g, 0);
	return g.result;
}

static __always_inline bool beats(__u8 sourced, __u8 action, __u32 spec, __u32 id, const struct best *b)
{
	if (b->action == ACT_NONE)
		return true;
	if (sourced != b->sourced)
		return sourced > b->sourced;
	if (action != b->action)
		return action > b->action;
	if (spec != b->spec)
		return spec > b->spec;
	return id < b->rule_id;
}

struct slot_ctx {
	struct match_ctx *m;
	struct rule_key k;
};

/* slot_step looks at one slot of a key; slots hold the rules that share a
 * matcher (same path with other sources, actions or modifiers). */
static long slot_step(__u32 slot, void *data)
{
	struct slot_ctx *s = data;
	struct match_ctx *m = s->m;

	s->k.slot = slot;
	struct rule_val *v = bpf_map_lookup_elem(&rules, &s->k);
	if (!v)
		return 1;
	bool ok = true;
	bool allow = v->action == ACT_ALLOW;
	if (s->k.kind == KIND_PATTERN)
		ok = pattern_matches(m, v->rule_id);
	if (ok && (v->flags & F_SOURCE))
		ok = m->has_exe && v->src_hash == m->exe.hash && v->src_len == m->exe.len;
	if (ok && (v->flags & F_OWNER_ONLY))
		ok = m->is_owner == allow;
	if (ok && (v->flags & F_READ_ONLY))
		ok = m->write != allow;
	__u8 sourced = (v->flags & F_SOURCE) ? 1 : 0;
	if (ok && beats(sourced, v->action, v->spec, v->rule_id, &m->best)) {
		m->best.rule_id = v->rule_id;
		m->best.action = v->action;
		m->best.sourced = sourced;
		m->best.spec = v->spec;
	}
	return (v->flags & F_MORE) ? 0 : 1;
}

/* consider keeps the best applicable rule among those of one key. */
static __always_inline void consider(struct match_ctx *m, __u8 kind, __u64 hash, __u32 len)
{
	struct slot_ctx s = {.m = m, .k = {.set_id = m->set_id, .cls = m->cls, .kind = kind, .len = len, .hash = hash}};
	bpf_loop(max_slots, slot_step, &s, 0);
}

struct walk_ctx {
	struct match_ctx *m;
	struct event *e;
	__u8 patterns;	 /* the class has pattern rules */
	__u32 len;	 /* bytes of the path, without the NUL */
	__u64 hash;	 /* FNV-1a of path[0..i] */
	__u64 base;	 /* FNV-1a of the bytes after the last '/' */
	__u64 last_dir;	 /* hash of the prefix through the last '/' */
	__u32 last_dir_len;
};

static long walk_byte(__u32 i, void *data)
{
	struct walk_ctx *w = data;
	if (i >= w->len)
		return 1;
	__u8 c = w->e->res[i & PATH_MASK];
	w->hash = (w->hash ^ c) * FNV_PRIME;
	if (c == '/') {
		w->base = FNV_OFFSET;
		w->last_dir = w->hash;
		w->last_dir_len = i + 1;
		consider(w->m, KIND_DIR_REC, w->hash, i + 1);
		if (w->patterns) {
			w->m->text_off = i + 1;
			consider(w->m, KIND_PATTERN, w->hash, i + 1);
		}
	} else {
		w->base = (w->base ^ c) * FNV_PRIME;
	}
	return 0;
}

static __always_inline void match_path(struct match_ctx *m, struct set_hdr *h, struct event *e, __u32 len)
{
	struct walk_ctx w = {.m = m, .e = e, .len = len, .hash = FNV_OFFSET, .base = FNV_OFFSET};
	w.patterns = h->has_patterns[m->cls & 3];
	m->e = e;
	m->len = len;

	bpf_loop(len, walk_byte, &w, 0);
	consider(m, KIND_PATH, w.hash, len);
	if (m->cls == CLASS_PROCESS && len > w.last_dir_len)
		consider(m, KIND_EXECNAME, w.base, len - w.last_dir_len);
	if (len > w.last_dir_len)
		consider(m, KIND_DIR_DIRECT, w.last_dir, w.last_dir_len);
	/* The directory itself: "/etc" is covered by dir rules on "/etc/". */
	if (len > 0 && e->res[(len - 1) & PATH_MASK] != '/') {
		__u64 self = (w.hash ^ '/') * FNV_PRIME;
		consider(m, KIND_DIR_REC, self, len + 1);
		consider(m, KIND_DIR_DIRECT, self, len + 1);
	}
}

/* lookup_set returns the current cgroup's set id, or 0 when it has none. */
static __always_inline __u32 lookup_set(__u64 *cgid)
{
	*cgid = bpf_get_current_cgroup_id();
	__u32 *set = bpf_map_lookup_elem(&cg_sets, cgid);
	return set ? *set : 0;
}

static __always_inline struct event *new_event(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch, &zero);
}

/* enter is every hook's start: the current cgroup's set, its header and the
 * per-CPU event buffer; NULL when the cgroup has no set (the fast path). */
static __always_inline struct set_hdr *enter(__u64 *cgid, __u32 *set_id, struct event **e)
{
	*set_id = lookup_set(cgid);
	if (!*set_id)
		return NULL;
	*e = new_event();
	if (!*e)
		return NULL;
	return bpf_map_lookup_elem(&set_hdrs, set_id);
}

static __always_inline void load_exe(struct match_ctx *m, struct set_hdr *h)
{
	if (!h->has_source[m->cls & 3])
		return;
	struct exe_info *x = bpf_task_storage_get(&exe_store, bpf_get_current_task_btf(), 0, 0);
	if (x) {
		m->exe = *x;
		m->has_exe = 1;
	}
}

/* finish turns the best rule (or the posture) into the hook's return value
 * and writes an event for Audit and Block. */
static __always_inline int finish(struct match_ctx *m, struct set_hdr *h, struct event *e, __u64 cgid, __u32 res_len, bool lsm)
{
	__u8 action = m->best.action;
	__u8 posture = 0;
	__u8 cls = m->cls & 3;

	if (action == ACT_NONE) {
		if (!h->allowlist[cls])
			return 0;
		action = h->posture[cls];
		posture = 1;
	}
	if (action == ACT_ALLOW)
		return 0;
	int ret = action == ACT_BLOCK ? -EPERM : 0;

	__u64 pid_tgid = bpf_get_current_pid_tgid();
	e->cgroup_id = cgid;
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	e->ppid = 0; /* cgroup programs cannot read the task: user space fills it in */
	if (lsm)
		e->ppid = BPF_CORE_READ(bpf_get_current_task_btf(), real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->rule_id = posture ? 0 : m->best.rule_id;
	e->set_id = m->set_id;
	e->retval = ret;
	e->cls = cls;
	e->action = action;
	e->posture = posture;
	e->write = m->write;
	e->res_len = res_len;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__u64 size = __builtin_offsetof(struct event, res) + (res_len & PATH_MASK);
	if (size > sizeof(*e))
		size = sizeof(*e);
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + size >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_output(&events, e, size, flags);
	return ret;
}

/* check_file decides a file or an executable by its path. */
static __always_inline int check_file(struct file *f, __u8 cls, __u8 write)
{
	__u64 cgid;
	__u32 set_id;
	struct event *e;
	struct set_hdr *h = enter(&cgid, &set_id, &e);
	if (!h)
		return 0;
	long n = bpf_d_path(&f->f_path, e->res, PATH_MAX);
	if (n <= 1)
		return 0; /* no path (anonymous or deleted file): nothing to match */
	__u32 len = (n - 1) & PATH_MASK;

	struct match_ctx m = {.set_id = set_id, .cls = cls, .write = write};
	m.is_owner = BPF_CORE_READ(f, f_inode, i_uid.val) == (__u32)bpf_get_current_uid_gid();
	load_exe(&m, h);
	e->arg = 0;
	match_path(&m, h, e, len);
	return finish(&m, h, e, cgid, len, true);
}

SEC("lsm/file_open")
int BPF_PROG(armor_file_open, struct file *file)
{
	return check_file(file, CLASS_FILE, (file->f_mode & FMODE_WRITE) ? 1 : 0);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(armor_bprm_check, struct linux_binprm *bprm)
{
	return check_file(bprm->file, CLASS_PROCESS, 0);
}

/* exe_hash_byte hashes the executable's path for fromSource. */
struct exe_walk {
	struct event *e;
	__u32 len;
	__u64 hash;
};

static long exe_hash_byte(__u32 i, void *data)
{
	struct exe_walk *w = data;
	if (i >= w->len)
		return 1;
	w->hash = (w->hash ^ (__u8)w->e->res[i & PATH_MASK]) * FNV_PRIME;
	return 0;
}

/* After a successful exec, remember the new executable of the task (its
 * path's hash) for fromSource rules; only in cgroups that have a set. */
SEC("lsm/bprm_committed_creds")
int BPF_PROG(armor_bprm_committed, struct linux_binprm *bprm)
{
	__u64 cgid;
	if (!lookup_set(&cgid))
		return 0;
	struct event *e = new_event();
	if (!e)
		return 0;
	long n = bpf_d_path(&bprm->file->f_path, e->res, PATH_MAX);
	if (n <= 1)
		return 0;
	struct exe_walk w = {.e = e, .len = (n - 1) & PATH_MASK, .hash = FNV_OFFSET};
	bpf_loop(w.len, exe_hash_byte, &w, 0);
	struct exe_info *x = bpf_task_storage_get(&exe_store, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (x) {
		x->hash = w.hash;
		x->len = w.len;
	}
	return 0;
}

/* A new task runs its parent's executable until it execs: copy the entry. */
SEC("lsm/task_alloc")
int BPF_PROG(armor_task_alloc, struct task_struct *task, unsigned long clone_flags)
{
	struct exe_info *parent = bpf_task_storage_get(&exe_store, bpf_get_current_task_btf(), 0, 0);
	if (!parent)
		return 0;
	struct exe_info *child = bpf_task_storage_get(&exe_store, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (child)
		*child = *parent;
	return 0;
}

/* Socket numbers as the kernel defines them. */
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

/* check_socket decides a socket by protocol (KIND_PROTO: IP protocol number,
 * with 0 read as TCP for stream and UDP for datagram sockets), socket type
 * (KIND_SOCKTYPE) and "all". Only inet and packet sockets are network.
 * It returns as an LSM hook does: 0 or -EPERM. */
static __always_inline int check_socket(__u32 family, __u32 type, __u32 protocol, bool lsm)
{
	if (family != AF_INET && family != AF_INET6 && family != AF_PACKET)
		return 0;
	__u64 cgid;
	__u32 set_id;
	struct event *e;
	struct set_hdr *h = enter(&cgid, &set_id, &e);
	if (!h)
		return 0;
	type &= 0xf; /* without SOCK_NONBLOCK / SOCK_CLOEXEC */
	if (protocol == 0 && family != AF_PACKET) {
		if (type == SOCK_STREAM)
			protocol = IPPROTO_TCP;
		else if (type == SOCK_DGRAM)
			protocol = IPPROTO_UDP;
	}
	struct match_ctx m = {.set_id = set_id, .cls = CLASS_NETWORK};
	if (lsm)
		load_exe(&m, h);
	if (family != AF_PACKET)
		consider(&m, KIND_PROTO, protocol, 0);
	consider(&m, KIND_SOCKTYPE, family == AF_PACKET ? 0x100 : type, 0);
	consider(&m, KIND_ALL, 0, 0);
	e->arg = (family << 16) | ((type & 0xff) << 8) | (protocol & 0xff);
	return finish(&m, h, e, cgid, 0, lsm);
}

/* Cgroup socket programs return 1 to allow and 0 to deny (EPERM). */
static __always_inline int cgroup_verdict(int lsm_ret)
{
	return lsm_ret == 0 ? 1 : 0;
}

SEC("lsm/socket_create")
int BPF_PROG(armor_socket_create, int family, int type, int protocol, int kern)
{
	if (kern)
		return 0;
	return check_socket(family, type, protocol, true);
}

SEC("lsm/socket_connect")
int BPF_PROG(armor_socket_connect, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct sock *sk = sock->sk;
	if (!sk)
		return 0;
	return check_socket(sk->__sk_common.skc_family, sock->type, sk->sk_protocol, true);
}

SEC("lsm/capable")
int BPF_PROG(armor_capable, const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts)
{
	__u64 cgid;
	__u32 set_id;
	struct event *e;
	struct set_hdr *h = enter(&cgid, &set_id, &e);
	if (!h)
		return 0;
	struct match_ctx m = {.set_id = set_id, .cls = CLASS_CAPS};
	load_exe(&m, h);
	consider(&m, KIND_CAP, (__u32)cap, 0);
	e->arg = cap;
	return finish(&m, h, e, cgid, 0, true);
}

SEC("cgroup/sock_create")
int armor_cg_sock_create(struct bpf_sock *ctx)
{
	return cgroup_verdict(check_socket(ctx->family, ctx->type, ctx->protocol, false));
}

SEC("cgroup/connect4")
int armor_cg_connect4(struct bpf_sock_addr *ctx)
{
	return cgroup_verdict(check_socket(AF_INET, ctx->type, ctx->protocol, false));
}

SEC("cgroup/connect6")
int armor_cg_connect6(struct bpf_sock_addr *ctx)
{
	return cgroup_verdict(check_socket(AF_INET6, ctx->type, ctx->protocol, false));
}
