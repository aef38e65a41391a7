//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nri-armor's enforcement programs.
 *
 * Every hook starts the same way: the current task's cgroup v2 id is looked
 * up in cg_sets; a task whose cgroup has no rule set returns at once (that is
 * the whole cost for unprotected processes). Otherwise the event's resource
 * (path, protocol, capability) is matched against the set's rules, which the
 * loader (bpf/encode.go) wrote into the rules map.
 *
 * The verdict follows policy.Decide exactly (see policy/decide.go):
 *   fromSource rules beat generic ones; then Block > Audit > Allow; among
 *   equals the most specific and then the lowest rule id is reported; no
 *   rule in an allow-list class gives the class posture (DefaultPosture).
 *
 * A rules entry is keyed by what a rule matches — (set, class, kind, hash
 * and length of the matched text, and for fromSource rules the hash and
 * length of the source executable) — and holds the verdict that its rules
 * give for each of the four cases (owner or not) × (write or not), resolved
 * by the encoder: one lookup per matcher, whatever the number of rules.
 * Pattern rules are the exception: they share a bucket (their directory
 * prefix) and are tried one by one, each with its own glob.
 *
 * Paths come from bpf_d_path (as the process sees them, up to PATH_MAX) and
 * are hashed with FNV-1a 64 while walked: at every '/' the prefix's hash is
 * a candidate for recursive directory rules and pattern buckets; at the end
 * the whole path is one for exact rules, its last directory for the direct-
 * children rules, its base name for execname rules. The walk, the lookups
 * and the glob steps all run in one bpf_loop as a small state machine: one
 * callback, no nesting, so the verifier's work stays small. Cost follows the
 * path's length and depth, never the number of rules.
 */
#include "include/armor_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define PATH_MAX 4096
#define PATH_MASK (PATH_MAX - 1)

/* Classes, kinds and actions: keep in step with bpf/encode.go. */
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

/* decide_file's block_only: what a hook that is not the decision point of
 * record (file_open, bprm_check_security) takes from a verdict. */
#define BLOCK_ONLY_NO 0    /* every verdict, with its events */
#define BLOCK_ONLY_RULES 1 /* explicit Block rules only: no posture, no Audit events */

#define ACT_NONE 0
#define ACT_ALLOW 1
#define ACT_AUDIT 2
#define ACT_BLOCK 3

/* bounded(x, mask) is x & mask, computed so that the compiler cannot drop
 * the mask because of an earlier comparison: the verifier needs to see it. */
#define bounded(x, mask) ({ __u32 __v = (x); asm volatile("" : "+r"(__v)); __v & (mask); })

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

struct set_hdr {
	__u8 allowlist[NUM_CLASSES];
	__u8 posture[NUM_CLASSES];
	__u8 has_source[NUM_CLASSES];
	__u8 pad[NUM_CLASSES];
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
	__u8 posture; /* 1: the class posture decided; 2: a built-in protection */
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

#include "include/events.h" /* events, events_lost, wakeup_bytes */

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct exe_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} exe_store SEC(".maps");

/*
 * The open memo: a file opened once and silently allowed need not have its
 * path computed and walked again. What a file's path is (bpf_d_path)
 * depends on the opened dentry and mount, on the opener's root, and on the
 * dentry and mount trees above them; its verdict on the set, the (write,
 * owner) case and, with fromSource rules, the executable. The memo lives in
 * the inode's own storage (freed with the inode) and holds all of these;
 * it is used only when each one is still the same:
 *   - the trees: every rename and every mount change (mount, move_mount,
 *     umount, pivot_root) bumps memo_epoch[0], which invalidates every memo
 *     (renames and mounts are rare next to opens);
 *   - the dentry and mount pointers are part of the identity, and so is
 *     the mount's mount point (a mount freed with its namespace, without a
 *     hook, may see its address reused by a copy made without a hook; the
 *     copy is then also checked for where it is mounted);
 *   - a file with more than one name (i_nlink != 1) is never memoized: a
 *     reused dentry address could then be another of its names; unlinked
 *     (0) neither;
 *   - loader state: memo_epoch[1] is bumped by the engine when it starts
 *     and when it frees a set, so a set id never meets an older memo.
 * The identity is hashed into 60 bits stored with the verdict bits in one
 * word (a wrong hit needs a 2^-60 collision of kernel addresses, which a
 * process cannot choose). Only silent Allow is memoized: Audit and Block
 * always write an event with the path, so they always take the full walk.
 */
