/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The matcher: one bpf_loop over a small state machine that walks a path
 * (hashing it with keyed SipHash-2-4, siphash.h, and collecting the keys
 * to look up), looks those keys up in the set's rules, and steps pattern
 * rules' globs; then the best verdict becomes the hook's return value and,
 * for Audit and Block, an event (finish).
 *
 * A key is a text's (hash, length): the whole path, each prefix up to a
 * '/', the last directory, the base name, the path + "/". The bytes are
 * never compared, so the hash is keyed: without the key a path cannot be
 * made to hash like a rule's text (issue 13, item 9).
 */
#ifndef ARMOR_MATCH_H
#define ARMOR_MATCH_H

/* decide_file's block_only: what a hook that is not the decision point of
 * record (file_open, bprm_check_security) takes from a verdict. */
#define BLOCK_ONLY_NO 0    /* every verdict, with its events */
#define BLOCK_ONLY_RULES 1 /* explicit Block rules only: no posture, no Audit events */

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
#define NAME_PARTS 128 /* name.h: the components of a name it builds */
/* The walk pauses here: a word of the path pushes up to 16 keys (8 '/'),
 * the path's end 5 more. */
#define CAND_ROOM (MAX_CANDS - 24)

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
	/* the walk: pos advances a word at a time */
	__u32 len;
	__u32 pos;
	__u32 depth;
	__u32 last_dir_len;
	__u64 dir_tail;  /* the last directory's bytes past its last whole word */
	__u64 dir_hash;  /* the hash of the prefix of dir_hash_len bytes, at_slash's */
	__u32 dir_hash_len;
	__u32 pad2;
	struct sip key;  /* the empty message's state, from path_key */
	struct sip path; /* the path's whole words so far */
	struct sip dir;  /* the last directory's whole words */
	/* a range of the path hashed on its own (absorb): the base name, the
	 * executable's path (bprm_committed) */
	struct sip run;
	__u32 run_pos;
	__u32 run_start;
	/* the candidates */
	__u32 ncands;
	__u32 ci;
	/* a pattern bucket: its key, the slot, the glob's state */
	struct rule_key pk;
	__u32 gplen;
	__u32 goff, gtlen;
	__s32 gi, gj, gstar_i, gstar_j;
};

/*
 * A decision's working memory: the event it may write (with a PATH_MAX
 * path), the machine, the candidates — about 14 KB, too much for the
 * stack. It is map memory, and each decision owns its scratch from the
 * claim (sets.h: claim) to the release at the end of its hook, alone.
 *
 * Owned, not merely per CPU: trampoline (LSM) programs, and cgroup ones
 * too, run with migration disabled but may be preempted (preempt=full,
 * lazy and RT kernels), and another decision on the same CPU then runs in
 * the middle of this one. A scratch shared per CPU would be overwritten
 * under the first: a Block could end as the other task's Allow, and be
 * memoized. So every CPU has SCRATCH_SLOTS scratches (the loader may set
 * fewer: the scratch map's max_entries), each with a busy word; a decision
 * takes the first free one. When all are taken (as many decisions
 * preempted on one CPU), an LSM program takes one in the task's own local
 * storage (scratch_spill), made for the decision and deleted after it; a
 * cgroup program, which has no task storage, takes a free slot of another
 * CPU. Only when none can be had is the act refused (refuse, sets.h), with
 * an event saying so. scratch_stats counts it all.
 */
struct scratch {
	__u64 busy;    /* owned while non-zero: claim, release (sets.h) */
	__u64 ptrs[4]; /* as_number: kernel pointers, read back as numbers */
	struct event ev;
	char slack[NAME_MAX]; /* name.h writes a component of up to NAME_MAX at any place of ev.res */
	struct machine m;
	struct pat_val pat; /* a copy of the pattern being matched */
	struct cand cands[MAX_CANDS];
	__u64 parts[NAME_PARTS]; /* name.h: the dentries of a name, bottom up */
};

#define SCRATCH_SLOTS 4 /* per CPU; MAX_SCRATCH_SLOTS at most */
#define MAX_SCRATCH_SLOTS 8

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct scratch);
	__uint(max_entries, SCRATCH_SLOTS);
} scratch SEC(".maps");

/* An LSM decision's scratch when every slot of its CPU is taken. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct scratch);
} scratch_spill SEC(".maps");

/* How often decisions met a taken scratch, per CPU (the loader sums them
 * into nri_armor_kernel_scratch_contended_total). */
struct scratch_counts {
	__u64 contended; /* found a slot of its CPU taken */
	__u64 spilled;   /* ... every one: took the task's own, or another CPU's */
	__u64 refused;   /* ... and none could be had: refused */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct scratch_counts);
	__uint(max_entries, 1);
} scratch_stats SEC(".maps");

/* A decision in progress: the set that applies to the task (enter), and
 * the scratch it owns (claim). */
struct decision {
	__u64 cgid;
	struct set_hdr *h;
	struct scratch *sc;
	__u32 set_id;
	bool host;    /* the set is the host set */
	bool spilled; /* sc is the task's scratch_spill */
};

