/* SPDX-License-Identifier: GPL-2.0 */
/* Which rule set applies to the current task: the fast path of every hook;
 * and the scratch a decision owns from claim to release (why: struct
 * scratch, match.h). */
#ifndef ARMOR_SETS_H
#define ARMOR_SETS_H

/* lookup_set returns the current task's set: its cgroup's, or the host set
 * (*host set) for a process outside every container; NULL when it has none. */
static __always_inline struct cg_val *lookup_set(__u64 *cgid, bool *host)
{
	*host = false;
	*cgid = bpf_get_current_cgroup_id();
	struct cg_val *v = bpf_map_lookup_elem(&cg_sets, cgid);
	if (v)
		return v->set_id ? v : NULL;
	__u32 zero = 0;
	struct cg_val *host_v = bpf_map_lookup_elem(&host_set, &zero);
	if (!host_v || !host_v->set_id)
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
	*host = true;
	return host_v;
}


/* Who enter is called for. */
#define FOR_CGROUP 0 /* a cgroup program: it cannot read the task */
#define FOR_TASK 1   /* an LSM program */
#define FOR_EXEC 2   /* an LSM program deciding a program about to run */

/* enter is every hook's start: the current cgroup's set and its header,
 * into dc; false when the cgroup has no set (the fast path), or when the
 * task is the runtime's setup in a container (setup.h). It takes no
 * scratch: claim does, once the hook knows it has something to decide. */
static __always_inline bool enter(struct decision *dc, __u8 who)
{
	bool host;
	struct cg_val *v = lookup_set(&dc->cgid, &host);
	if (!v || (who != FOR_CGROUP && !host && runtime_setup(who == FOR_EXEC)))
		return false;
	dc->set_id = v->set_id;
	dc->h = &v->hdr;
	dc->host = host;
	return true;
}

/* own takes sc if it is free. A decision may be preempted between any two
 * instructions (and a borrowed slot is another CPU's), so the test and the
 * taking must be one atomic step: each taker adds itself to the busy word
 * and owns sc only if it then reads itself alone, else takes itself back
 * off. An owner's 1 stays until it releases, so no second taker can read
 * 1 meanwhile; two takers may both give up (then both try on). A plain
 * atomic add, as the default -mcpu (v1) compiles it: no xchg or cmpxchg. */
static __always_inline bool own(struct scratch *sc)
{
	__sync_fetch_and_add(&sc->busy, 1);
	if (*(volatile __u64 *)&sc->busy == 1)
		return true;
	__sync_fetch_and_add(&sc->busy, -1);
	return false;
}

/* nr_cpus: the possible CPUs (the loader sets it), for borrow. */
const volatile __u32 nr_cpus = 1;

struct borrow {
	struct scratch *sc;
	__u32 self;
};

/* borrow_slot tries slot i % MAX_SCRATCH_SLOTS of CPU i / MAX_SCRATCH_SLOTS. */
static long borrow_slot(__u32 i, void *data)
{
	struct borrow *b = data;
	__u32 cpu = i / MAX_SCRATCH_SLOTS, slot = i % MAX_SCRATCH_SLOTS;
	if (cpu == b->self)
		return 0;
	struct scratch *sc = bpf_map_lookup_percpu_elem(&scratch, &slot, cpu);
	if (sc && own(sc)) {
		b->sc = sc;
		return 1;
	}
	return 0;
}

/* other_slot takes a free slot of the CPU other than the first, counting
 * the contention; NULL when they are all taken. */
static __always_inline struct scratch *other_slot(struct scratch_counts **st)
{
	__u32 zero = 0;
	*st = bpf_map_lookup_elem(&scratch_stats, &zero);
	if (*st)
		__sync_fetch_and_add(&(*st)->contended, 1);
#pragma unroll
	for (__u32 i = 1; i < MAX_SCRATCH_SLOTS; i++) {
		__u32 k = i;
		struct scratch *sc = bpf_map_lookup_elem(&scratch, &k);
		if (!sc)
			break; /* past the slots the loader made */
		if (own(sc))
			return sc;
	}
	return NULL;
}