struct open_memo {
	/* Per class (0: file, 1: process — mmap_file), the open's identity
	 * hashed (open_tag), low 4 bits cleared, ORed with bit
	 * (write << 1 | is_owner) for each case found silently allowed. Each
	 * word is written whole: concurrent writers cannot leave one open's
	 * bits beside another's identity. */
	__u64 word[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct open_memo);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} open_memo SEC(".maps");

/* [0]: bumped by the kernel hooks below; [1]: by the loader. */
struct memo_epochs {
	__u64 e[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct memo_epochs);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} memo_epoch SEC(".maps");

/* A key to look up, collected by the walk. */
struct cand {
	__u64 hash;
	__u32 len;
	__u16 text_off; /* patterns: where the text after the prefix starts */
	__u8 kind;
	__u8 pad;
};

/* Candidates are looked up in chunks: a walk that fills the array pauses,
 * the chunk is looked up, and the walk goes on (a path can have 2048 '/'). */
#define MAX_CANDS 512
#define CAND_ROOM (MAX_CANDS - 8) /* the walk pauses here; the rest is for the final keys */

/* The machine's state. It lives in the per-CPU scratch map, not on the
 * stack: the verifier treats map memory as unknown, so it checks every
 * branch of the step function. (Kernels before 6.8 verify a bpf_loop
 * callback once, with the state of its first call: values it could see as
 * constants there would have their other branches pruned as dead code.) */
struct machine {
	__u32 set_id;
	__u32 kinds;
	__u64 depths;
	struct exe_info exe;
	__u8 cls;
	__u8 combo; /* (write << 1) | is_owner */
	__u8 has_exe;
	__u8 has_source;
	__u8 state;
	__u8 walked; /* the walk reached the path's end and pushed the final keys */
	__u8 paths;  /* the event has a path to walk */
	__u8 gtail;
	/* the best verdict so far, in the order of policy.Rule.beats */
	__u32 best_id;
	__u32 best_spec;
	__u8 best_action;
	__u8 best_sourced;
	__u8 block_only; /* BLOCK_ONLY_*: only Block counts, and only it writes events */
	__u8 pad;
	/* the walk */
	__u32 len;
	__u32 pos;
	__u32 depth;
	__u32 last_dir_len;
	__u64 hash;
	__u64 base;
	__u64 last_dir;
	/* the candidates */
	__u32 ncands;
	__u32 ci;
	/* a pattern bucket: its key, the slot, the glob's state */
	struct rule_key pk;
	__u32 gplen;
	__u32 goff, gtlen;
	__s32 gi, gj, gstar_i, gstar_j;
};

struct scratch {
	__u64 ptrs[4]; /* as_number: kernel pointers, read back as numbers */
	struct event ev;
	struct machine m;
	struct pat_val pat; /* a copy of the pattern being matched */
	struct cand cands[MAX_CANDS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct scratch);
	__uint(max_entries, 1);
} scratch SEC(".maps");

/* The most steps one decision may take (BPF_MAX_LOOPS); a decision that
 * needs more (many long patterns over a long path) is taken as Block. */
const volatile __u32 max_steps = 1 << 23;

/* The machine's states. */
enum {
	ST_WALK = 0, /* hash the next byte of the path */
	ST_CAND,     /* look the next candidate up */
	ST_SLOT,     /* look the next pattern of a bucket up */
	ST_GLOB,     /* one step of that pattern's glob */
	ST_DONE,
};

