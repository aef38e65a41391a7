package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer"
	"github.com/nri-armor/nri-armor/tracer/alert"
	"github.com/nri-armor/nri-armor/tracer/stream"
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

// Run runs armor-tracer as cfg says until ctx ends: it loads the telemetry
// programs when cfg.Telemetry asks for them (their tracepoints that did not
// attach are logged, not fatal), then Serves. cmd/armor-tracer only parses
// flags, handles signals and calls it.
func Run(ctx context.Context, cfg Config, log logrus.FieldLogger) error {
	var tel TelemetrySource
	var progs []tracer.ProgramStats
	if cfg.Telemetry {
		k, err := OpenTelemetry(ctx, cfg)
		if err != nil {
			return fmt.Errorf("telemetry: %w", err)
		}
		defer k.Close()
		for name, err := range k.Attached() {
			if err != nil {
				log.Warnf("telemetry %s: not attached: %v", name, err)
			}
		}
		tel, progs = k, append(progs, k)
	}
	return Serve(ctx, cfg, log, tel, progs...)
}

// Serve runs armor-tracer until ctx ends: the enforcement ring buffer
// (reopened whenever nri-armor's pins are created anew), the telemetry
// events of tel (nil: none), the state directory followed, alerts to the
// sinks, /metrics and the stream, each on a listener of its own (a stream
// beyond loopback without a token is refused here too, whoever built cfg).
// progs are sources of BPF program statistics besides the enforcement
// programs' (read through their pins).
func Serve(ctx context.Context, cfg Config, log logrus.FieldLogger, tel TelemetrySource, progs ...tracer.ProgramStats) error {
	if err := cfg.validateStream(); err != nil {
		return err
	}
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
	var t *tracer.Tracer
	var hub *stream.Hub
	var reading atomic.Bool
	progs = append(progs, PinnedPrograms{Dir: cfg.BPFFS}) // the enforcement programs
	m := tracer.NewMetrics(cfg.MetricsPodLabel, func() int { return t.Identity().Watched() }, func() int { return hub.Clients() }, progs...)
	hub = stream.NewHub(cfg.StreamBacklog, cfg.StreamQueue, cfg.StreamMaxClients, m.AddStreamDrops)
	pins := &pinnedDigests{}
	t = tracer.New(tracer.Options{Config: cfg.Config, State: dir, Digests: pins, Sinks: sinks, Metrics: m, Hub: hub})

	hub.LimitPerPeer(cfg.StreamMaxClientsPerPeer)

	// Two listeners: the metrics may be on the pod IP for Prometheus, the
	// stream is on one of its own (loopback, a unix socket, or behind a
	// token): it carries every pod's alerts. "" leaves either out.
	metrics := http.NewServeMux()
	metrics.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	metrics.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !reading.Load() {
			http.Error(w, "nri-armor's event ring buffer is not open yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	logs := http.NewServeMux()
	if cfg.StreamTokenFile != "" {
		if _, err := readToken(cfg.StreamTokenFile); err != nil {
			return fmt.Errorf("streamTokenFile: %w", err)
		}
		logs.Handle(alert.StreamPath, &bearer{file: cfg.StreamTokenFile, next: hub, log: log})
	} else {
		logs.Handle(alert.StreamPath, hub)
	}
	// Every listener is open before any is served: once /readyz answers,
	// the stream takes connections too.
	type listener struct {
		what string
		ln   net.Listener
		h    http.Handler
	}
	var lns []listener
	for _, l := range []struct {
		what, addr string
		h          http.Handler
	}{{"/metrics and /readyz", cfg.MetricsAddress, metrics}, {"the alert stream " + alert.StreamPath, cfg.StreamAddress, logs}} {
		if l.addr == "" {
			continue
		}
		ln, err := listen(l.addr)
		if err != nil {
			for _, o := range lns {
				o.ln.Close()
			}
			return fmt.Errorf("%s: %w", l.what, err)
		}
		lns = append(lns, listener{l.what, ln, l.h})
	}
	for _, l := range lns {
		srv := &http.Server{Handler: l.h, ReadHeaderTimeout: 10 * time.Second, ConnContext: peerContext}
		go func() { _ = srv.Serve(l.ln) }()
		defer srv.Close()
		log.Infof("serving %s on %s", l.what, l.ln.Addr())
	}

	go t.Identity().Watch(ctx, cfg.RetryInterval)
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
		go m.FollowLost(ctx, "telemetry", tel.Lost, cfg.RetryInterval)
		if f, ok := tel.(tracer.TelemetryFilter); ok {
			// The kernel reports only the cgroups watched: follow the
			// published containers and what each needs.
			go t.Identity().SyncTelemetry(ctx, f, cfg.StateMaxAge, log)
		}
	}
	var audit chan tracer.AuditRecord
	if cfg.SeccompAudit || cfg.AppArmorAudit {
		al, err := OpenAuditLog(cfg.ProcRoot)
		if err != nil {
			// Not fatal: every other alert still comes; say what is missing.
			log.Warnf("audit records: %v: the alerts of syscall rules (seccomp) and of AppArmor profiles are off", err)
		} else {
			al.Seccomp, al.AppArmor = cfg.SeccompAudit, cfg.AppArmorAudit
			audit = make(chan tracer.AuditRecord, 1024)
			go func() {
				if err := al.Read(ctx, audit, func(n uint64) { m.AddLost("audit", n) }); err != nil {
					log.Errorf("%v: the alerts of syscall rules (seccomp) and of AppArmor profiles stop", err)
				}
			}()
		}
	}
	return t.Run(ctx, enf, events, audit)
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
func readPins(ctx context.Context, cfg Config, pins *pinnedDigests, out chan<- events.Event, m *tracer.Metrics, reading *atomic.Bool, log logrus.FieldLogger) error {
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
	return tracer.ReadEnforcement(rctx, p, out, m)
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

// PinnedPrograms reads the statistics of nri-armor's enforcement programs
// through their pinned links (<Dir>/links/<program>), at each scrape: they
// follow the programs across nri-armor's restarts and updates, and the
// tracer holds no program descriptor between scrapes.
type PinnedPrograms struct{ Dir string }

// ProgramStats returns each pinned link's program statistics, by pin name.
func (p PinnedPrograms) ProgramStats() map[string]ebpf.ProgramStats {
	out := map[string]ebpf.ProgramStats{}
	ents, err := os.ReadDir(filepath.Join(p.Dir, "links"))
	if err != nil {
		return out // not pinned (yet): nothing to report
	}
	for _, e := range ents {
		// Not ReadOnly: opening a link pin read-only failed on this kernel.
		l, err := link.LoadPinnedLink(filepath.Join(p.Dir, "links", e.Name()), nil)
		if err != nil {
			continue
		}
		if info, err := l.Info(); err == nil {
			if prog, err := ebpf.NewProgramFromID(info.Program); err == nil {
				if st, err := prog.Stats(); err == nil {
					out[e.Name()] = *st
				}
				prog.Close()
			}
		}
		l.Close()
	}
	return out
}