/* count_fallback counts a decision that found every slot of its CPU taken:
 * spilled when it had another scratch, refused when none. */
static __always_inline void count_fallback(struct scratch_counts *st, struct scratch *sc)
{
	if (st)
		__sync_fetch_and_add(sc ? &st->spilled : &st->refused, 1);
}

/* claim_task is claim's slow path in an LSM program: another slot, or the
 * task's own scratch (*spilled). Out of line: only contention runs it. */
static __noinline struct scratch *claim_task(bool *spilled)
{
	struct scratch_counts *st;
	struct scratch *sc = other_slot(&st);
	if (sc)
		return sc;
	sc = bpf_task_storage_get(&scratch_spill, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	/* Owned too: a decision of this task in an interrupt could meet it. */
	if (sc && !own(sc))
		sc = NULL;
	*spilled = sc != NULL;
	count_fallback(st, sc);
	return sc;
}

/* claim_cgroup is claim's slow path in a cgroup program: another slot, or
 * a free slot of another CPU. */
static __noinline struct scratch *claim_cgroup(void)
{
	struct scratch_counts *st;
	struct scratch *sc = other_slot(&st);
	if (sc)
		return sc;
	struct borrow b = {.self = bpf_get_smp_processor_id()};
	bpf_loop(nr_cpus * MAX_SCRATCH_SLOTS, borrow_slot, &b, 0);
	count_fallback(st, b.sc);
	return b.sc;
}

/* claim gives the decision a scratch of its own (see struct scratch): the
 * CPU's first slot, nearly always; else another free slot of the CPU, or
 * when they are all taken the task's own (LSM programs) or another CPU's
 * free slot (cgroup programs, which have no task storage); false when none
 * can be had. Taken after enter and the hook's own tests, so that a
 * process with nothing to decide never pays. */
static __always_inline bool claim(struct decision *dc, __u8 who)
{
	__u32 zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&scratch, &zero);
	dc->spilled = false;
	if (!sc || !own(sc))
		sc = who == FOR_CGROUP ? claim_cgroup() : claim_task(&dc->spilled);
	dc->sc = sc;
	return sc != NULL;
}

/* release gives the scratch back, once the decision is done with it: a
 * task's own is deleted (freed after the programs running now are done;
 * should the delete fail, it is given back for the task's next decision). */
static __always_inline void release(struct decision *dc, __u8 who)
{
	if (who != FOR_CGROUP && dc->spilled && !bpf_task_storage_delete(&scratch_spill, bpf_get_current_task_btf()))
		return;
	__sync_fetch_and_add(&dc->sc->busy, -1);
}

/* refuse is the verdict when no scratch can be had (claim): the act is
 * refused for a container (fail closed), with an event that says why and
 * names no file (there is no memory to name it in; arg as event.arg: the
 * socket, the capability); the node's own
 * processes, under a host set, are let through with the same event as an
 * Audit (they run the node: as for a file the kernel cannot name). */
static __always_inline int refuse(struct decision *dc, __u8 cls, __u8 write, __u32 arg, __u8 who)
{
	int ret = dc->host ? 0 : -EPERM;
	__u64 size = __builtin_offsetof(struct event, res);
	struct event *e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e) {
		events_count_lost();
		return ret;
	}
	event_head(e, dc, 0, ret, cls, ret ? ACT_BLOCK : ACT_AUDIT, ORIGIN_NO_MEMORY, write, 0, who != FOR_CGROUP);
	e->arg = arg;
	bpf_ringbuf_submit(e, events_wakeup(size));
	return ret;
}

/* in_scratch is what a hook returns for a decision: body, an expression
 * deciding in dc->sc, between claim and release; refuse's verdict (cls,
 * write, arg) when there is no scratch. Each decision releases exactly
 * once. */
#define in_scratch(dc, who, cls, write, arg, body)             \
	({                                                     \
		int __r;                                       \
		if (claim(dc, who)) {                          \
			__r = (body);                          \
			release(dc, who);                      \
		} else {                                       \
			__r = refuse(dc, cls, write, arg, who); \
		}                                              \
		__r;                                           \
	})

#endif