/* The bpf_loop context: only the scratch pointer; all state is in it. */
struct loop_ctx {
	struct scratch *sc;
};

static __always_inline void take(struct machine *m, const struct verdict *v, __u8 sourced)
{
	if (v->action == ACT_NONE)
		return;
	bool better;
	if (m->best_action == ACT_NONE)
		better = true;
	else if (sourced != m->best_sourced)
		better = sourced > m->best_sourced;
	else if (v->action != m->best_action)
		better = v->action > m->best_action;
	else if (v->spec != m->best_spec)
		better = v->spec > m->best_spec;
	else
		better = v->rule_id < m->best_id;
	if (better) {
		m->best_id = v->rule_id;
		m->best_spec = v->spec;
		m->best_action = v->action;
		m->best_sourced = sourced;
	}
}

static __always_inline bool depth_has_rules(struct machine *m, __u32 depth)
{
	return m->depths & (1ULL << (depth < 63 ? depth : 63));
}

static __always_inline void push(struct scratch *sc, __u8 kind, __u64 hash, __u32 len, __u32 text_off)
{
	struct machine *m = &sc->m;
	if (!(m->kinds & (1U << kind)) || m->ncands >= MAX_CANDS)
		return;
	struct cand *c = &sc->cands[bounded(m->ncands, MAX_CANDS - 1)];
	c->hash = hash;
	c->len = len;
	c->kind = kind;
	c->text_off = text_off;
	m->ncands++;
}

/* push_finals adds the keys known once the whole path is walked. */
static __always_inline void push_finals(struct scratch *sc)
{
	struct machine *m = &sc->m;
	__u32 len = m->len;
	push(sc, KIND_PATH, m->hash, len, 0);
	if (m->cls == CLASS_PROCESS && len > m->last_dir_len)
		push(sc, KIND_EXECNAME, m->base, len - m->last_dir_len, 0);
	/* The last directory's direct children; a path ending in '/' (only
	 * "/" does) is that directory itself, which its rules cover too. */
	push(sc, KIND_DIR_DIRECT, m->last_dir, m->last_dir_len, 0);
	/* The directory itself: "/etc" is covered by dir rules on "/etc/". */
	if (len > 0 && sc->ev.res[(len - 1) & PATH_MASK] != '/') {
		__u64 self = (m->hash ^ '/') * FNV_PRIME;
		if (depth_has_rules(m, m->depth + 1))
			push(sc, KIND_DIR_REC, self, len + 1, 0);
		push(sc, KIND_DIR_DIRECT, self, len + 1, 0);
	}
	m->walked = 1;
}

/* step_walk hashes up to 8 bytes of the path, then returns to the loop. */
static __always_inline void step_walk(struct scratch *sc)
{
	struct machine *m = &sc->m;
#pragma unroll
	for (int k = 0; k < 8; k++) {
		if (m->pos >= m->len || m->ncands >= CAND_ROOM)
			break;
		__u32 i = m->pos++;
		__u8 c = sc->ev.res[i & PATH_MASK];
		m->hash = (m->hash ^ c) * FNV_PRIME;
		if (c == '/') {
			m->base = FNV_OFFSET;
			m->last_dir = m->hash;
			m->last_dir_len = i + 1;
			m->depth++;
			if (depth_has_rules(m, m->depth)) {
				push(sc, KIND_DIR_REC, m->hash, i + 1, 0);
				push(sc, KIND_PATTERN, m->hash, i + 1, i + 1);
			}
		} else {
			m->base = (m->base ^ c) * FNV_PRIME;
		}
	}
	if (m->pos >= m->len || m->ncands >= CAND_ROOM) {
		if (m->pos >= m->len)
			push_finals(sc);
		m->ci = 0;
		m->state = ST_CAND;
	}
}