/* The most steps one decision may take (BPF_MAX_LOOPS); a decision that
 * needs more (many long patterns over a long path) is taken as Block. */
const volatile __u32 max_steps = 1 << 23;

/* The machine's states. */
enum {
	ST_WALK = 0, /* hash the next word of the path */
	ST_BASE,     /* hash the base name (execname rules) */
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

static __always_inline bool has_kind(struct machine *m, __u8 kind)
{
	return m->kinds & (1U << kind);
}

/* absorb hashes whole words of the path from run_pos (unaligned: the
 * scratch's slack follows ev.res) into run, up to 4 per call; true once
 * fewer than 8 bytes are left before len, the tail that run_final takes. */
static __always_inline bool absorb(struct scratch *sc)
{
	struct machine *m = &sc->m;
#pragma unroll
	for (int k = 0; k < 4; k++) {
		if (m->run_pos + 8 <= m->len) {
			sip_block(&m->run, sip_load(&sc->ev.res[m->run_pos & PATH_MASK]));
			m->run_pos += 8;
		}
	}
	return m->run_pos + 8 > m->len;
}

/* run_final is the hash of the bytes from run_start to len, once absorbed. */
static __always_inline __u64 run_final(struct scratch *sc)
{
	struct machine *m = &sc->m;
	__u32 r = m->len - m->run_pos;
	__u64 tail = r ? sip_mask(sip_load(&sc->ev.res[m->run_pos & PATH_MASK]), r & 7) : 0;
	return sip_final(&m->run, tail, m->len - m->run_start);
}

/* push_finals adds the keys known once the whole path is walked; tail is
 * the path's bytes past its last whole word. The base name is hashed by
 * ST_BASE, when execname rules need it. Each key is a SipHash finalization
 * (six rounds), made only for the kinds the class has rules of: what they
 * cost is in docs/benchmarks.md. */
static __always_inline void push_finals(struct scratch *sc, __u64 tail)
{
	struct machine *m = &sc->m;
	__u32 len = m->len;
	if (has_kind(m, KIND_PATH))
		push(sc, KIND_PATH, sip_final(&m->path, tail, len), len, 0);
	/* The last directory's direct children; a path ending in '/' (only
	 * "/" does) is that directory itself, which its rules cover too. */
	if (has_kind(m, KIND_DIR_DIRECT)) {
		__u32 n = m->last_dir_len; /* hashed already if rules were at its depth */
		__u64 h = m->dir_hash_len == n ? m->dir_hash : sip_final(&m->dir, m->dir_tail, n);
		push(sc, KIND_DIR_DIRECT, h, n, 0);
	}
	/* The directory itself: "/etc" is covered by dir rules on "/etc/". */
	bool rec = depth_has_rules(m, m->depth + 1);
	if ((rec || has_kind(m, KIND_DIR_DIRECT)) && sc->ev.res[(len - 1) & PATH_MASK] != '/') {
		__u32 r = len & 7;
		struct sip s = m->path;
		tail |= (__u64)'/' << (r * 8);
		if (r == 7) { /* the '/' fills the word */
			sip_block(&s, tail);
			tail = 0;
		}
		__u64 self = sip_final(&s, tail, len + 1);
		if (rec)
			push(sc, KIND_DIR_REC, self, len + 1, 0);
		push(sc, KIND_DIR_DIRECT, self, len + 1, 0);
	}
	m->walked = 1;
}

/* at_slash: the path has a '/' at n - 1; dir has absorbed the prefix's
 * whole words, tail holds the rest of it. */
static __always_inline void at_slash(struct scratch *sc, __u64 tail, __u32 n)
{
	struct machine *m = &sc->m;
	m->dir_tail = tail;
	m->last_dir_len = n;
	m->depth++;
	if (depth_has_rules(m, m->depth)) {
		__u64 h = sip_final(&m->dir, tail, n);
		m->dir_hash = h;
		m->dir_hash_len = n;
		push(sc, KIND_DIR_REC, h, n, 0);
		push(sc, KIND_PATTERN, h, n, n);
	}
}

/* step_walk hashes the next word of the path (pos is a multiple of 8, the
 * word lies whole in ev.res), with a key for each '/' in it. */
static __always_inline void step_walk(struct scratch *sc)
{
	struct machine *m = &sc->m;
	if (m->ncands < CAND_ROOM) {
		__u32 pos = m->pos;
		__u32 left = m->len - pos;
		__u64 w = sip_load(&sc->ev.res[pos & PATH_MASK]);
		if (left < 8)
			w = sip_mask(w, left);
		/* The bytes of w that are '/': bit 7 of each (exact, no carry
		 * from one byte into the next); the masked-off bytes are 0. */
		__u64 t = w ^ 0x2f2f2f2f2f2f2f2fULL;
		__u64 slashes = ~(((t & 0x7f7f7f7f7f7f7f7fULL) + 0x7f7f7f7f7f7f7f7fULL) | t | 0x7f7f7f7f7f7f7f7fULL);
		if (slashes & 0x0080808080808080ULL) {
			m->dir = m->path;
#pragma unroll
			for (int k = 0; k < 7; k++)
				if (slashes & (0x80ULL << (k * 8)))
					at_slash(sc, sip_mask(w, k + 1), pos + k + 1);
		}
		if (left >= 8) {
			sip_block(&m->path, w);
			m->pos = pos + 8;
			w = 0; /* the tail, if the path ends here */
			if (slashes >> 63) {
				m->dir = m->path;
				at_slash(sc, 0, pos + 8);
			}
		} else {
			m->pos = m->len;
		}
		if (m->pos < m->len)
			return;
		push_finals(sc, w);
		if (m->cls == CLASS_PROCESS && has_kind(m, KIND_EXECNAME) && m->len > m->last_dir_len) {
			m->run = m->key;
			m->run_pos = m->last_dir_len;
			m->run_start = m->last_dir_len;
			m->state = ST_BASE;
			return;
		}
	}
	m->ci = 0;
	m->state = ST_CAND;
}

/* step_base hashes the base name, for execname rules. */
static __always_inline void step_base(struct scratch *sc)
{
	struct machine *m = &sc->m;
	if (!absorb(sc))
		return;
	push(sc, KIND_EXECNAME, run_final(sc), m->len - m->run_start, 0);
	m->ci = 0;
	m->state = ST_CAND;
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

/* step_glob is one step of globMatch (enforce/bpflsm/glob.go): the classic wildcard
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
	case ST_BASE:
		step_base(sc);
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
	m->state = ST_CAND;
	if (m->paths) {
		__u32 zero = 0;
		struct sip_key *k = bpf_map_lookup_elem(&path_key, &zero);
		if (!k) { /* cannot be: an array's entry */
			m->best_action = ACT_BLOCK;
			return;
		}
		sip_start(&m->key, k);
		m->path = m->key;
		m->dir = m->key;
		m->state = ST_WALK;
	}
	bpf_loop(max_steps, machine_step, &ctx, 0);
	if (m->state != ST_DONE) {
		/* Out of steps: fail closed. */
		m->best_action = ACT_BLOCK;
		m->best_id = 0;
	}
}

