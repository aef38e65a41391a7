/* SPDX-License-Identifier: GPL-2.0 */
/* Which rule set applies to the current task: the fast path of every hook. */
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

/* enter is every hook's start: the current cgroup's set and its header, and
 * the per-CPU scratch; NULL when the cgroup has no set (the fast path), or
 * when the task is the runtime's setup in a container (setup.h). */
static __always_inline struct set_hdr *enter(__u64 *cgid, __u32 *set_id, struct scratch **sc, __u8 who)
{
	bool host;
	struct cg_val *v = lookup_set(cgid, &host);
	if (!v || (who != FOR_CGROUP && !host && runtime_setup(who == FOR_EXEC)))
		return NULL;
	*set_id = v->set_id;
	*sc = new_scratch();
	if (!*sc)
		return NULL;
	(*sc)->host = host;
	return &v->hdr;
}

#endif
