package tracer

import (
	"context"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/nri-armor/nri-armor/tracer/alert"
)

// ProgramStats is a source of BPF programs' run counts and run times (the
// kernel counts them while kernel.bpf_stats_enabled is 1): the telemetry
// loader, or anything holding program descriptors.
type ProgramStats interface {
	ProgramStats() map[string]ebpf.ProgramStats
}

// Metrics are the tracer's Prometheus metrics, in their own registry.
type Metrics struct {
	Registry   *prometheus.Registry
	podLabel   bool
	alerts     *prometheus.CounterVec
	logs       *prometheus.CounterVec
	events     *prometheus.CounterVec
	lost       *prometheus.CounterVec
	decodeErrs *prometheus.CounterVec
	limited    *prometheus.CounterVec
	unknown    *prometheus.CounterVec
	// aaUnreported counts AppArmor records that are not alerts, by why.
	aaUnreported *prometheus.CounterVec
	streamDrops  prometheus.Counter
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
		Help: "Alerts and logs dropped by flood control (each reported in an AlertThreshold summary), by namespace, kind, and the policy and severity of dropped alerts.",
	}, []string{"namespace", "kind", "policy", "severity"})
	m.unknown = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nri_armor_tracer_events_unattributed_total",
		Help: "Telemetry events of cgroups that are neither a published container nor covered by a host record, by type; type seccomp and apparmor: audit records of processes outside published containers or already gone.",
	}, []string{"type"})
	m.aaUnreported = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nri_armor_tracer_apparmor_unreported_total",
		Help: "AppArmor records read but not reported as alerts, by reason (other-profile, not-an-operation, no-rule-class, denied-not-by-rule, audited-not-by-rule, reported-by-enforcer).",
	}, []string{"reason"})
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
	m.Registry.MustRegister(m.alerts, m.logs, m.events, m.lost, m.decodeErrs, m.limited, m.unknown, m.aaUnreported, m.streamDrops, build,
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

// FollowLost follows a source's cumulative count of lost events (lost) into
// nri_armor_tracer_events_lost_total{source} until ctx ends.
func (m *Metrics) FollowLost(ctx context.Context, source string, lost func() uint64, every time.Duration) {
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

// AddStreamDrops counts n messages that the stream dropped for clients
// that read too slowly (the stream Hub's onDrop).
func (m *Metrics) AddStreamDrops(n int) {
	m.streamDrops.Add(float64(n))
}

// limitedCounter is the rate_limited_total series of a dropped alert or
// log (logs have no policy or severity). Flood control keeps it per
// bucket: no label hashing per drop.
func (m *Metrics) limitedCounter(a *alert.Alert) prometheus.Counter {
	if !a.IsAlert() {
		return m.limited.WithLabelValues(a.NamespaceName, "log", "", "")
	}
	return m.limited.WithLabelValues(a.NamespaceName, "alert", a.PolicyName, a.Severity)
}

func (m *Metrics) countAlert(a *alert.Alert) {
	if !a.IsAlert() {
		m.logs.WithLabelValues(a.NamespaceName, a.Operation).Inc()
		return
	}
	if a.Operation == alert.OpAlertThreshold {
		return // a summary, counted in rate_limited_total
	}
	var key alertKey
	if len(a.IdentityJSON) > 0 && len(a.RuleJSON) > 0 {
		key = alertKey{&a.IdentityJSON[0], &a.RuleJSON[0], a.Action, a.Operation}
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
