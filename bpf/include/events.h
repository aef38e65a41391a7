/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The event ring buffer of a BPF object — nri-armor's enforcement events
 * (bpf/enforce/armor.bpf.c) and armor-tracer's telemetry
 * (bpf/telemetry/telemetry.bpf.c) — with the per-CPU count of events it
 * had no room for and the wake-up rule. Include it once per object, after
 * bpf_helpers.h; the loader sets wakeup_bytes and the ring's size.
 */
#ifndef ARMOR_EVENTS_H
#define ARMOR_EVENTS_H

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

/* Events that found no room, per CPU: readers export them, so a loss is
 * counted, never hidden. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events_lost SEC(".maps");

/* Events are submitted without wake-up; the event that makes the pending
 * data cross a multiple of this forces one, so a reader is woken per
 * batch, not per event (readers also read with a deadline, so a lone event
 * waits at most that long). */
const volatile __u64 wakeup_bytes = 64 * 1024;

static __always_inline void events_count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&events_lost, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* events_wakeup is the wake-up flag for an event of size bytes. Not every
 * event above the threshold: the reader is awake then (it sleeps only once
 * it emptied the ring) or not running, and a forced wake-up costs an
 * interrupt (docs/benchmarks.md has what it measured). Every multiple, not
 * only the first: events made at once on two CPUs can jump over a
 * crossing, and the next one then still wakes the reader. */
static __always_inline __u64 events_wakeup(__u64 size)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	if (avail / wakeup_bytes != (avail + size) / wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* events_output copies size bytes of data into the ring, or counts it lost. */
static __always_inline void events_output(void *data, __u64 size)
{
	if (bpf_ringbuf_output(&events, data, size, events_wakeup(size)))
		events_count_lost();
}

#endif
