/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The open memo, and what invalidates it.
 */
#ifndef ARMOR_MEMO_H
#define ARMOR_MEMO_H

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

#define MEMO_SEED 0xcbf29ce484222325ULL /* any constant: the tag is not a path's identity */

static __always_inline __u64 mix(__u64 h, __u64 v)
{
	h = (h ^ v) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 31);
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
 * container_of, which only bpf_probe_read allows (a noticeable part of a
 * hit: docs/benchmarks.md). It stays: a mount namespace is copied and torn down
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
	__u64 h = mix(MEMO_SEED, ep->e[0]);
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

/* The hooks that change what a path is: each invalidates every memo. */
static __always_inline int memo_invalidate(void)
{
	__u32 zero = 0;
	struct memo_epochs *ep = bpf_map_lookup_elem(&memo_epoch, &zero);
	if (ep)
		__sync_fetch_and_add(&ep->e[0], 1);
	return 0;
}

#endif