static __always_inline void step_cand(struct scratch *sc)
{
	struct machine *m = &sc->m;
	if (m->ci >= m->ncands) {
		if (m->walked || !m->paths) {
			m->state = ST_DONE;
		} else {
			m->ncands = 0; /* the chunk is done: walk on */
			m->state = ST_WALK;
		}
		return;
	}
	struct cand *c = &sc->cands[bounded(m->ci, MAX_CANDS - 1)];
	m->ci++;
	struct rule_key k = {.set_id = m->set_id, .cls = m->cls, .kind = c->kind, .len = c->len, .hash = c->hash};
	if (c->kind == KIND_PATTERN) {
		m->pk = k;
		m->goff = c->text_off;
		m->state = ST_SLOT;
		return;
	}
	struct rule_val *v = bpf_map_lookup_elem(&rules, &k);
	if (v)
		take(m, &v->v[m->combo & 3], 0);
	if (m->has_source && m->has_exe) {
		k.src_hash = m->exe.hash;
		k.src_len = m->exe.len;
		v = bpf_map_lookup_elem(&rules, &k);
		if (v)
			take(m, &v->v[m->combo & 3], 1);
	}
}

static __always_inline void step_slot(struct scratch *sc)
{
	struct machine *m = &sc->m;
	struct pat_val *p = bpf_map_lookup_elem(&patterns, &m->pk);
	if (!p || m->goff > m->len) {
		m->state = ST_CAND; /* the bucket is done */
		return;
	}
	sc->pat = *p; /* the glob reads it from scratch, step by step */
	m->gplen = p->len < PATTERN_MAX ? p->len : PATTERN_MAX;
	m->gtail = p->tail;
	m->gtlen = m->len - m->goff;
	m->gi = 0;
	m->gj = 0;
	m->gstar_i = 0;
	m->gstar_j = -1;
	m->state = ST_GLOB;
}

/* glob_done applies the pattern's verdict if it matched, and moves on to
 * the bucket's next slot. */
static __always_inline void glob_done(struct scratch *sc, bool matched)
{
	struct machine *m = &sc->m;
	if (matched)
		take(m, &sc->pat.v[m->combo & 3], 0);
	m->pk.slot++;
	m->state = ST_SLOT;
}

/* step_glob is one step of globMatch (bpf/glob.go): the classic wildcard
 * algorithm, backtracking to the last '*'; '*' and '?' never cross '/'. */
static __always_inline void step_glob(struct scratch *sc)
{
	struct machine *m = &sc->m;
	__s32 plen = m->gplen;
	if (m->gtail && m->gj == plen) {
		glob_done(sc, true);
		return;
	}
	if (m->gi >= (__s32)m->gtlen) {
		if (m->gj < plen && sc->pat.pat[bounded(m->gj, PATTERN_MAX - 1)] == '*') {
			m->gj++; /* trailing '*' match the empty rest; one per step */
			return;
		}
		glob_done(sc, m->gj == plen);
		return;
	}
	char pc = m->gj < plen ? sc->pat.pat[bounded(m->gj, PATTERN_MAX - 1)] : 0;
	char tc = sc->ev.res[(m->goff + m->gi) & PATH_MASK];
	if (m->gj < plen && pc == '*') {
		m->gstar_j = m->gj;
		m->gstar_i = m->gi;
		m->gj++;
	} else if (m->gj < plen && (pc == tc || (pc == '?' && tc != '/'))) {
		m->gi++;
		m->gj++;
	} else if (m->gstar_j >= 0 && sc->ev.res[(m->goff + m->gstar_i) & PATH_MASK] != '/') {
		m->gstar_i++;
		m->gi = m->gstar_i;
		m->gj = m->gstar_j + 1;
	} else {
		glob_done(sc, false);
	}
}

static long machine_step(__u32 n, void *data)
{
	struct scratch *sc = ((struct loop_ctx *)data)->sc;
	switch (sc->m.state) {
	case ST_WALK:
		step_walk(sc);
		return 0;
	case ST_CAND:
		step_cand(sc);
		return 0;
	case ST_SLOT:
		step_slot(sc);
		return 0;
	case ST_GLOB:
		step_glob(sc);
		return 0;
	}
	return 1;
}

