/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Naming a file as its mount namespace does, whatever the task's root.
 *
 * bpf_d_path names a file from the caller's root: after chroot("/usr"),
 * /usr/bin/apt-get is "/bin/apt-get", and after chroot("/etc") an open of
 * "/shadow" is /etc/shadow; a file on a detached mount tree (open_tree) is
 * named from the top of that tree. Rules name files as the container sees
 * them from its root, so such names would slip past them.
 *
 * So a file is named by bpf_d_path only when that is its name in the
 * namespace — the task's root is the namespace's root directory and the
 * file's mount is in the task's namespace, or is one of the kernel's own
 * (a memfd's) or another namespace's (plain_name), which costs a few
 * loads and is nearly always so. Otherwise the name is built by walking up
 * from the file, dentry by dentry and mount by mount, to the top of the
 * namespace, ignoring the task's root; a file whose walk ends elsewhere (a
 * detached tree, a lazily unmounted one), or deeper than NAME_PARTS
 * components, has no name: the hooks fail closed on it as on a path past
 * PATH_MAX.
 */
#ifndef ARMOR_NAME_H
#define ARMOR_NAME_H

#define NAME_STEPS 192 /* components and mount hops */
#define MNT_NS_INTERNAL ((__u64)-22) /* fs/mount.h: ERR_PTR(-EINVAL), the kernel's internal mounts */

/* mount_of is the struct mount around a vfsmount (as numbers). */
static __always_inline __u64 mount_of(__u64 vfsmnt)
{
	return vfsmnt - bpf_core_field_offset(struct mount, mnt);
}

/* plain_name: bpf_d_path's name for p, in task t, is the namespace's. */
static __always_inline bool plain_name(const struct path *p, struct task_struct *t)
{
	__u64 ns = (__u64)BPF_CORE_READ(t, nsproxy, mnt_ns);
	struct mount *fm = (void *)mount_of((__u64)BPF_CORE_READ(p, mnt));
	__u64 fns = (__u64)BPF_CORE_READ(fm, mnt_ns);
	if (fns == MNT_NS_INTERNAL)
		return true; /* the kernel's own (a memfd, a pipe): named as ever, by no rule but a posture */
	if (fns != ns)
		/* Another namespace's mount — a file reached through a descriptor
		 * from before a setns or unshare (runc's exec fifo) — is named
		 * from that namespace's top, as bpf_d_path does; a detached tree
		 * (an anonymous namespace's) or an unmounted one has no name. */
		return fns && BPF_CORE_READ((struct mnt_namespace *)fns, seq) != 0;
	__u64 top = (__u64)BPF_CORE_READ((struct mnt_namespace *)ns, root);
	struct vfsmount *rv = BPF_CORE_READ(t, fs, root.mnt);
	if ((__u64)BPF_CORE_READ(t, fs, root.dentry) != (__u64)BPF_CORE_READ(rv, mnt_root))
		return false; /* chroot into a directory */
	struct mount *rm = (void *)mount_of((__u64)rv);
	if ((__u64)rm == top)
		return true;
	/* The namespace's root directory: the mount on the top's root (where
	 * pivot_root leaves a container's root, and the host's / is). */
	return (__u64)BPF_CORE_READ(rm, mnt_parent) == top &&
	       (__u64)BPF_CORE_READ(rm, mnt_mountpoint) == (__u64)BPF_CORE_READ((struct mount *)top, mnt.mnt_root);
}

struct namer {
	struct scratch *sc;
	__u64 d, m; /* where the walk is: a dentry and its struct mount */
	__u64 top;
	__u32 n;
	__s32 state; /* 0 walking, 1 named, -1 no name */
};

/* name_up is one step up: to the parent directory, or from a mount's root
 * to where it is mounted. */
static long name_up(__u32 i, void *data)
{
	struct namer *w = data;
	struct mount *m = (void *)w->m;
	if (w->d == (__u64)BPF_CORE_READ(m, mnt.mnt_root)) {
		__u64 parent = (__u64)BPF_CORE_READ(m, mnt_parent);
		if (parent == w->m) {
			w->state = w->m == w->top ? 1 : -1;
			return 1;
		}
		w->d = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		w->m = parent;
		return 0;
	}
	/* (Through a local: inside BPF_CORE_READ, w->d would be relocated
	 * against the kernel's types too.) */
	struct dentry *d = (void *)w->d;
	__u64 p = (__u64)BPF_CORE_READ(d, d_parent);
	if (p == w->d || w->n >= NAME_PARTS) {
		w->state = -1; /* the root of a tree mounted nowhere, or too deep */
		return 1;
	}
	w->sc->parts[w->n & (NAME_PARTS - 1)] = w->d;
	w->n++;
	w->d = p;
	return 0;
}

struct name_writer {
	struct scratch *sc;
	__u32 k, pos;
	bool fail;
};

/* name_down writes the next component, from the top down. */
static long name_down(__u32 i, void *data)
{
	struct name_writer *w = data;
	if (!w->k)
		return 1;
	w->k--;
	struct dentry *d = (void *)w->sc->parts[w->k & (NAME_PARTS - 1)];
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	__u32 pos = w->pos;
	if (pos >= PATH_MAX - 1) {
		w->fail = true;
		return 1;
	}
	w->sc->ev.res[pos & PATH_MASK] = '/';
	pos++;
	/* Up to NAME_MAX bytes at pos: the scratch's slack follows res. */
	long n = bpf_probe_read_kernel_str(&w->sc->ev.res[pos & PATH_MASK], NAME_MAX, name);
	if (n <= 1 || pos + n - 1 >= PATH_MAX) {
		w->fail = true;
		return 1;
	}
	w->pos = pos + n - 1;
	return 0;
}

/* name_walk names the file at dentry d on struct mount m into sc->ev.res
 * by walking up to the top of t's mount namespace; it returns as
 * bpf_d_path does: the length with the terminating NUL, or a negative
 * number for no name. */
static __always_inline long name_walk(struct scratch *sc, __u64 m, __u64 d, struct task_struct *t)
{
	struct namer w = {.sc = sc, .d = d, .m = m, .top = (__u64)BPF_CORE_READ(t, nsproxy, mnt_ns, root)};
	bpf_loop(NAME_STEPS, name_up, &w, 0);
	if (w.state != 1)
		return -1;
	if (!w.n) {
		sc->ev.res[0] = '/';
		sc->ev.res[1] = 0;
		return 2;
	}
	struct name_writer nw = {.sc = sc, .k = w.n};
	bpf_loop(NAME_PARTS, name_down, &nw, 0);
	if (nw.fail || nw.k)
		return -1;
	sc->ev.res[nw.pos & PATH_MASK] = 0;
	return nw.pos + 1;
}

/* name_file names p (a file's path) as name_walk does, by bpf_d_path when
 * that is the same name. */
static __always_inline long name_file(struct scratch *sc, const struct path *p, struct task_struct *t)
{
	if (plain_name(p, t))
		return bpf_d_path((struct path *)p, sc->ev.res, PATH_MAX);
	return name_walk(sc, mount_of((__u64)BPF_CORE_READ(p, mnt)), (__u64)BPF_CORE_READ(p, dentry), t);
}

#endif
