package tracer

import (
	"context"
	"errors"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/nri-armor/nri-armor/bpf"
)

// ReadEnforcement reads nri-armor's pinned enforcement ring buffer until
// ctx ends, decoding each record into out. A record that does not decode
// is counted, never silently skipped. Blocking on out is deliberate: the
// records wait in the kernel's ring buffer meanwhile, which is the only
// place they can wait without the tracer's memory growing.
//
// Losses: the kernel program ignores a full ring buffer (bpf_ringbuf_output
// fails and nothing counts it), so events lost there cannot be counted
// here; nri_armor_tracer_events_lost_total{source="enforcement"} stays 0
// until armor.bpf.c counts its failed outputs in a map.
func ReadEnforcement(ctx context.Context, events *ebpf.Map, out chan<- bpf.Event, m *Metrics) error {
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		rd.Close() // unblocks Read
	}()
	m.lost.WithLabelValues("enforcement").Add(0) // exported from the start
	var rec ringbuf.Record
	for {
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
		}
		ev, err := bpf.DecodeEvent(rec.RawSample)
		if err != nil {
			m.decodeErrs.WithLabelValues("enforcement").Inc()
			continue
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return nil
		}
	}
}