/* run decides: walk the path if there is one, look every candidate up. */
static __always_inline void run(struct scratch *sc)
{
	struct machine *m = &sc->m;
	struct loop_ctx ctx = {.sc = sc};
	m->hash = FNV_OFFSET;
	m->base = FNV_OFFSET;
	m->state = m->paths ? ST_WALK : ST_CAND;
	bpf_loop(max_steps, machine_step, &ctx, 0);
	if (m->state != ST_DONE) {
		/* Out of steps: fail closed. */
		m->best_action = ACT_BLOCK;
		m->best_id = 0;
	}
}

/* lookup_set returns the current task's set: its cgroup's, or the host set
 * for a process outside every container; NULL when it has none. */
static __always_inline struct cg_val *lookup_set(__u64 *cgid)
{
	*cgid = bpf_get_current_cgroup_id();
	struct cg_val *v = bpf_map_lookup_elem(&cg_sets, cgid);
	if (v)
		return v->set_id ? v : NULL;
	__u32 zero = 0;
	struct cg_val *host = bpf_map_lookup_elem(&host_set, &zero);
	if (!host || !host->set_id)
		return NULL; /* the fast path: no host policy */
	/* A cgroup below a container's (made inside it) is that container's,
	 * not the host's. */
	for (int level = 1; level < MAX_CGROUP_DEPTH; level++) {
		__u64 a = bpf_get_current_ancestor_cgroup_id(level);
		if (!a || a == *cgid)
			break;
		struct cg_val *av = bpf_map_lookup_elem(&cg_sets, &a);
		if (av)
			return av->set_id ? av : NULL;
	}
	return host;
}

static __always_inline struct scratch *new_scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch, &zero);
}

/* enter is every hook's start: the current cgroup's set and its header, and
 * the per-CPU scratch; NULL when the cgroup has no set (the fast path). */
static __always_inline struct set_hdr *enter(__u64 *cgid, __u32 *set_id, struct scratch **sc)
{
	struct cg_val *v = lookup_set(cgid);
	if (!v)
		return NULL;
	*set_id = v->set_id;
	*sc = new_scratch();
	if (!*sc)
		return NULL;
	return &v->hdr;
}

static __always_inline struct machine *init_match(struct set_hdr *h, struct scratch *sc, __u32 set_id, __u8 cls)
{
	struct machine *m = &sc->m;
	__builtin_memset(m, 0, sizeof(*m));
	m->set_id = set_id;
	m->cls = cls;
	m->kinds = h->kinds[cls & 3];
	m->depths = h->depths[cls & 3];
	m->has_source = h->has_source[cls & 3];
	return m;
}

/* load_exe reads the acting task's executable (for fromSource), when the
 * class has fromSource rules; only LSM programs can. */
static __always_inline void load_exe(struct machine *m)
{
	if (!m->has_source)
		return;
	struct exe_info *x = bpf_task_storage_get(&exe_store, bpf_get_current_task_btf(), 0, 0);
	if (x) {
		m->exe = *x;
		m->has_exe = 1;
	}
}

/* finish turns the best rule (or the posture) into the hook's return value
 * and writes an event for Audit and Block. */
static __always_inline int finish(struct scratch *sc, struct set_hdr *h, __u64 cgid, __u32 res_len, __u8 write, bool lsm, __u8 builtin)
{
	struct machine *m = &sc->m;
	struct event *e = &sc->ev;
	__u8 action = m->best_action;
	__u8 posture = builtin;
	__u8 cls = m->cls & 3;

	if (action == ACT_NONE) {
		if (!h->allowlist[cls] || m->block_only == BLOCK_ONLY_RULES)
			return 0;
		action = h->posture[cls];
		posture = 1;
	}
	if (action == ACT_ALLOW || (m->block_only && action != ACT_BLOCK))
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
	e->rule_id = posture ? 0 : m->best_id; /* no rule for the posture or a built-in */
	e->set_id = m->set_id;
	e->retval = ret;
	e->cls = cls;
	e->action = action;
	e->posture = posture;
	e->write = write;
	e->res_len = res_len;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__u64 size = __builtin_offsetof(struct event, res) + (res_len & PATH_MASK);
	if (size > sizeof(*e))
		size = sizeof(*e);
	events_output(e, size);
	return ret;
}

