//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * No programs: this object is compiled only so that bpf2go generates, for
 * enforce/events (what armor-tracer imports), the Go type of the
 * enforcement event and the ABI enums it decodes, from the same header as
 * armor.bpf.c — without armor-tracer embedding the enforcement programs.
 */
#include "../include/armor_types.h"
#include "../include/abi.h"

/* BTF carries only the types something uses. */
const struct event *unused_event __attribute__((unused));
