/* SPDX-License-Identifier: GPL-2.0 */
/* What the programs of both objects do to keep the verifier convinced. */
#ifndef ARMOR_VERIFIER_H
#define ARMOR_VERIFIER_H

/* bounded(x, mask) is x & mask, computed so that the compiler cannot drop
 * the mask because of an earlier comparison: the verifier needs to see it. */
#define bounded(x, mask) ({ __u32 __v = (x); asm volatile("" : "+r"(__v)); __v & (mask); })

#endif