static __always_inline __u64 mix(__u64 h, __u64 v)
{
	h = (h ^ v) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 31);
}

/* current_uid is the acting task's real uid, as bpf_get_current_uid_gid
 * gives it (kuid values are the initial namespace's), read with BTF loads:
 * on a memo hit the helper call cost more than the rest of the owner test.
 * LSM programs only (cgroup programs cannot read the task). */
static __always_inline __u32 current_uid(struct task_struct *t)
{
	return t->cred->uid.val;
}

/* as_number returns a kernel pointer's value as a plain number, by way of
 * map memory: the verifier forbids arithmetic on pointers, and a value
 * read from a map is a number. (Storing a pointer into a map needs
 * CAP_PERFMON, which the loader has.) */
#define as_number(sc, i, ptr)                                   \
	({                                                      \
		(sc)->ptrs[(i)&3] = (__u64)(ptr);               \
		*(volatile __u64 *)&(sc)->ptrs[(i)&3];          \
	})

/* open_tag hashes what the verdict of opening f depends on, besides the
 * (write, owner) case; 0 when f may not be memoized. This is the hot path
 * of every repeated open: fields are read with direct (BTF) loads, not
 * helper calls, except the mount's mount point: struct mount is reached by
 * container_of, which only bpf_probe_read allows (90 of a hit's 680
 * instructions). It stays: a mount namespace is copied and torn down
 * without any hook, so a mount's address can be reused by a copy mounted
 * elsewhere (see the open memo above). */
static __always_inline __u64 open_tag(struct file *f, struct task_struct *t, struct scratch *sc, __u32 set_id, __u8 cls,
				     bool has_source)
{
	if (f->f_inode->i_nlink != 1)
		return 0;
	__u32 zero = 0;
	struct memo_epochs *ep = bpf_map_lookup_elem(&memo_epoch, &zero);
	if (!ep)
		return 0;
	__u64 h = mix(FNV_OFFSET, ep->e[0]);
	h = mix(h, ep->e[1]);
	h = mix(h, set_id | (__u64)cls << 32);
	__u64 mnt = as_number(sc, 0, f->f_path.mnt);
	h = mix(h, mnt);
	struct mount *m = (void *)(mnt - bpf_core_field_offset(struct mount, mnt));
	h = mix(h, (__u64)BPF_CORE_READ(m, mnt_mountpoint));
	h = mix(h, as_number(sc, 1, f->f_path.dentry));
	struct fs_struct *fs = t->fs;
	h = mix(h, as_number(sc, 2, fs->root.mnt));
	h = mix(h, as_number(sc, 3, fs->root.dentry));
	if (has_source) {
		struct exe_info *x = bpf_task_storage_get(&exe_store, t, 0, 0);
		if (x) {
			h = mix(h, x->hash);
			h = mix(h, x->len);
		}
	}
	h = mix(h, 0);
	h &= ~0xfULL;
	return h ? h : 0x10;
}

/* skip_class: a class without rules and not in allow-list mode cannot
 * decide anything but Allow, so its path need not be walked (file writes
 * still meet the built-in cgroupfs check). */
static __always_inline bool skip_class(struct set_hdr *h, __u8 cls, __u8 write)
{
	return !h->kinds[cls & 3] && !h->allowlist[cls & 3] && !(write && cls == CLASS_FILE);
}

/* decide_file decides a file or an executable by its path; *silent says
 * that the path was walked and the verdict is Allow without an event for
 * every hook. */
