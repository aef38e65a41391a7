/* SPDX-License-Identifier: GPL-2.0 */
/* The decisions the hook programs take: a file or an executable by its
 * path (with the open memo in front), a socket, and the executable's
 * identity for fromSource rules. */
#ifndef ARMOR_DECIDE_H
#define ARMOR_DECIDE_H

/* builtin_cgroupfs: the built-in rule applies to a file write — in a
 * container's set. The host set's processes are the runtime, the kubelet and
 * systemd, which write cgroup files to run the node. */
static __always_inline bool builtin_cgroupfs(struct decision *dc, __u8 cls, __u8 write)
{
	return write && cls == CLASS_FILE && !dc->host;
}

/* skip_class: a class without rules and not in allow-list mode cannot
 * decide anything but Allow, so its path need not be walked (container
 * file writes still meet the built-in cgroupfs check), nor a scratch
 * claimed. */
static __always_inline bool skip_class(struct decision *dc, __u8 cls, __u8 write)
{
	struct set_hdr *h = dc->h;
	return !h->kinds[cls & 3] && !h->allowlist[cls & 3] && !builtin_cgroupfs(dc, cls, write);
}

/* unnamed fails closed on a file that has no name (a path past PATH_MAX,
 * reached through a deep working directory; a detached mount tree) in a
 * class with rules or an allow-list, where no rule can be matched, saying
 * why; it returns 1 when the class cannot decide anything (then Allow). */
static __always_inline int unnamed(struct decision *dc, __u8 cls, __u8 write, __u8 block_only, struct dentry *d)
{
	/* Not for the node's own processes: runc opens itself through a bind
	 * mount it has already lazily unmounted (a read-only copy, so that a
	 * container cannot overwrite it); a host policy does not fail them. */
	struct scratch *sc = dc->sc;
	if (dc->host || (!dc->h->kinds[cls & 3] && !dc->h->allowlist[cls & 3]))
		return 1;
	sc->m.best_action = ACT_BLOCK;
	sc->m.block_only = block_only;
	/* The event carries what can be told: the file's own name. */
	long n = bpf_probe_read_kernel_str(sc->ev.res, NAME_MAX, BPF_CORE_READ(d, d_name.name));
	return finish(dc, n > 1 ? (n - 1) & PATH_MASK : 0, write, true, ORIGIN_UNNAMED);
}

/* decide_named decides the file named in sc->ev.res (n: as bpf_d_path
 * returns, > 1), whose owner is the actor or not; *silent says that the
 * verdict is Allow without an event for every hook. */
static __always_inline int decide_named(struct decision *dc, long n, __u8 is_owner, __u8 cls, __u8 write, __u8 block_only,
					bool *silent)
{
	struct scratch *sc = dc->sc;
	struct machine *m = &sc->m;
	__u32 len = (n - 1) & PATH_MASK;
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
		  (m->best_action == ACT_ALLOW || (m->best_action == ACT_NONE && !dc->h->allowlist[cls & 3]));
	return finish(dc, len, write, true, 0);
}

/* decide_file decides a file or an executable by its path; *silent as
 * decide_named. */
static __always_inline int decide_file(struct decision *dc, struct file *f, __u8 cls, __u8 write, __u8 block_only, bool *silent)
{
	struct machine *m = init_match(dc, cls);
	struct task_struct *t = bpf_get_current_task_btf();
	long n = name_file(dc->sc, &f->f_path, t);
	if (n < 0) {
		int r = unnamed(dc, cls, write, block_only, f->f_path.dentry);
		if (r != 1)
			return r;
	}
	if (builtin_cgroupfs(dc, cls, write)) {
		/* Built in: an enforced container may not write to cgroupfs,
		 * which would let a process move itself out of its cgroup,
		 * and out of its rule set. */
		unsigned long magic = BPF_CORE_READ(f, f_inode, i_sb, s_magic);
		if (magic == CGROUP2_SUPER_MAGIC || magic == CGROUP_SUPER_MAGIC) {
			m->best_action = ACT_BLOCK;
			return finish(dc, n > 1 ? (n - 1) & PATH_MASK : 0, write, true, ORIGIN_BUILTIN);
		}
	}
	if (n <= 1)
		return 0; /* no path (anonymous file), or none needed: nothing to match */
	return decide_named(dc, n, f->f_inode->i_uid.val == current_uid(t), cls, write, block_only, silent);
}

