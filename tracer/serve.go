package tracer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// TelemetrySource is the telemetry programs' side of the tracer (their
// loader, tracer/telemetry): their decoded events, and how many events
// their ring buffer lost so far (cumulative; exported as
// nri_armor_tracer_events_lost_total{source="telemetry"}).
type TelemetrySource interface {
	Events() <-chan telemetry.Event
	Lost() uint64
}

// Serve runs armor-tracer until ctx ends: the enforcement ring buffer
// (reopened whenever nri-armor's pins are created anew), the telemetry
// events of tel (nil: none), the state directory followed, alerts to the
// sinks, /metrics and the stream. progs are sources of BPF program
// statistics besides the enforcement programs' (read through their pins).
// cmd/armor-tracer only parses flags and calls it.
func Serve(ctx context.Context, cfg Config, log logrus.FieldLogger, tel TelemetrySource, progs ...ProgramStats) error {
	dir, err := state.Open(cfg.StateDir, false)
	if err != nil {
		return err
	}
	var sinks []io.Writer
	if cfg.Stdout {
		sinks = append(sinks, os.Stdout)
	}
	if cfg.OutputFile != "" {
		f, err := os.OpenFile(cfg.OutputFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("outputFile: %w", err)
		}
		defer f.Close()
		sinks = append(sinks, f)
	}
	var t *Tracer
	var hub *Hub
	var reading atomic.Bool
	progs = append(progs, PinnedPrograms{Dir: cfg.BPFFS}) // the enforcement programs
	m := NewMetrics(cfg.MetricsPodLabel, func() int { return t.ids.Watched() }, func() int { return hub.Clients() }, progs...)
	hub = NewHub(cfg.StreamBacklog, cfg.StreamQueue, cfg.StreamMaxClients, func(n int) { m.streamDrops.Add(float64(n)) })
	pins := &pinnedDigests{}
	t = New(Options{Config: cfg, State: dir, Digests: pins, Sinks: sinks, Metrics: m, Hub: hub})

	// One server per distinct address: metrics and stream share one when
	// their addresses are equal; "" leaves either out.
	muxes := map[string]*http.ServeMux{}
	muxFor := func(addr string) *http.ServeMux {
		if addr != "" && muxes[addr] == nil {
			muxes[addr] = http.NewServeMux()
		}
		return muxes[addr]
	}
	if mx := muxFor(cfg.MetricsAddress); mx != nil {
		mx.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
		mx.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !reading.Load() {
				http.Error(w, "nri-armor's event ring buffer is not open yet", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok\n"))
		})
	}
	if mx := muxFor(cfg.StreamAddress); mx != nil {
		mx.Handle(StreamPath, hub)
	}
	for addr, mx := range muxes {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: mx, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		log.Infof("serving %s", addr)
	}

	go t.ids.Watch(ctx, cfg.RetryInterval)
	enf := make(chan events.Event, 4096)
	go func() {
		last := "" // log a failure once, not at every retry while nri-armor is down
		for ctx.Err() == nil {
			if err := readPins(ctx, cfg, pins, enf, m, &reading, log); err != nil && err.Error() != last {
				last = err.Error()
				log.Warnf("enforcement events: %v; retrying every %v", err, cfg.RetryInterval)
			} else if err == nil {
				last = ""
			}
			reading.Store(false)
			select {
			case <-ctx.Done():
			case <-time.After(cfg.RetryInterval):
			}
		}
	}()
	var events <-chan telemetry.Event
	if tel != nil {
		events = tel.Events()
		go pollLost(ctx, "telemetry", tel.Lost, m, cfg.RetryInterval)
		if f, ok := tel.(TelemetryFilter); ok {
			// The kernel reports only the cgroups watched: follow the
			// published containers and what each needs.
			go t.ids.SyncTelemetry(ctx, f, cfg.StateMaxAge, log)
		}
	}
	return t.Run(ctx, enf, events)
}

// pollLost follows a source's cumulative count of lost events (lost) into
// nri_armor_tracer_events_lost_total{source} until ctx ends.
func pollLost(ctx context.Context, source string, lost func() uint64, m *Metrics, every time.Duration) {
	m.AddLost(source, 0) // exported from the start
	var seen uint64
	for {
		if n := lost(); n > seen {
			m.AddLost(source, n-seen)
			seen = n
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// pinnedDigests is the set names of the pins currently open.
type pinnedDigests struct{ p atomic.Pointer[events.Pinned] }

func (d *pinnedDigests) SetDigest(id uint32) string {
	if p := d.p.Load(); p != nil {
		return p.SetDigest(id)
	}
	return ""
}

// readPins opens the pins and reads their ring buffer until ctx ends or
// the pins are replaced (nri-armor unpinned and loaded anew: the old ring
// buffer would never see another event).
func readPins(ctx context.Context, cfg Config, pins *pinnedDigests, out chan<- events.Event, m *Metrics, reading *atomic.Bool, log logrus.FieldLogger) error {
	p, err := events.OpenPinned(cfg.BPFFS)
	if err != nil {
		return err
	}
	defer p.Close()
	id, err := mapID(p.Events)
	if err != nil {
		return err
	}
	pins.p.Store(p)
	defer pins.p.Store(nil)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for rctx.Err() == nil {
			select {
			case <-rctx.Done():
				return
			case <-time.After(cfg.RetryInterval):
			}
			q, err := events.OpenPinned(cfg.BPFFS)
			if err != nil {
				continue // pins gone for now: keep reading the open buffer
			}
			if nid, err := mapID(q.Events); err == nil && nid != id {
				log.Infof("nri-armor's pins were replaced: reopening the event ring buffer")
				cancel()
			}
			q.Close()
		}
	}()
	reading.Store(true)
	log.Infof("reading enforcement events from %s", cfg.BPFFS)
	return ReadEnforcement(rctx, p, out, m)
}

func mapID(m *ebpf.Map) (ebpf.MapID, error) {
	info, err := m.Info()
	if err != nil {
		return 0, err
	}
	id, ok := info.ID()
	if !ok {
		return 0, errors.New("the kernel does not report map ids")
	}
	return id, nil
}