static __always_inline int decide_file(struct file *f, __u8 cls, __u8 write, __u8 block_only, __u64 cgid,
				       __u32 set_id, struct scratch *sc, struct set_hdr *h, bool *silent)
{
	long n = bpf_d_path(&f->f_path, sc->ev.res, PATH_MAX);
	if (n <= 1)
		return 0; /* no path (anonymous or deleted file): nothing to match */
	__u32 len = (n - 1) & PATH_MASK;

	struct machine *m = init_match(h, sc, set_id, cls);
	if (write && cls == CLASS_FILE) {
		/* Built in: an enforced container may not write to cgroupfs,
		 * which would let a process move itself out of its cgroup,
		 * and out of its rule set. */
		unsigned long magic = BPF_CORE_READ(f, f_inode, i_sb, s_magic);
		if (magic == CGROUP2_SUPER_MAGIC || magic == CGROUP_SUPER_MAGIC) {
			m->best_action = ACT_BLOCK;
			return finish(sc, h, cgid, len, write, true, 2);
		}
	}
	__u8 is_owner = f->f_inode->i_uid.val == current_uid(bpf_get_current_task_btf());
	m->combo = (write << 1) | is_owner;
	m->block_only = block_only;
	m->paths = 1;
	m->len = len;
	load_exe(m);
	sc->ev.arg = 0;
	run(sc);
	/* Silent: Allow without an event whatever the hook — a file with an
	 * Audit rule is never memoized, so a hook that reports it is never
	 * skipped by a memo that a Block-only hook (mmap_file) made. */
	*silent = m->state == ST_DONE &&
		  (m->best_action == ACT_ALLOW || (m->best_action == ACT_NONE && !h->allowlist[cls & 3]));
	return finish(sc, h, cgid, len, write, true, 0);
}


/* check_file decides a file or an executable by its path. */
static __always_inline int check_file(struct file *f, __u8 cls, __u8 write)
{
	__u64 cgid;
	__u32 set_id;
	struct scratch *sc;
	struct set_hdr *h = enter(&cgid, &set_id, &sc);
	if (!h || skip_class(h, cls, write))
		return 0;
	bool silent = false;
	return decide_file(f, cls, write, 0, cgid, set_id, sc, h, &silent);
}

/* check_memo decides a file by its path (decide_file), with the open memo
 * in front: file_open, and mmap_file for executable mappings. */