/* decide_at is check_at's decision, in a claimed scratch: file, for the
 * file rules; program, for the process rules' explicit Blocks. */
static __always_inline int decide_at(struct decision *dc, struct vfsmount *mnt, struct dentry *d, bool change, bool file,
				     bool program)
{
	init_match(dc, file ? CLASS_FILE : CLASS_PROCESS);
	struct task_struct *t = bpf_get_current_task_btf();
	long n = name_walk(dc->sc, mount_of((__u64)mnt), (__u64)d, t);
	if (n < 0) {
		int r = file ? unnamed(dc, CLASS_FILE, 1, BLOCK_ONLY_NO, d) : 1;
		if (r == 1 && program)
			r = unnamed(dc, CLASS_PROCESS, change, BLOCK_ONLY_RULES, d);
		return r == 1 ? 0 : r;
	}
	if (n <= 1)
		return 0;
	/* A name that does not exist yet will be the actor's. */
	struct inode *ino = BPF_CORE_READ(d, d_inode);
	__u8 is_owner = !ino || BPF_CORE_READ(ino, i_uid.val) == current_uid(t);
	bool silent;
	int r = 0;
	if (file)
		r = decide_named(dc, n, is_owner, CLASS_FILE, 1, BLOCK_ONLY_NO, &silent);
	if (r || !program)
		return r;
	if (file) /* the same name, now for the process rules */
		init_match(dc, CLASS_PROCESS);
	return decide_named(dc, n, is_owner, CLASS_PROCESS, change, BLOCK_ONLY_RULES, &silent);
}

/* check_at decides an act on the file at dentry d on vfsmount mnt (it may
 * not exist yet) where bpf_d_path may not run: with change, a change made
 * without opening it (unlink, rename, link, chmod …), a write for the file
 * rules; with program, for the process rules' explicit Blocks too (a
 * blocked program may not be moved or linked to another name, nor mapped
 * executable by mprotect). The name is walked once for both. */
static __always_inline int check_at(struct vfsmount *mnt, struct dentry *d, bool change, bool program)
{
	struct decision dc;
	if (!enter(&dc, FOR_TASK))
		return 0;
	bool file = change && !skip_class(&dc, CLASS_FILE, 0);
	program = program && dc.h->kinds[CLASS_PROCESS];
	if (!file && !program)
		return 0;
	return in_scratch(&dc, FOR_TASK, file ? CLASS_FILE : CLASS_PROCESS, change, 0,
			  decide_at(&dc, mnt, d, change, file, program));
}

/* refuse_mount: built in, an enforced container whose file or process
 * rules name anything (or allow-list) may not mount, move a mount or
 * pivot_root — a bind mount (after unshare -Urm), an overlay over a
 * directory, a moved mount or a new root is another name for files the
 * rules name, as a hard link is for one (and links are refused there too).
 * The runtime's default AppArmor profile denies mount outright. The event
 * names the mount point. */
static __always_inline int block_mount(struct decision *dc, const struct path *at)
{
	struct scratch *sc = dc->sc;
	struct machine *m = init_match(dc, CLASS_FILE);
	struct dentry *d = BPF_CORE_READ(at, dentry);
	long n = name_walk(sc, mount_of((__u64)BPF_CORE_READ(at, mnt)), (__u64)d, bpf_get_current_task_btf());
	if (n <= 1)
		n = bpf_probe_read_kernel_str(sc->ev.res, NAME_MAX, BPF_CORE_READ(d, d_name.name));
	m->best_action = ACT_BLOCK;
	return finish(dc, n > 1 ? (n - 1) & PATH_MASK : 0, 1, true, ORIGIN_BUILTIN);
}

static __always_inline int refuse_mount(const struct path *at)
{
	struct decision dc;
	if (!enter(&dc, FOR_TASK) || dc.host || (skip_class(&dc, CLASS_FILE, 0) && skip_class(&dc, CLASS_PROCESS, 0)))
		return 0;
	return in_scratch(&dc, FOR_TASK, CLASS_FILE, 1, 0, block_mount(&dc, at));
}

