/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The path hash: SipHash-2-4 (Aumasson and Bernstein's keyed PRF) under a
 * 128-bit key that the loader draws at random (crypto/rand) the first time
 * it runs after boot and keeps in the pinned map path_key; a loader that
 * finds the key pinned uses it, so the rules already in the maps stay
 * valid across its restarts. The encoder (enforce/bpflsm: encode.go)
 * hashes the rules' texts with the same key and
 * github.com/dchest/siphash. Keyed, because the programs identify a path
 * by (hash, length) and never compare its bytes: with an unkeyed hash a
 * process could compute, offline, a path of its own whose hash is an
 * allowed path's (or a fromSource executable's) and be given that path's
 * verdict. Without the key, which never leaves the kernel maps and the
 * loader's memory, such a path cannot be computed.
 *
 * The programs hash incrementally: a state (v0..v3) absorbs the path's
 * whole 8-byte words as the walk reaches them, and the hash of any prefix
 * is a copy of that state finalized with the prefix's last, partial word.
 */
#ifndef ARMOR_SIPHASH_H
#define ARMOR_SIPHASH_H

struct sip_key {
	__u64 k0;
	__u64 k1;
};

/* One entry, written by the loader before any rule and before the programs
 * are attached; it is never zero. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sip_key);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} path_key SEC(".maps");

struct sip {
	__u64 v0, v1, v2, v3;
};

/* sip_load reads the 8 bytes at p as one word, whatever p's alignment:
 * clang reads a word at a variable place of a char array byte by byte (the
 * BPF target has no unaligned loads, it assumes); the verifier and x86 take
 * the one load. Its only input is p: no bytes at p are written while a
 * path is hashed. */
static __always_inline __u64 sip_load(const void *p)
{
	__u64 w;
	asm volatile("%0 = *(u64 *)(%1 + 0)" : "=r"(w) : "r"(p));
	return w;
}

#define SIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

static __always_inline void sip_round(struct sip *s)
{
	s->v0 += s->v1;
	s->v1 = SIP_ROTL(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = SIP_ROTL(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = SIP_ROTL(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = SIP_ROTL(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = SIP_ROTL(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = SIP_ROTL(s->v2, 32);
}

/* sip_block absorbs one 8-byte word (little-endian, as the bytes lie in
 * memory): two compression rounds. */
static __always_inline void sip_block(struct sip *p, __u64 m)
{
	struct sip s = *p; /* in registers */
	s.v3 ^= m;
	sip_round(&s);
	sip_round(&s);
	s.v0 ^= m;
	*p = s;
}

/* sip_start is the state of the empty message under the key. */
static __always_inline void sip_start(struct sip *s, const struct sip_key *k)
{
	s->v0 = k->k0 ^ 0x736f6d6570736575ULL;
	s->v1 = k->k1 ^ 0x646f72616e646f6dULL;
	s->v2 = k->k0 ^ 0x6c7967656e657261ULL;
	s->v3 = k->k1 ^ 0x7465646279746573ULL;
}

/* sip_final is the hash of a message of n bytes: p has absorbed its n / 8
 * whole words, tail holds its n % 8 last bytes (the rest zero). p is left
 * as it is, to go on absorbing. */
static __always_inline __u64 sip_final(const struct sip *p, __u64 tail, __u32 n)
{
	struct sip s = *p; /* in registers */
	__u64 b = tail | (__u64)n << 56;
	s.v3 ^= b;
	sip_round(&s);
	sip_round(&s);
	s.v0 ^= b;
	s.v2 ^= 0xff;
	sip_round(&s);
	sip_round(&s);
	sip_round(&s);
	sip_round(&s);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

/* sip_mask keeps the first r bytes of a word (r < 8). */
static __always_inline __u64 sip_mask(__u64 w, __u32 r)
{
	return w & ((1ULL << (r * 8)) - 1);
}

#endif