static __always_inline struct machine *init_match(struct decision *dc, __u8 cls)
{
	struct machine *m = &dc->sc->m;
	struct set_hdr *h = dc->h;
	__builtin_memset(m, 0, sizeof(*m));
	m->set_id = dc->set_id;
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
	if (x && x->len) {
		m->exe = *x;
		m->has_exe = 1;
	}
}

/* event_head fills in an event's header. lsm: the program can read the
 * task (cgroup programs cannot: user space fills in the parent). */
static __always_inline void event_head(struct event *e, struct decision *dc, __u32 rule_id, int ret, __u8 cls, __u8 action,
				       __u8 origin, __u8 write, __u32 res_len, bool lsm)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	e->cgroup_id = dc->cgid;
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	e->ppid = 0;
	if (lsm)
		e->ppid = BPF_CORE_READ(bpf_get_current_task_btf(), real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->rule_id = rule_id;
	e->set_id = dc->set_id;
	e->retval = ret;
	e->cls = cls;
	e->action = action;
	e->posture = origin;
	e->write = write;
	e->res_len = res_len;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* finish turns the best rule (or the posture) into the hook's return value
 * and writes an event for Audit and Block. */
static __always_inline int finish(struct decision *dc, __u32 res_len, __u8 write, bool lsm, __u8 builtin)
{
	struct scratch *sc = dc->sc;
	struct machine *m = &sc->m;
	struct event *e = &sc->ev;
	__u8 action = m->best_action;
	__u8 posture = builtin;
	__u8 cls = m->cls & 3;

	if (action == ACT_NONE) {
		if (!dc->h->allowlist[cls] || m->block_only == BLOCK_ONLY_RULES)
			return 0;
		action = dc->h->posture[cls];
		posture = 1;
	}
	if (action == ACT_ALLOW || (m->block_only && action != ACT_BLOCK))
		return 0;
	int ret = action == ACT_BLOCK ? -EPERM : 0;
	/* No rule for the posture or a built-in. */
	event_head(e, dc, posture ? 0 : m->best_id, ret, cls, action, posture, write, res_len, lsm);
	__u64 size = __builtin_offsetof(struct event, res) + (res_len & PATH_MASK);
	if (size > sizeof(*e))
		size = sizeof(*e);
	events_output(e, size);
	return ret;
}

/* current_uid is the acting task's real uid, as bpf_get_current_uid_gid
 * gives it (kuid values are the initial namespace's), read with BTF loads:
 * on a memo hit the helper call cost more than the rest of the owner test.
 * LSM programs only (cgroup programs cannot read the task). */
static __always_inline __u32 current_uid(struct task_struct *t)
{
	return t->cred->uid.val;
}

#endif
