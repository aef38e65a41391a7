//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nri-armor's enforcement programs.
 *
 * Every hook starts the same way: the current task's cgroup v2 id is looked
 * up in cg_sets; a task whose cgroup has no rule set returns at once (that is
 * the whole cost for unprotected processes). Otherwise the event's resource
 * (path, protocol, capability) is matched against the set's rules, which the
 * loader (enforce/bpflsm: encode.go) wrote into the rules map.
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
 * Paths are a file's name in its mount namespace (bpf_d_path, or name.h's
 * walk up the tree; up to PATH_MAX) and are hashed while walked, with
 * SipHash-2-4 under a random per-boot key that only the kernel maps and the
 * loader hold (siphash.h): the programs never compare a path's bytes, so an
 * unkeyed hash would let a process pick a path that hashes like an allowed
 * one. At every '/' the prefix's hash is a candidate for recursive
 * directory rules and pattern buckets; at the end the whole path is one for
 * exact rules, its last directory for the direct-children rules, its base
 * name for execname rules; the executable's path, hashed the same way, is
 * the identity fromSource rules name. The walk, the lookups
 * and the glob steps all run in one bpf_loop as a small state machine: one
 * callback, no nesting, so the verifier's work stays small. Cost follows the
 * path's length and depth, never the number of rules.
 *
 * This file holds only the hook programs; what they do is in the headers
 * beside it, by job: maps.h (the kernel state the loader fills),
 * siphash.h (the path hash and its key), match.h
 * (the path walk and the matcher), sets.h (which set applies to a task),
 * memo.h (the open memo), name.h (a file's name in its mount namespace),
 * decide.h (the decisions per class), setup.h (the
 * runtime's own setup, which the rules do not govern). The numbers
 * shared with Go are in ../include/abi.h.
 */
#include "../include/armor_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "../include/abi.h"
#include "../include/verifier.h"
#include "maps.h"
#include "siphash.h"
#include "match.h"
#include "setup.h"
#include "sets.h"
#include "memo.h"
#include "name.h"
#include "decide.h"

char LICENSE[] SEC("license") = "GPL";

#define INVALIDATES_MEMOS(hook)          \
	SEC("lsm/" #hook)                \
	int BPF_PROG(armor_##hook)       \
	{                                \
		return memo_invalidate(); \
	}

INVALIDATES_MEMOS(inode_rename)
INVALIDATES_MEMOS(sb_umount)

/* mount(2)'s operations that only change a mount's flags or propagation
 * (unshare -m makes its mounts private) and give no file a new name. */
#define MS_REMOUNT 32
#define MS_UNBINDABLE (1 << 17)
#define MS_PRIVATE (1 << 18)
#define MS_SLAVE (1 << 19)
#define MS_SHARED (1 << 20)
#define MS_RENAMES_NOTHING (MS_REMOUNT | MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED)

/* Mounting gives files other names, and changes what every memo was made
 * for (decide.h: refuse_mount for who may). */
SEC("lsm/sb_mount")
int BPF_PROG(armor_sb_mount, const char *dev_name, const struct path *path, const char *type, unsigned long flags)
{
	memo_invalidate();
	if (flags & MS_RENAMES_NOTHING)
		return 0;
	return refuse_mount(path);
}

SEC("lsm/move_mount")
int BPF_PROG(armor_move_mount, const struct path *from_path, const struct path *to_path)
{
	memo_invalidate();
	return refuse_mount(to_path);
}

SEC("lsm/sb_pivotroot")
int BPF_PROG(armor_sb_pivotroot, const struct path *old_path, const struct path *new_path)
{
	memo_invalidate();
	return refuse_mount(new_path);
}

/* The kernel opening a program to run it (execve's open of the program and
 * of its ELF interpreter) is execution, not reading: file rules do not apply,
 * explicit process Block rules do (as for mmap_file; the program itself is
 * decided in full at bprm_check_security). On kernels that still have
 * uselib(2), which opens with FMODE_EXEC too, only an open during execve
 * counts (in_execve). */
static __always_inline bool exec_open(struct file *file)
{
	/* Older kernels mark it in f_flags only, newer ones in f_mode too. */
	if (!(file->f_mode & FMODE_EXEC) && !(file->f_flags & __FMODE_EXEC))
		return false;
	struct task_struct *t = bpf_get_current_task_btf();
	return !bpf_core_field_exists(t->in_execve) || BPF_CORE_READ_BITFIELD(t, in_execve);
}

SEC("lsm/file_open")
int BPF_PROG(armor_file_open, struct file *file)
{
	if (exec_open(file))
		return check_memo(file, CLASS_PROCESS, 0, BLOCK_ONLY_RULES, true);
	/* O_TRUNC empties the file even when opened for reading only: a write. */
	__u8 write = (file->f_mode & FMODE_WRITE) || (file->f_flags & O_TRUNC);
	return check_memo(file, CLASS_FILE, write, BLOCK_ONLY_NO, false);
}

/* Built in, as writing cgroupfs: an enforced container may not make a
 * cgroup. A child cgroup is in no set (lookups are by the task's own
 * cgroup), so a process cloned or moved into one would leave its rules. The
 * event names the new cgroup (its own name: the parent has no path here). */
static __always_inline int block_mkdir(struct decision *dc, struct dentry *dentry)
{
	struct scratch *sc = dc->sc;
	struct machine *m = init_match(dc, CLASS_FILE);
	long n = bpf_probe_read_kernel_str(sc->ev.res, NAME_MAX, BPF_CORE_READ(dentry, d_name.name));
	m->best_action = ACT_BLOCK;
	return finish(dc, n > 1 ? (n - 1) & PATH_MASK : 0, 1, true, ORIGIN_BUILTIN);
}

SEC("lsm/inode_mkdir")
int BPF_PROG(armor_inode_mkdir, struct inode *dir, struct dentry *dentry, unsigned short mode)
{
	unsigned long magic = dir->i_sb->s_magic;
	if (magic != CGROUP2_SUPER_MAGIC && magic != CGROUP_SUPER_MAGIC)
		return 0;
	struct decision dc;
	if (!enter(&dc, FOR_TASK) || dc.host)
		return 0;
	return in_scratch(&dc, FOR_TASK, CLASS_FILE, 1, 0, block_mkdir(&dc, dentry));
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
	return check_memo(file, CLASS_PROCESS, 0, BLOCK_ONLY_RULES, false);
}

/* Changes made without opening the file are writes to it (check_at):
 * removing, creating, renaming, linking, chmod, chown, truncate(2). */
SEC("lsm/path_unlink")
int BPF_PROG(armor_path_unlink, const struct path *dir, struct dentry *dentry)
{
	return check_at(dir->mnt, dentry, true, false);
}

SEC("lsm/path_rmdir")
int BPF_PROG(armor_path_rmdir, const struct path *dir, struct dentry *dentry)
{
	return check_at(dir->mnt, dentry, true, false);
}

SEC("lsm/path_mkdir")
int BPF_PROG(armor_path_mkdir, const struct path *dir, struct dentry *dentry, unsigned short mode)
{
	return check_at(dir->mnt, dentry, true, false);
}

SEC("lsm/path_mknod")
int BPF_PROG(armor_path_mknod, const struct path *dir, struct dentry *dentry, unsigned short mode, unsigned int dev)
{
	return check_at(dir->mnt, dentry, true, false);
}

SEC("lsm/path_symlink")
int BPF_PROG(armor_path_symlink, const struct path *dir, struct dentry *dentry, const char *old_name)
{
	return check_at(dir->mnt, dentry, true, false);
}

/* A hard link is another name for the file: making one is a change to it,
 * and a program a Block rule names may not get one. */
SEC("lsm/path_link")
int BPF_PROG(armor_path_link, struct dentry *old_dentry, const struct path *new_dir, struct dentry *new_dentry)
{
	int r = check_at(new_dir->mnt, old_dentry, true, true);
	return r ? r : check_at(new_dir->mnt, new_dentry, true, false);
}

/* mv /usr/bin/apt-get /tmp/x would run a blocked program by another name;
 * renaming over a protected file replaces it. */
SEC("lsm/path_rename")
int BPF_PROG(armor_path_rename, const struct path *old_dir, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry, unsigned int flags)
{
	int r = check_at(old_dir->mnt, old_dentry, true, true);
	return r ? r : check_at(new_dir->mnt, new_dentry, true, false);
}

SEC("lsm/path_truncate")
int BPF_PROG(armor_path_truncate, const struct path *path)
{
	return check_at(path->mnt, path->dentry, true, false);
}

SEC("lsm/path_chmod")
int BPF_PROG(armor_path_chmod, const struct path *path, unsigned short mode)
{
	return check_at(path->mnt, path->dentry, true, false);
}

SEC("lsm/path_chown")
int BPF_PROG(armor_path_chown, const struct path *path, unsigned int uid, unsigned int gid)
{
	return check_at(path->mnt, path->dentry, true, false);
}

/* Extended attributes: the hooks get a dentry and no mount, so the file
 * has no name in the namespace to match rules against. The security.* and
 * trusted.* ones (file capabilities, security labels, overlayfs's own) are
 * refused, fail closed, where the file class has rules or an allow-list, as
 * a file the kernel cannot name (decide.h: unnamed); user.* ones are data
 * beside the file, never its contents or its permissions, and pass. */
static __always_inline int xattr_unnamed(struct decision *dc, struct dentry *d)
{
	init_match(dc, CLASS_FILE);
	int r = unnamed(dc, CLASS_FILE, 1, BLOCK_ONLY_NO, d);
	return r == 1 ? 0 : r;
}

static __always_inline int check_xattr(struct dentry *d, const char *name)
{
	__u64 ns[2] = {};
	bpf_probe_read_kernel_str(ns, 9, name);
	/* "security" or "trusted.", as immediates (no read-only data). */
	if (ns[0] != 0x7974697275636573ULL && ns[0] != 0x2e64657473757274ULL)
		return 0;
	struct decision dc;
	if (!enter(&dc, FOR_TASK) || dc.host || skip_class(&dc, CLASS_FILE, 0))
		return 0;
	return in_scratch(&dc, FOR_TASK, CLASS_FILE, 1, 0, xattr_unnamed(&dc, d));
}

/* (The first argument is a user namespace or, from 6.3, an idmap.) */
SEC("lsm/inode_setxattr")
int BPF_PROG(armor_inode_setxattr, void *idmap, struct dentry *dentry, const char *name)
{
	return check_xattr(dentry, name);
}

SEC("lsm/inode_removexattr")
int BPF_PROG(armor_inode_removexattr, void *idmap, struct dentry *dentry, const char *name)
{
	return check_xattr(dentry, name);
}

/* Mapping a file readable, then making it executable, is mmap_file's case
 * by another way. */
SEC("lsm/file_mprotect")
int BPF_PROG(armor_file_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot)
{
	struct file *f = vma->vm_file;
	if (!f || !(prot & PROT_EXEC))
		return 0;
	return check_at(f->f_path.mnt, f->f_path.dentry, false, true);
}

/* fromSource rules hold both ways only for a known program (a sourced
 * Block applies to the program it names): an exec in a cgroup whose set has
 * fromSource rules gets its task's exe_store entry here, where it can still
 * be refused (ENOMEM) when there is no memory for it — rather than run on
 * with no identity, or its parent's (bprm_committed_creds fills it in). */
static __always_inline int exe_entry(void)
{
	__u64 cgid;
	bool host;
	struct cg_val *v = lookup_set(&cgid, &host);
	if (!v || !(v->hdr.has_source[0] | v->hdr.has_source[1] | v->hdr.has_source[2] | v->hdr.has_source[3] | v->hdr.syscalls))
		return 0;
	if (bpf_task_storage_get(&exe_store, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
		return 0;
	return -ENOMEM;
}

SEC("lsm/bprm_check_security")
int BPF_PROG(armor_bprm_check, struct linux_binprm *bprm)
{
	int r = check_exec(bprm->file);
	return r ? r : exe_entry();
}

/* After a successful exec: the runtime's setup ends if the program is the
 * container's (setup.h); and the new executable of the task (its path's
 * keyed hash, siphash.h) is remembered for fromSource rules, only in
 * cgroups that have a set. */
SEC("lsm/bprm_committed_creds")
int BPF_PROG(armor_bprm_committed, struct linux_binprm *bprm)
{
	end_setup();
	struct decision dc;
	bool host;
	struct cg_val *v = lookup_set(&dc.cgid, &host);
	if (!v)
		return 0;
	dc.set_id = v->set_id;
	dc.h = &v->hdr;
	dc.host = host;
	/* A program the kernel cannot name (past PATH_MAX), or named with no
	 * memory to do it in, is no source at all (len 0), not the one before
	 * it. */
	__u32 len = 0;
	__u64 hash = 0;
	if (claim(&dc, FOR_TASK)) {
		long n = name_file(dc.sc, &bprm->file->f_path, bpf_get_current_task_btf());
		len = n > 1 ? (n - 1) & PATH_MASK : 0;
		if (len)
			hash = exe_hash(dc.sc, len);
		release(&dc, FOR_TASK);
	}
	struct exe_info *x = bpf_task_storage_get(&exe_store, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (x) {
		x->hash = hash;
		x->len = len;
		x->container = !host;
	}
	return 0;
}

/* A new task runs its parent's executable until it execs: copy the entry. */
/* Built in, as making a cgroup: an enforced container may not clone a
 * process into a cgroup (clone3 CLONE_INTO_CGROUP, which takes a read-only
 * directory): into a child cgroup the node made, the child would be in no
 * set. The event names the flag. */
static __always_inline int block_clone(struct decision *dc)
{
	struct scratch *sc = dc->sc;
	struct machine *m = init_match(dc, CLASS_FILE);
	m->best_action = ACT_BLOCK;
	/* "CLONE_INTO_CGROUP", as immediates (no read-only data). */
	__u64 *w = (__u64 *)sc->ev.res;
	w[0] = 0x4e495f454e4f4c43ULL; /* CLONE_IN */
	w[1] = 0x554f5247435f4f54ULL; /* TO_CGROU */
	w[2] = 0x50;                  /* P */
	return finish(dc, 17, 1, true, ORIGIN_BUILTIN);
}

static __always_inline int clone_into_cgroup(void)
{
	struct decision dc;
	if (!enter(&dc, FOR_TASK) || dc.host)
		return 0;
	return in_scratch(&dc, FOR_TASK, CLASS_FILE, 1, 0, block_clone(&dc));
}

SEC("lsm/task_alloc")
int BPF_PROG(armor_task_alloc, struct task_struct *task, unsigned long clone_flags)
{
	if ((__u64)clone_flags & CLONE_INTO_CGROUP) {
		int r = clone_into_cgroup();
		if (r)
			return r;
	}
	struct exe_info *parent = bpf_task_storage_get(&exe_store, bpf_get_current_task_btf(), 0, 0);
	if (!parent)
		return 0;
	struct exe_info *child = bpf_task_storage_get(&exe_store, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!child)
		return -ENOMEM; /* a child with no program would slip past sourced Blocks */
	*child = *parent;
	return 0;
}

/* The runtime's setup tasks (setup.h): a process moved into a cgroup (all
 * its threads: cgroup.procs) by another task that is outside every
 * container, when it has not exec'd in a container. */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(armor_cgroup_attach, struct cgroup *dst, const char *path, struct task_struct *task, bool threadgroup)
{
	if (!threadgroup || BPF_CORE_READ(task, tgid) == (int)(bpf_get_current_pid_tgid() >> 32))
		return 0; /* one thread, or a process moving itself */
	/* (A host set records the node's programs too: only one exec'd in a
	 * container's cgroup makes the task a container's.) */
	struct exe_info *x = bpf_task_storage_get(&exe_store, task, 0, 0);
	if ((x && x->container) || in_container())
		return 0;
	mark_setup(task, bpf_get_current_task_btf(), NULL);
	return 0;
}

/* ... a process forked by a marked one (its threads share its leader's
 * mark); and a process forked straight into a known container's cgroup
 * (clone3 CLONE_INTO_CGROUP) by a parent outside every container. Before the
 * child first runs. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(armor_process_fork, struct task_struct *parent, struct task_struct *child)
{
	if (child->pid != child->tgid)
		return 0; /* a thread */
	struct setup_mark *pm = any_setup() ? bpf_task_storage_get(&setup_store, parent->group_leader, 0, 0) : NULL;
	if (pm) {
		mark_setup(child, NULL, pm);
		return 0;
	}
	__u64 cg = BPF_CORE_READ(child, cgroups, dfl_cgrp, kn, id);
	if (cg == bpf_get_current_cgroup_id())
		return 0; /* the common case: a fork stays in its parent's cgroup */
	if (!bpf_map_lookup_elem(&cg_sets, &cg) || in_container())
		return 0;
	mark_setup(child, parent, NULL);
	return 0;
}

/* A marked process that ends before its exec (a failed start) gives its
 * mark back. */
SEC("lsm/task_free")
int BPF_PROG(armor_task_free, struct task_struct *task)
{
	if (any_setup())
		drop_setup(task);
	return 0;
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

static __always_inline int decide_cap(struct decision *dc, int cap)
{
	struct machine *m = init_match(dc, CLASS_CAPS);
	load_exe(m);
	push(dc->sc, KIND_CAP, (__u32)cap, 0, 0);
	run(dc->sc);
	dc->sc->ev.arg = cap;
	return finish(dc, 0, 0, true, 0);
}

SEC("lsm/capable")
int BPF_PROG(armor_capable, const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts)
{
	struct decision dc;
	if (!enter(&dc, FOR_TASK) || skip_class(&dc, CLASS_CAPS, 0))
		return 0;
	return in_scratch(&dc, FOR_TASK, CLASS_CAPS, 0, cap, decide_cap(&dc, cap));
}

/* Syscall rules with fromSource (bpf/enforce/maps.h, sys_rules): seccomp
 * sees a call's number, never the executable making it. fmod_ret on the
 * syscalls' own entry points (__x64_sys_*) would need the kernel's
 * error-injection list, which kernels built without
 * CONFIG_FUNCTION_ERROR_INJECTION (Debian's) do not have: the verifier
 * refuses them. So the call is decided at an LSM hook that every call of
 * it with an effect passes (enforce/bpflsm, syscallHooks), by the number
 * of the system call the task is in — its saved registers' orig_ax, in the
 * 64-bit table or the 32-bit one (TS_COMPAT: int 0x80, sysenter) — and
 * its executable's identity (exe_store, as the other classes' fromSource).
 * One program; the loader loads it once per hook (its link's cookie
 * numbers the hook), and attaches it only while a loaded set names a
 * system call that passes the hook. */
#define TS_COMPAT 0x0002
#define X32_SYSCALL_BIT 0x40000000
#define PF_KTHREAD 0x00200000

SEC("lsm/path_chmod") /* the loader attaches it to each hook it needs */
int BPF_PROG(armor_sys)
{
	struct decision dc;
	if (!enter(&dc, FOR_TASK) || !dc.h->syscalls)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	if (t->flags & PF_KTHREAD)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs)
		return 0;
	long nr = (long)regs->orig_ax;
	if (nr < 0)
		return 0; /* not in a system call */
	struct exe_info *x = bpf_task_storage_get(&exe_store, t, 0, 0);
	if (!x || !x->len)
		return 0; /* no executable known: no fromSource rule matches */
	struct sys_key k = {};
	k.set_id = dc.set_id;
	k.abi = (t->thread_info.status & TS_COMPAT) ? SYS_ABI_IA32 : SYS_ABI_64;
	k.nr = (__u16)(nr & ~X32_SYSCALL_BIT); /* x32 calls: the 64-bit numbers */
	k.hook = (__u8)bpf_get_attach_cookie(ctx);
	k.src_len = x->len;
	k.src_hash = x->hash;
	struct verdict *v = bpf_map_lookup_elem(&sys_rules, &k);
	if (!v || v->action < ACT_AUDIT)
		return 0;
	__u8 action = v->action;
	int ret = action == ACT_BLOCK ? -EPERM : 0;
	__u64 size = __builtin_offsetof(struct event, res);
	struct event *e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e) {
		events_count_lost();
		return ret;
	}
	event_head(e, &dc, v->rule_id, ret, CLASS_SYSCALLS, action, ORIGIN_RULE, 0, 0, true);
	e->arg = ((__u32)k.abi << 16) | k.nr;
	bpf_ringbuf_submit(e, events_wakeup(size));
	return ret;
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