static __always_inline int check_memo(struct file *f, __u8 cls, __u8 write, __u8 block_only)
{
	__u64 cgid;
	__u32 set_id;
	struct scratch *sc;
	struct set_hdr *h = enter(&cgid, &set_id, &sc);
	if (!h || skip_class(h, cls, write))
		return 0;
	/* overlayfs opens the real (upper or lower) file of every file opened
	 * through it, with the overlay's path as a fake path: file_open runs
	 * again, for the same path. The user's open was decided already; a
	 * file whose inode is not its path's inode is such an internal open.
	 * (Checked here, past the cgroup lookup: only enforced processes pay.) */
	if (cls == CLASS_FILE && as_number(sc, 0, f->f_inode) != as_number(sc, 1, f->f_path.dentry->d_inode))
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 tag = open_tag(f, t, sc, set_id, cls, h->has_source[cls & 3]);
	__u64 bit = 1ULL << ((write << 1) | (f->f_inode->i_uid.val == current_uid(t)));
	__u32 slot = cls == CLASS_FILE ? 0 : 1;
	struct open_memo *o = NULL;
	if (tag) {
		o = bpf_inode_storage_get(&open_memo, f->f_inode, 0, 0);
		if (o) {
			__u64 w = o->word[slot];
			if ((w & ~0xfULL) == tag && (w & bit))
				return 0;
		}
	}
	bool silent = false;
	int ret = decide_file(f, cls, write, block_only, cgid, set_id, sc, h, &silent);
	if (!tag || !silent)
		return ret;
	if (!o)
		o = bpf_inode_storage_get(&open_memo, f->f_inode, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (o) {
		__u64 w = o->word[slot];
		o->word[slot] = ((w & ~0xfULL) == tag ? w : tag) | bit;
	}
	return ret;
}

/* The hooks that change what a path is: each invalidates every memo. */
static __always_inline int memo_invalidate(void)
{
	__u32 zero = 0;
	struct memo_epochs *ep = bpf_map_lookup_elem(&memo_epoch, &zero);
	if (ep)
		__sync_fetch_and_add(&ep->e[0], 1);
	return 0;
}

#define INVALIDATES_MEMOS(hook)          \
	SEC("lsm/" #hook)                \
	int BPF_PROG(armor_##hook)       \
	{                                \
		return memo_invalidate(); \
	}

INVALIDATES_MEMOS(inode_rename)
INVALIDATES_MEMOS(sb_mount)
INVALIDATES_MEMOS(move_mount)
INVALIDATES_MEMOS(sb_umount)
INVALIDATES_MEMOS(sb_pivotroot)

SEC("lsm/file_open")
int BPF_PROG(armor_file_open, struct file *file)
{
	return check_memo(file, CLASS_FILE, (file->f_mode & FMODE_WRITE) ? 1 : 0, BLOCK_ONLY_NO);
}

/* An executable mapping of a file that a process Block rule names is
 * denied: `ld.so /blocked/binary` maps the binary instead of executing it.
 * Only explicit Block rules count here — not an allow-list posture, which
 * would deny every shared library — and only they write events (the
 * kernel maps every executed binary too, after bprm_check_security). */
SEC("lsm/mmap_file")
int BPF_PROG(armor_mmap_file, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags)
{
	if (!file || !(prot & PROT_EXEC))
		return 0;
	return check_memo(file, CLASS_PROCESS, 0, BLOCK_ONLY_RULES);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(armor_bprm_check, struct linux_binprm *bprm)
{
	return check_file(bprm->file, CLASS_PROCESS, 0);
}

/* exe_hash_byte hashes the executable's path for fromSource. */
struct exe_walk {
	struct scratch *sc;
	__u32 len;
	__u64 hash;
};

static long exe_hash_byte(__u32 i, void *data)
{
	struct exe_walk *w = data;
	if (i >= w->len)
		return 1;
	w->hash = (w->hash ^ (__u8)w->sc->ev.res[i & PATH_MASK]) * FNV_PRIME;
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
	struct scratch *sc = new_scratch();
	if (!sc)
		return 0;
	long n = bpf_d_path(&bprm->file->f_path, sc->ev.res, PATH_MAX);
	if (n <= 1)
		return 0;
	struct exe_walk w = {.sc = sc, .len = (n - 1) & PATH_MASK, .hash = FNV_OFFSET};
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
	struct scratch *sc;
	struct set_hdr *h = enter(&cgid, &set_id, &sc);
	if (!h)
		return 0;
	type &= 0xf; /* without SOCK_NONBLOCK / SOCK_CLOEXEC */
	if (protocol == 0 && family != AF_PACKET) {
		if (type == SOCK_STREAM)
			protocol = IPPROTO_TCP;
		else if (type == SOCK_DGRAM)
			protocol = IPPROTO_UDP;
	}
	struct machine *m = init_match(h, sc, set_id, CLASS_NETWORK);
	if (lsm)
		load_exe(m);
	if (family != AF_PACKET)
		push(sc, KIND_PROTO, protocol, 0, 0);
	push(sc, KIND_SOCKTYPE, family == AF_PACKET ? 0x100 : type, 0, 0);
	push(sc, KIND_ALL, 0, 0, 0);
	run(sc);
	sc->ev.arg = (family << 16) | ((type & 0xff) << 8) | (protocol & 0xff);
	return finish(sc, h, cgid, 0, 0, lsm, 0);
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
	struct scratch *sc;
	struct set_hdr *h = enter(&cgid, &set_id, &sc);
	if (!h)
		return 0;
	struct machine *m = init_match(h, sc, set_id, CLASS_CAPS);
	load_exe(m);
	push(sc, KIND_CAP, (__u32)cap, 0, 0);
	run(sc);
	sc->ev.arg = cap;
	return finish(sc, h, cgid, 0, 0, true, 0);
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
