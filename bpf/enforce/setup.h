/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The container runtime's own setup, which a container's rules do not
 * govern: under a file allow-list, runc init's opens of /, /proc/..., /sys/...
 * would otherwise fail the container's start and every `crictl exec`.
 *
 * A container's first process, and each `runc exec`, begins as a task of the
 * runtime (runc init): made on the host, put into the container's cgroup by
 * the runtime — a write to cgroup.procs, or a clone straight into it
 * (clone3 CLONE_INTO_CGROUP) — it sets up (or joins) the namespaces, mounts
 * and root, and execs the container's program. Such a process is marked
 * when it enters the cgroup (setup_store), with the place — mount
 * namespace and root — of the runtime that put it there:
 *
 *  - moved (tracepoint cgroup_attach_task) by another task that is outside
 *    every container, when it has not exec'd in a container (no exe_store
 *    entry made in a container's cgroup: a process moving itself, as
 *    systemd's children do, is not a runtime's child, and a container's own
 *    processes have one; under a host set the node's processes have
 *    entries too, marked as the host's);
 *  - forked (tracepoint sched_process_fork) into the cgroup of a known
 *    container other than its parent's, by a parent outside every container;
 *  - forked by a marked process (runc init's own stages).
 *
 * A mark is the process's (kept on its thread group leader): the runtime's
 * task may have threads before it is moved. setup_count counts the marks,
 * so that while there are none — nearly always — no hook looks for one.
 *
 * The mark ends at the first exec made elsewhere than the runtime's place —
 * in another mount namespace or under another root: that is the container's
 * program, and the process rules decide it. An exec in the runtime's place
 * is the runtime re-executing itself (runc's cloned binary), still setup.
 *
 * No process of a container can obtain the mark: its cgroup is a container's
 * (in cg_sets, or below one), so its moves (which the built-in cgroupfs rule
 * refuses anyway) and its clones into a cgroup mark nothing, and it descends
 * from the exec that ended its first ancestor's mark. A task that could not
 * be marked (no memory) is governed by the rules: that fails closed. The
 * host set ignores marks: a host policy governs the runtime too.
 */
#ifndef ARMOR_SETUP_H
#define ARMOR_SETUP_H

static __always_inline __u32 task_mnt_ns(struct task_struct *t)
{
	return BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
}

/* task_root is the task's root dentry's address, as a number (read with a
 * probe: the verifier would not let a pointer into a map). */
static __always_inline __u64 task_root(struct task_struct *t)
{
	return (__u64)BPF_CORE_READ(t, fs, root.dentry);
}

/* count_setup adds d to setup_count. */
static __always_inline void count_setup(__s64 d)
{
	__u32 zero = 0;
	__s64 *n = bpf_map_lookup_elem(&setup_count, &zero);
	if (n)
		__sync_fetch_and_add(n, d);
}

/* any_setup: some process has a mark. */
static __always_inline bool any_setup(void)
{
	__u32 zero = 0;
	__s64 *n = bpf_map_lookup_elem(&setup_count, &zero);
	return n && *n > 0;
}

/* mark_setup marks process p (a thread group leader) as the runtime's,
 * from the place (mount namespace and root) of the runtime's task rt, or
 * with the mark from (a forked process's parent's). Counted first, so that
 * no mark is ever uncounted. */
static __always_inline void mark_setup(struct task_struct *p, struct task_struct *rt, struct setup_mark *from)
{
	struct setup_mark *s = bpf_task_storage_get(&setup_store, p, 0, 0);
	if (!s) {
		count_setup(1);
		s = bpf_task_storage_get(&setup_store, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!s) {
			count_setup(-1);
			return;
		}
	}
	if (from) {
		*s = *from;
		return;
	}
	s->mnt_ns = task_mnt_ns(rt);
	s->root = task_root(rt);
}

/* drop_setup removes t's mark, if it has one. */
static __always_inline void drop_setup(struct task_struct *t)
{
	if (!bpf_task_storage_delete(&setup_store, t))
		count_setup(-1);
}

/* in_container: the current task's cgroup is a known container's, or below
 * one. Only on the rare paths that mark. */
static __always_inline bool in_container(void)
{
	__u64 cg = bpf_get_current_cgroup_id();
	if (bpf_map_lookup_elem(&cg_sets, &cg))
		return true;
	for (int level = 1; level < MAX_CGROUP_DEPTH; level++) {
		__u64 a = bpf_get_current_ancestor_cgroup_id(level);
		if (!a || a == cg)
			break;
		if (bpf_map_lookup_elem(&cg_sets, &a))
			return true;
	}
	return false;
}

/* runtime_setup says whether the current task is the runtime's setup, whose
 * acts the container's rules do not govern. exec: the task is executing a
 * program, which is the container's own unless the task is where its mark
 * was given. */
static __always_inline bool runtime_setup(bool exec)
{
	if (!any_setup())
		return false;
	struct task_struct *t = bpf_get_current_task_btf();
	struct setup_mark *s = bpf_task_storage_get(&setup_store, t->group_leader, 0, 0);
	if (!s)
		return false;
	return !exec || (s->mnt_ns == task_mnt_ns(t) && s->root == task_root(t));
}

/* end_setup ends the current process's mark at an exec elsewhere. (After
 * an exec the task is its thread group's leader: an exec by another thread
 * has released the old leader, and its mark with it.) */
static __always_inline void end_setup(void)
{
	if (!any_setup())
		return;
	struct task_struct *t = bpf_get_current_task_btf();
	struct setup_mark *s = bpf_task_storage_get(&setup_store, t, 0, 0);
	if (s && (s->mnt_ns != task_mnt_ns(t) || s->root != task_root(t)))
		drop_setup(t);
}

#endif
