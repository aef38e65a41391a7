package tracer

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// ProgramStats is a source of BPF programs' run counts and run times (the
// kernel counts them while kernel.bpf_stats_enabled is 1): the telemetry
// loader, or anything holding program descriptors.
type ProgramStats interface {
	ProgramStats() map[string]ebpf.ProgramStats
}

// Metrics are the tracer's Prometheus metrics, in their own registry.
type Metrics struct {
	Registry    *prometheus.Registry
	podLabel    bool
	alerts      *prometheus.CounterVec
	logs        *prometheus.CounterVec
	events      *prometheus.CounterVec
	lost        *prometheus.CounterVec
	decodeErrs  *prometheus.CounterVec
	limited     *prometheus.CounterVec
	unknown     *prometheus.CounterVec
	streamDrops prometheus.Counter
	// alertCache maps an alert's (container, rule, action, operation) to
	// its counter: the same labels recur, and hashing six label values
	// per alert cost more than the rest of the counting. Bounded: cleared
	// when full.
	alertCache map[alertKey]prometheus.Counter
}

// alertKey names an alert series by the pre-encoded identity and rule
// fragments (one per container, one per rule: their addresses identify
// them) plus what varies per alert.
type alertKey struct {
	id, rule          *byte
	action, operation string
}

const alertCacheMax = 1 << 14

// NewMetrics registers the tracer's metrics; watched and clients are read
// at scrape time, progs may be empty.
func NewMetrics(podLabel bool, watched, clients func() int, progs ...ProgramStats) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(), podLabel: podLabel, alertCache: map[alertKey]prometheus.Counter{}}
	labels := []string{"namespace", "container", "policy", "action", "operation", "severity"}
	if podLabel {
		labels = append(labels, "pod")
	}
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nri_armor_tracer_alerts_total",
		Help: "Alerts emitted (MatchedPolicy, MatchedHostPolicy), after flood control.",
	}, labels)
	m.logs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nri_armor_tracer_logs_total",
		Help: "Visibility logs emitted (ContainerLog, HostLog), after flood control, by namespace and operation.",
	}, []string{"namespace", "operation"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nri_armor_tracer_events_total",
		Help: "Kernel events read, by source (enforcement, telemetry) and type.",
	}, []string{"source", "type"})
	m.lost = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nri_armor_tracer_events_lost_total",
		Help: "Kernel events lost before the tracer read them (ring buffer full), by source, as far as the source reports them.",
	}, []string{"source"})
	m.decodeErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nri_armor_tracer_decode_errors_total",
		Help: "Ring buffer records that could not be decoded, by source.",
	}, []string{"source"})
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nri_armor_tracer_rate_limited_total",
		Help: "Alerts and logs dropped by the per-container rate limit (each reported in an AlertThreshold summary), by namespace and kind.",
	}, []string{"namespace", "kind"})
	m.unknown = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nri_armor_tracer_events_unattributed_total",
		Help: "Telemetry events of cgroups that are neither a published container nor covered by a host record, by type.",
	}, []string{"type"})
	m.streamDrops = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nri_armor_tracer_stream_dropped_total",
		Help: "Messages not delivered to a stream client that read too slowly.",
	})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "nri_armor_tracer_build_info", Help: "The tracer's build: module version and Go version.",
	}, []string{"version", "goversion"})
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	build.WithLabelValues(version, runtime.Version()).Set(1)
	m.Registry.MustRegister(m.alerts, m.logs, m.events, m.lost, m.decodeErrs, m.limited, m.unknown, m.streamDrops, build,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nri_armor_tracer_containers_watched", Help: "Containers that nri-armor publishes in the state directory now.",
		}, func() float64 { return float64(watched()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nri_armor_tracer_stream_clients", Help: "Connected stream clients.",
		}, func() float64 { return float64(clients()) }),
		&progCollector{progs: progs},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// AddLost counts n events that source lost before they were read; the
// telemetry loader reports its ring buffer's drops through it.
func (m *Metrics) AddLost(source string, n uint64) {
	m.lost.WithLabelValues(source).Add(float64(n))
}

func (m *Metrics) countAlert(a *Alert) {
	if !a.IsAlert() {
		m.logs.WithLabelValues(a.NamespaceName, a.Operation).Inc()
		return
	}
	if a.Operation == OpAlertThreshold {
		return // a summary, counted in rate_limited_total
	}
	var key alertKey
	if len(a.idJSON) > 0 && len(a.ruleJSON) > 0 {
		key = alertKey{&a.idJSON[0], &a.ruleJSON[0], a.Action, a.Operation}
		if c, ok := m.alertCache[key]; ok {
			c.Inc()
			return
		}
	}
	var c prometheus.Counter
	if m.podLabel {
		c = m.alerts.WithLabelValues(a.NamespaceName, a.ContainerName, a.PolicyName, a.Action, a.Operation, a.Severity, a.PodName)
	} else {
		c = m.alerts.WithLabelValues(a.NamespaceName, a.ContainerName, a.PolicyName, a.Action, a.Operation, a.Severity)
	}
	c.Inc()
	if key.id != nil {
		if len(m.alertCache) >= alertCacheMax {
			clear(m.alertCache)
		}
		m.alertCache[key] = c
	}
}

var (
	descRunCount = prometheus.NewDesc("nri_armor_tracer_bpf_program_runs_total",
		"Runs of each BPF program (counted while kernel.bpf_stats_enabled=1).", []string{"program"}, nil)
	descRunTime = prometheus.NewDesc("nri_armor_tracer_bpf_program_run_seconds_total",
		"Time spent in each BPF program (counted while kernel.bpf_stats_enabled=1).", []string{"program"}, nil)
)

// progCollector reads program statistics at scrape time.
type progCollector struct{ progs []ProgramStats }

func (c *progCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRunCount
	ch <- descRunTime
}

func (c *progCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, p := range c.progs {
		for name, st := range p.ProgramStats() {
			if seen[name] {
				continue // two sources naming one program: report it once
			}
			seen[name] = true
			ch <- prometheus.MustNewConstMetric(descRunCount, prometheus.CounterValue, float64(st.RunCount), name)
			ch <- prometheus.MustNewConstMetric(descRunTime, prometheus.CounterValue, st.Runtime.Seconds(), name)
		}
	}
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
