/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel types nri-armor's programs read, declared with
 * preserve_access_index so that clang records CO-RE relocations: libbpf /
 * cilium/ebpf fix every field offset against the running kernel's BTF at
 * load time. Only the fields used are declared; their order and the
 * structs' sizes here do not matter.
 */
#ifndef ARMOR_TYPES_H
#define ARMOR_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_INODE_STORAGE = 28,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_F_NO_PREALLOC = 1,
	BPF_LOCAL_STORAGE_GET_F_CREATE = 1,
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
	BPF_RB_AVAIL_DATA = 0,
};

typedef struct {
	unsigned int val;
} kuid_t;

struct vfsmount {
	void *mnt_root;
} __attribute__((preserve_access_index));

struct mnt_namespace;

/* fs/mount.h: a vfsmount lives inside its struct mount. */
struct mount {
	struct mount *mnt_parent;
	void *mnt_mountpoint;
	struct vfsmount mnt;
	struct mnt_namespace *mnt_ns;
} __attribute__((preserve_access_index));

struct inode;

struct qstr {
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct dentry *d_parent;
	struct inode *d_inode;
	struct qstr d_name;
} __attribute__((preserve_access_index));

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct fs_struct {
	struct path root;
} __attribute__((preserve_access_index));

struct super_block {
	unsigned long s_magic;
} __attribute__((preserve_access_index));

struct inode {
	unsigned int i_nlink;
	kuid_t i_uid;
	unsigned short i_mode;
	struct super_block *i_sb;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
	struct inode *f_inode;
	unsigned int f_mode;
	unsigned int f_flags;
} __attribute__((preserve_access_index));

struct vm_area_struct {
	struct file *vm_file;
} __attribute__((preserve_access_index));

struct linux_binprm {
	struct file *file;
} __attribute__((preserve_access_index));

struct cred {
	kuid_t uid;
	kuid_t euid;
} __attribute__((preserve_access_index));

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct mnt_namespace {
	struct ns_common ns;
	struct mount *root;
	__u64 seq; /* 0 for an anonymous namespace (a detached tree's) */
} __attribute__((preserve_access_index));

struct nsproxy {
	struct mnt_namespace *mnt_ns;
} __attribute__((preserve_access_index));

struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct css_set {
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));

/* x86: the thread's status (TS_COMPAT while in a 32-bit system call). */
struct thread_info {
	__u32 status;
} __attribute__((preserve_access_index));

/* A task's saved user registers (bpf_task_pt_regs): orig_ax holds the
 * number of the system call it is in, -1 outside one. */
struct pt_regs {
	unsigned long orig_ax;
} __attribute__((preserve_access_index));

struct task_struct {
	struct thread_info thread_info;
	unsigned int flags;
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	const struct cred *cred;
	struct fs_struct *fs;
	struct nsproxy *nsproxy;
	struct css_set *cgroups;
	/* Set during execve only (gone in newer kernels, where only exec
	 * opens files with FMODE_EXEC). */
	unsigned int in_execve : 1;
} __attribute__((preserve_access_index));

struct sock_common {
	unsigned short skc_family;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_type;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

struct socket {
	short type;
	struct sock *sk;
} __attribute__((preserve_access_index));

struct sockaddr {
	unsigned short sa_family;
} __attribute__((preserve_access_index));

struct user_namespace;

/* The context of cgroup/sock_create (struct bpf_sock) and of
 * cgroup/connect4|6 (struct bpf_sock_addr): UAPI, fixed layout. */
struct bpf_sock {
	__u32 bound_dev_if;
	__u32 family;
	__u32 type;
	__u32 protocol;
};

struct bpf_sock_addr {
	__u32 user_family;
	__u32 user_ip4;
	__u32 user_ip6[4];
	__u32 user_port;
	__u32 family;
	__u32 type;
	__u32 protocol;
};

#define FMODE_WRITE 0x2
#define O_TRUNC 01000 /* still in f_flags at file_open; cleared after */
#define NAME_MAX 256
#define FMODE_EXEC 0x20
#define CLONE_INTO_CGROUP 0x200000000ULL
#define __FMODE_EXEC 0x20 /* in f_flags: no open(2) flag can set it */
#define PROT_EXEC 0x4
#define CGROUP_SUPER_MAGIC 0x27e0eb
#define CGROUP2_SUPER_MAGIC 0x63677270
#define EPERM 1
#define ENOMEM 12
#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17

#endif
