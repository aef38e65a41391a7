package daemon

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/k8s/source"
	"github.com/nri-armor/nri-armor/plugin"
	"github.com/nri-armor/nri-armor/policy"
)

// metrics are the daemon's own: what it handled, what it enforces, what the
// kernel holds. Gauges are read at scrape time from their sources.
type metrics struct {
	reg      *prometheus.Registry
	events   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	rejected prometheus.Counter
	ignored  *prometheus.CounterVec
	// quotaRefused counts containers refused for their namespace's quota.
	quotaRefused *prometheus.CounterVec
	// policyUpdate: from a policy change's first sign to the running
	// containers' kernel state having it.
	policyUpdate prometheus.Histogram
}

func newRejectedCounter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nri_armor_policy_files_rejected_total", Help: "Policy file versions rejected by validation (the last good version stays).",
	})
}

func newMetrics(p *plugin.Plugin, backend enforce.Backend, appArmor bool, rejected prometheus.Counter, stateErrs uint64) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), rejected: rejected}
	kernel, _ := backend.(enforce.KernelStater) // nil: a backend without kernel maps
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nri_armor_nri_events_total", Help: "NRI events handled, by event and result.",
	}, []string{"event", "result"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "nri_armor_nri_event_duration_seconds", Help: "Time to handle an NRI event, by event.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5},
	}, []string{"event"})
	m.ignored = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nri_armor_annotations_ignored_total",
		Help: "Pod annotations not honoured because they would weaken protection in a namespace that may not (weakenNamespaces), by namespace and annotation, per container.",
	}, []string{"namespace", "annotation"})
	m.quotaRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nri_armor_namespace_quota_refused_total",
		Help: "Containers refused because their namespace would pass its quota of rule sets or rules (namespaceMaxSets, namespaceMaxRules).",
	}, []string{"namespace"})
	m.policyUpdate = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "nri_armor_policy_update_seconds",
		Help:    "From a policy change's first sign (the policy file's event, the API server's watch event) to every running container's kernel state having it (changes that come together count once, from the first).",
		Buckets: []float64{.005, .01, .025, .05, .075, .1, .25, .5, 1, 2.5, 5, 10},
	})
	m.reg.MustRegister(m.events, m.latency, m.rejected, m.ignored, m.quotaRefused, m.policyUpdate,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{p: p, backend: backend.Name(), appArmor: appArmor, kernel: kernel, stateErrs: stateErrs})
	return m
}

// ignore counts an annotation not honoured (the plugin's Ignored hook). The
// label is the annotation's key without a .container.<name> suffix, so that
// pods cannot grow the metric's label set.
func (m *metrics) ignore(namespace string, a policy.IgnoredAnnotation) {
	key, _, _ := strings.Cut(a.Key, ",")
	key, _, _ = strings.Cut(key, ".container.")
	m.ignored.WithLabelValues(namespace, key).Inc()
}

// observe is the plugin's Observe hook.
func (m *metrics) observe(event string, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.events.WithLabelValues(event, result).Inc()
	m.latency.WithLabelValues(event).Observe(took.Seconds())
}

var (
	descEnforced = prometheus.NewDesc("nri_armor_containers_enforced",
		"Running containers with rules in a class, by enforcing backend and class.", []string{"backend", "class"}, nil)
	descSets = prometheus.NewDesc("nri_armor_policy_sets_loaded",
		"Distinct rule sets loaded in the kernel.", nil, nil)
	descEntries = prometheus.NewDesc("nri_armor_kernel_rule_entries",
		"Rule entries in the kernel maps.", nil, nil)
	descCapacity = prometheus.NewDesc("nri_armor_kernel_capacity",
		"Configured capacity of the kernel maps, by what they bound.", []string{"what"}, nil)
	descMemory = prometheus.NewDesc("nri_armor_kernel_memory_bytes",
		"Kernel memory charged to nri-armor's maps, by map.", []string{"map"}, nil)
	descScratch = prometheus.NewDesc("nri_armor_kernel_scratch_contended_total",
		"Kernel decisions that found their CPU's first scratch taken (another decision preempted halfway on that CPU), by what they did: took another slot of the CPU, spilled (decided in memory of their own), or were refused.", []string{"outcome"}, nil)
	descPublishErrors = prometheus.NewDesc("nri_armor_state_publish_errors_total",
		"Errors publishing state for armor-tracer (containers are enforced regardless).", nil, nil)
	descProfiles = prometheus.NewDesc("nri_armor_apparmor_profiles_loaded",
		"AppArmor profiles nri-armor holds loaded for pods and containers (on nodes where AppArmor enforces).", nil, nil)
)

