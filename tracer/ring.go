package tracer

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/nri-armor/nri-armor/enforce/events"
)

// enforcementPoll bounds how long an event that did not wake the reader
// waits in the ring buffer.
const enforcementPoll = 100 * time.Millisecond

// ReadEnforcement reads nri-armor's pinned enforcement ring buffer (p)
// until ctx ends, decoding each record into out. A record that does not
// decode is counted, never silently skipped. Blocking on out is
// deliberate: the records wait in the kernel's ring buffer meanwhile, which
// is the only place they can wait without the tracer's memory growing.
//
// Losses: when the ring buffer is full the kernel program counts the event
// it could not write (pinned events_lost); that count is followed into
// nri_armor_tracer_events_lost_total{source="enforcement"}, including what
// was lost while no tracer was reading.
func ReadEnforcement(ctx context.Context, p *events.Pinned, out chan<- events.Event, m *Metrics) error {
	rd, err := ringbuf.NewReader(p.Events)
	if err != nil {
		return err
	}
	defer rd.Close()
	pctx, stop := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() { defer close(polled); m.FollowLost(pctx, "enforcement", p.Lost, time.Second) }()
	defer func() {
		stop()
		<-polled // the caller may close p once this returns
	}()
	var rec ringbuf.Record
	for {
		if ctx.Err() != nil {
			return nil
		}
		// The kernel wakes readers per batch (a multiple of wakeupBytes
		// pending), not per event: a lone event is found by the next read
		// after this deadline, so it waits at most enforcementPoll.
		rd.SetDeadline(time.Now().Add(enforcementPoll))
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
		}
		ev, err := events.DecodeEvent(rec.RawSample)
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