/* check_exec decides a program about to run, by its path. */
static __always_inline int check_exec(struct file *f)
{
	struct decision dc;
	if (!enter(&dc, FOR_EXEC) || skip_class(&dc, CLASS_PROCESS, 0))
		return 0;
	bool silent = false;
	return in_scratch(&dc, FOR_EXEC, CLASS_PROCESS, 0, 0, decide_file(&dc, f, CLASS_PROCESS, 0, 0, &silent));
}

/* decide_memo is check_memo's decision, in a claimed scratch. */
static __always_inline int decide_memo(struct decision *dc, struct file *f, __u8 cls, __u8 write, __u8 block_only, bool exec)
{
	struct scratch *sc = dc->sc;
	/* overlayfs opens the real (upper or lower) file of every file opened
	 * through it, with the overlay's path as a fake path: file_open runs
	 * again, for the same path. The user's open was decided already; a
	 * file whose inode is not its path's inode is such an internal open.
	 * (Checked here, past the cgroup lookup: only enforced processes pay.) */
	if ((cls == CLASS_FILE || exec) && as_number(sc, 0, f->f_inode) != as_number(sc, 1, f->f_path.dentry->d_inode))
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 tag = open_tag(f, t, sc, dc->set_id, cls, dc->h->has_source[cls & 3]);
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
	int ret = decide_file(dc, f, cls, write, block_only, &silent);
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

/* check_memo decides a file by its path (decide_file), with the open memo
 * in front: file_open, and mmap_file for executable mappings. exec: the
 * kernel opens a program to run it (see enter). */
static __always_inline int check_memo(struct file *f, __u8 cls, __u8 write, __u8 block_only, bool exec)
{
	struct decision dc;
	__u8 who = exec ? FOR_EXEC : FOR_TASK;
	if (!enter(&dc, who) || skip_class(&dc, cls, write))
		return 0;
	return in_scratch(&dc, who, cls, write, 0, decide_memo(&dc, f, cls, write, block_only, exec));
}

static long exe_absorb(__u32 i, void *data)
{
	return absorb(((struct loop_ctx *)data)->sc);
}

/* exe_hash is the executable's identity for fromSource: the keyed hash of
 * its path, the len bytes of ev.res (as the encoder hashes a source's
 * path); 0 if the key cannot be read (no rule has that hash). */
static __always_inline __u64 exe_hash(struct scratch *sc, __u32 len)
{
	struct machine *m = &sc->m;
	__u32 zero = 0;
	struct sip_key *k = bpf_map_lookup_elem(&path_key, &zero);
	if (!k)
		return 0;
	sip_start(&m->run, k);
	m->len = len;
	m->run_pos = 0;
	m->run_start = 0;
	struct loop_ctx ctx = {.sc = sc};
	bpf_loop(len / 32 + 1, exe_absorb, &ctx, 0); /* absorb takes up to 32 bytes a call */
	return run_final(sc);
}

/* Socket numbers as the kernel defines them. */
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define SOCK_SEQPACKET 5
#define SOCK_DCCP 6
#define SOCK_PACKET 10 /* obsolete raw frames; AF_INET's is AF_PACKET by the time the hook runs */
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_DCCP 33
#define IPPROTO_SCTP 132
#define IPPROTO_ICMPV6 58
#define IPPROTO_RAW 255
#define IPPROTO_UDPLITE 136
#define IPPROTO_MPTCP 262

/* socket_arg is a socket as an event's arg names it. */
static __always_inline __u32 socket_arg(__u32 family, __u32 type, __u32 protocol)
{
	return (family << 16) | ((type & 0xff) << 8) | (protocol & 0xff);
}

/* decide_socket is check_socket's decision, in a claimed scratch. */
static __always_inline int decide_socket(struct decision *dc, __u32 family, __u32 type, __u32 protocol, bool lsm)
{
	struct scratch *sc = dc->sc;
	struct machine *m = init_match(dc, CLASS_NETWORK);
	if (lsm)
		load_exe(m);
	if (family != AF_PACKET && type == SOCK_RAW && protocol == IPPROTO_RAW) {
		/* IPPROTO_RAW: the process writes whole IP packets of any
		 * protocol (ICMP over it passes an icmp Block otherwise): every
		 * protocol rule covers it, as policy.AnyIPProtocol. */
		push(sc, KIND_PROTO, IPPROTO_ICMP, 0, 0);
		push(sc, KIND_PROTO, IPPROTO_ICMPV6, 0, 0);
		push(sc, KIND_PROTO, IPPROTO_TCP, 0, 0);
		push(sc, KIND_PROTO, IPPROTO_UDP, 0, 0);
		push(sc, KIND_PROTO, IPPROTO_SCTP, 0, 0);
		push(sc, KIND_PROTO, IPPROTO_DCCP, 0, 0);
		push(sc, KIND_SOCKTYPE, type, 0, 0);
	} else if (family != AF_PACKET) {
		push(sc, KIND_PROTO, protocol, 0, 0);
		push(sc, KIND_SOCKTYPE, type, 0, 0);
	} else {
		push(sc, KIND_SOCKTYPE, SOCKTYPE_PACKET, 0, 0);
		if (type == SOCK_RAW || type == SOCK_PACKET)
			push(sc, KIND_SOCKTYPE, SOCK_RAW, 0, 0);
	}
	push(sc, KIND_ALL, 0, 0, 0);
	run(sc);
	sc->ev.arg = socket_arg(family, type, protocol);
	return finish(dc, 0, 0, lsm, 0);
}

/* check_socket decides a socket by protocol (KIND_PROTO: IP protocol number,
 * with 0 read as the kernel resolves it — TCP for stream, UDP for datagram,
 * SCTP for seqpacket, DCCP for SOCK_DCCP sockets — MPTCP as TCP, an
 * IPPROTO_RAW raw socket as every protocol
 * and UDP-Lite as UDP), socket type (KIND_SOCKTYPE: an AF_PACKET socket is
 * SOCKTYPE_PACKET, and also SOCK_RAW when it reads raw frames (SOCK_RAW or
 * the obsolete SOCK_PACKET): `raw` rules cover raw
 * sockets of every family rules cover) and "all" — as policy.SocketNames
 * names a socket. Only inet and packet sockets are network. It returns as
 * an LSM hook does: 0 or -EPERM. */
static __always_inline int check_socket(__u32 family, __u32 type, __u32 protocol, bool lsm)
{
	if (family != AF_INET && family != AF_INET6 && family != AF_PACKET)
		return 0;
	struct decision dc;
	__u8 who = lsm ? FOR_TASK : FOR_CGROUP;
	if (!enter(&dc, who) || skip_class(&dc, CLASS_NETWORK, 0))
		return 0;
	type &= 0xf; /* without SOCK_NONBLOCK / SOCK_CLOEXEC */
	if (family != AF_PACKET) {
		/* Protocol 0 is what the kernel resolves it to (inetsw): TCP
		 * for stream, UDP for datagram, SCTP for seqpacket, DCCP for
		 * SOCK_DCCP sockets. */
		if ((protocol == 0 && type == SOCK_STREAM) || protocol == IPPROTO_MPTCP)
			protocol = IPPROTO_TCP;
		else if ((protocol == 0 && type == SOCK_DGRAM) || protocol == IPPROTO_UDPLITE)
			protocol = IPPROTO_UDP;
		else if (protocol == 0 && type == SOCK_SEQPACKET)
			protocol = IPPROTO_SCTP;
		else if (protocol == 0 && type == SOCK_DCCP)
			protocol = IPPROTO_DCCP;
	}
	return in_scratch(&dc, who, CLASS_NETWORK, 0, socket_arg(family, type, protocol),
			  decide_socket(&dc, family, type, protocol, lsm));
}

/* Cgroup socket programs return 1 to allow and 0 to deny (EPERM). */
static __always_inline int cgroup_verdict(int lsm_ret)
{
	return lsm_ret == 0 ? 1 : 0;
}

#endif