// stateCollector reads the plugin's and the backend's kernel state at scrape time.
type stateCollector struct {
	p       *plugin.Plugin
	backend string
	// appArmor: AppArmor enforces its classes on this node.
	appArmor bool
	kernel   enforce.KernelStater
	// stateErrs counts errors before the plugin existed (the state
	// directory could not be created).
	stateErrs uint64
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEnforced, descSets, descEntries, descCapacity, descMemory, descScratch, descPublishErrors, descProfiles} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	enforced := c.p.Enforced()
	for _, cl := range policy.Classes {
		// The class's backend on this node is always there, 0 or not;
		// another one that enforces it for some containers too.
		backend := c.backend
		switch {
		case cl == policy.ClassSyscalls:
			backend = enforce.BackendSeccomp // a filter per container, not the cgroup backend
		case c.appArmor && slices.Contains(apparmor.Classes, cl):
			backend = enforce.BackendAppArmor // a profile per container
		}
		ch <- prometheus.MustNewConstMetric(descEnforced, prometheus.GaugeValue, float64(enforced[cl][backend]), backend, string(cl))
		for by, n := range enforced[cl] {
			if by != backend {
				ch <- prometheus.MustNewConstMetric(descEnforced, prometheus.GaugeValue, float64(n), by, string(cl))
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descPublishErrors, prometheus.CounterValue, float64(c.p.PublishErrors()+c.stateErrs))
	if c.appArmor {
		ch <- prometheus.MustNewConstMetric(descProfiles, prometheus.GaugeValue, float64(c.p.AppArmorProfiles()))
	}
	if c.kernel == nil {
		return
	}
	st := c.kernel.KernelStats()
	ch <- prometheus.MustNewConstMetric(descSets, prometheus.GaugeValue, float64(st.Sets))
	ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(st.RuleEntries))
	ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, float64(st.MaxContainers), "containers")
	ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, float64(st.MaxRuleEntries), "rule_entries")
	for name, b := range st.MapBytes {
		ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(b), name)
	}
	var slot uint64 // every contended decision counts once, before its fallback does
	if fell := st.ScratchSpilled + st.ScratchRefused; st.ScratchContended > fell {
		slot = st.ScratchContended - fell
	}
	for outcome, n := range map[string]uint64{"slot": slot, "spilled": st.ScratchSpilled, "refused": st.ScratchRefused} {
		ch <- prometheus.MustNewConstMetric(descScratch, prometheus.CounterValue, float64(n), outcome)
	}
}

// handler serves /metrics, and /readyz: 200 once the runtime's Synchronize
// has been handled, 503 before, and 503 while the API server's policies
// (kube, nil when not watched) are kept without it.
func (m *metrics) handler(p *plugin.Plugin, kube *source.Source) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !p.Synchronized() {
			http.Error(w, "not synchronized with the runtime yet", http.StatusServiceUnavailable)
			return
		}
		if kube != nil {
			if st := kube.Status(); !st.Connected {
				http.Error(w, fmt.Sprintf("API server unreachable since %s (%s): the last good policies stay in force", st.Since.UTC().Format(time.RFC3339), st.LastError), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
