package daemon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/enforce/cgroupnet"
	"github.com/nri-armor/nri-armor/k8s/source"
	"github.com/nri-armor/nri-armor/ocihook"
	"github.com/nri-armor/nri-armor/plugin"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/store"
)

// pruneEvery is how often published rule sets that no container uses any
// more are looked for (they go once plugin.DefaultSetGrace has passed).
const pruneEvery = time.Minute

// Daemon is a running nri-armor: its plugin, backend and metrics.
type Daemon struct {
	cfg      Config
	log      *logrus.Logger
	Plugin   *plugin.Plugin
	Backend  enforce.Backend
	store    *store.Store
	metrics  *metrics
	rejected prometheus.Counter
	ln       net.Listener
	// kube watches the API server's policies (kubernetesPolicies), until
	// stopKube; nil when off.
	kube     *source.Source
	stopKube context.CancelFunc
}

// New probes the node, opens the backend the probe chooses, loads the
// policies and builds the plugin. Policies that fail validation are
// rejected whole, logged with file and line and counted; a daemon starts
// with the valid ones.
func New(cfg Config, log *logrus.Logger) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	defaults, err := cfg.Defaults()
	if err != nil {
		return nil, err
	}
	probe := enforce.RunProbe()
	bcfg := bpflsm.Config{PinPath: cfg.BPFFS, MaxContainers: cfg.MaxContainers, MaxRuleEntries: cfg.MaxRuleEntries, SetLinger: cfg.SetLinger}
	var backend enforce.Backend
	if probe.Classes[policy.ClassFile].Backend == enforce.BackendBPFLSM {
		backend, err = bpflsm.Open(bcfg)
	} else {
		backend, err = cgroupnet.Open(bcfg)
	}
	if err != nil {
		return nil, fmt.Errorf("enforcement backend: %w", err)
	}
	for _, c := range policy.Classes {
		s := probe.Classes[c]
		if s.Enforcing {
			log.Infof("class %s: enforced by %s", c, s.Backend)
		} else {
			log.Warnf("class %s: NOT enforced on this node (audit only): %s", c, s.Reason)
		}
	}
	// Where AppArmor enforces what BPF-LSM would, profiles per container.
	var profiles *apparmor.Loader
	if probe.Classes[policy.ClassFile].Backend == enforce.BackendAppArmor {
		if profiles, err = apparmor.NewLoader(cfg.AppArmorDir, apparmor.Parser{}); err != nil {
			backend.Close()
			return nil, fmt.Errorf("AppArmor backend: %w", err)
		}
		if cfg.GateBinary == "" {
			log.Warnf("AppArmor enforces here, but the start gate is off (gateBinary): containers whose rules need AppArmor are refused, as nothing checks the profile their spec names")
		}
	}
	d := &Daemon{cfg: cfg, log: log, Backend: backend, rejected: newRejectedCounter()}
	d.store, err = store.New(cfg.PolicyDirs, store.Options{
		Logger:   log,
		Rejected: func(string, error) { d.rejected.Inc() },
	})
	if err != nil {
		backend.Close()
		return nil, fmt.Errorf("policies: %w", err)
	}
	log.Infof("%d policies loaded from %v", d.store.Catalog().Len(), cfg.PolicyDirs)
	if cfg.KubernetesPolicies {
		if err := d.watchKubernetes(); err != nil {
			d.store.Close()
			backend.Close()
			return nil, err
		}
	}
	// The state for armor-tracer. Without it enforcement works all the
	// same, so a directory that cannot be created is an error logged and
	// counted, not a daemon that refuses to protect containers.
	var dir *state.Dir
	var stateErrs uint64
	if cfg.StateDir != "" {
		if dir, err = state.Open(cfg.StateDir, true); err != nil {
			log.Errorf("state for armor-tracer: %v: nothing is published (enforcement is not affected)", err)
			dir, stateErrs = nil, 1
		}
	}
	node, err := cfg.Node()
	if err != nil {
		d.store.Close()
		backend.Close()
		return nil, err
	}
	d.Plugin, err = plugin.New(plugin.Config{
		Catalog: d.store.Catalog(), Defaults: defaults, Backend: backend, FailOpen: cfg.FailMode == "open",
		Observe:      func(ev string, took time.Duration, err error) { d.metrics.observe(ev, took, err) },
		Quota:        plugin.Quota{Sets: cfg.NamespaceMaxSets, Rules: cfg.NamespaceMaxRules},
		QuotaRefused: func(ns string) { d.metrics.quotaRefused.WithLabelValues(ns).Inc() },
		Ignored: func(ns, pod, ctr string, a policy.IgnoredAnnotation) {
			log.Warnf("pod %s/%s container %s: %s", ns, pod, ctr, a)
			d.metrics.ignore(ns, a)
		},
		State: dir,
		Node:  node,
		Hook:  ocihook.Spec{Binary: cfg.GateBinary, Socket: cfg.GateSocket},

		SeccompLogRefusals: cfg.SeccompLogRefusals,
		SeccompProfileRoot: cfg.SeccompProfileRoot,
		AppArmor:           profiles,
	})
	if err != nil {
		d.store.Close()
		backend.Close()
		return nil, err
	}
	if cfg.GateBinary != "" {
		if err := ocihook.Install(cfg.GateBinary); err != nil {
			d.store.Close()
			backend.Close()
			return nil, fmt.Errorf("start gate: %w", err)
		}
		// The guard (the runtime's base spec) reads the node's
		// weakenNamespaces from here while the daemon is down. Failing
		// to write it is fatal: a stale file would keep trusting a
		// namespace the node no longer does.
		if err := ocihook.WriteTrust(ocihook.TrustFile(cfg.GateBinary), defaults.WeakenNamespaces); err != nil {
			d.store.Close()
			backend.Close()
			return nil, fmt.Errorf("start gate: %w", err)
		}
	}
	// Host policies: an error leaves the node's own processes without them,
	// which is logged loudly; the containers' protection does not wait.
	if err := d.Plugin.ApplyHost(context.Background()); err != nil {
		log.Errorf("%v", err)
	}
	d.metrics = newMetrics(d.Plugin, backend, profiles != nil, d.rejected, stateErrs)
	if d.kube != nil {
		d.metrics.reg.MustRegister(d.kube)
	}
	// Starting leaves garbage several times what stays: the BPF objects'
	// ELF and BTF decoded and loaded, the API server's first list decoded
	// and parsed (thousands of objects in a large cluster). Hand it back to
	// the kernel at once instead of keeping the agent's resident memory at
	// that peak until the runtime's scavenger gets to it
	// (docs/benchmarks.md).
	debug.FreeOSMemory()
	checkMemoryLimit(log)
	return d, nil
}

// watchKubernetes starts the watch of the API server's policy objects and
// waits for their first full list to be in the catalog.
func (d *Daemon) watchKubernetes() error {
	var rc *rest.Config
	var err error
	if d.cfg.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", d.cfg.Kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return fmt.Errorf("kubernetesPolicies: reaching the API server: %w", err)
	}
	d.kube, err = source.New(source.Options{
		Config: rc, Logger: d.log,
		Sink: func(put map[string][]byte, removed []string, changed time.Time) error {
			return d.store.UpdateDocuments("kubernetes", put, removed, changed)
		},
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stopKube = cancel
	if err := d.kube.Start(ctx, d.cfg.KubernetesSyncTimeout); err != nil {
		cancel()
		return err
	}
	d.log.Infof("%d policy objects from the API server; %d policies in force", d.kube.Status().Objects, d.store.Catalog().Len())
	return nil
}

// follow applies every new catalog the store publishes to the running
// containers, and prunes unused published rule sets, until ctx ends.
func (d *Daemon) follow(ctx context.Context) {
	updates := d.store.Subscribe()
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-prune.C:
			d.Plugin.PruneState(ctx)
			if r, ok := d.Backend.(enforce.Reaper); ok {
				r.Reap()
			}
		case cat, ok := <-updates:
			if !ok {
				return
			}
			d.log.Infof("policies changed: %d in force; updating running containers", cat.Len())
			start := time.Now()
			if err := d.Plugin.Reapply(ctx, cat); err != nil {
				d.log.Errorf("%v", err)
			}
			// The file debounce or the watch's coalescing and the catalog's
			// build come before the reapply: measured from the change.
			if changed := cat.Changed(); !changed.IsZero() {
				since := time.Since(changed)
				d.metrics.policyUpdate.Observe(since.Seconds())
				d.log.Infof("running containers updated in %s, %s after the change was seen", time.Since(start).Round(time.Microsecond), since.Round(time.Microsecond))
			}
		}
	}
}

// Reload reads the policy directories again (on SIGHUP).
func (d *Daemon) Reload() error { return d.store.Reload() }

// ServeMetrics starts /metrics and /readyz on the configured address.
func (d *Daemon) ServeMetrics() error {
	if d.cfg.MetricsAddress == "" {
		return nil
	}
	ln, err := net.Listen("tcp", d.cfg.MetricsAddress)
	if err != nil {
		return fmt.Errorf("metrics address: %w", err)
	}
	d.ln = ln
	go func() { _ = http.Serve(ln, d.metrics.handler(d.Plugin, d.kube)) }()
	d.log.Infof("metrics and readiness on http://%s/metrics, /readyz", ln.Addr())
	return nil
}

// MetricsAddr is where metrics are served ("" when they are not).
func (d *Daemon) MetricsAddr() string {
	if d.ln == nil {
		return ""
	}
	return d.ln.Addr().String()
}

// Run connects the plugin to the runtime until ctx ends. When the runtime
// goes away (it restarted), it reconnects with a growing back-off. Started
// by the runtime itself (a pre-installed plugin, the connection handed over
// in the environment), it returns when that connection closes.
func (d *Daemon) Run(ctx context.Context) error {
	go d.follow(ctx)
	if d.cfg.GateBinary != "" {
		gateErr := make(chan error, 1)
		go func() { gateErr <- ocihook.Serve(ctx, d.cfg.GateSocket, d.Plugin.Gate) }()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			if err := <-gateErr; err != nil {
				// Without the gate, containers with rules cannot start:
				// stop rather than run half-working.
				d.log.Errorf("start gate: %v", err)
				cancel()
			}
		}()
		return d.connect(ctx)
	}
	return d.connect(ctx)
}

// connect keeps the plugin connected to the runtime until ctx ends.
func (d *Daemon) connect(ctx context.Context) error {
	preinstalled := os.Getenv(api.PluginSocketEnvVar) != ""
	backoff := 100 * time.Millisecond
	for {
		s, err := d.Plugin.NewStub(d.cfg.PluginName, d.cfg.PluginIndex, stub.WithSocketPath(d.cfg.Socket))
		if err != nil {
			return err
		}
		start := time.Now()
		err = s.Run(ctx)
		if ctx.Err() != nil || preinstalled {
			return ctx.Err()
		}
		if time.Since(start) > time.Minute {
			backoff = 100 * time.Millisecond // it was connected: start over
		}
		d.log.Warnf("runtime connection ended (%v); reconnecting in %s", err, backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		if backoff *= 2; backoff > d.cfg.ReconnectMax {
			backoff = d.cfg.ReconnectMax
		}
	}
}

// Close stops serving metrics and releases the backend's descriptors. The
// kernel state stays pinned: containers stay enforced while nri-armor is
// down or restarting.
func (d *Daemon) Close() error {
	var errs []error
	if d.ln != nil {
		errs = append(errs, d.ln.Close())
	}
	if d.stopKube != nil {
		d.stopKube()
	}
	errs = append(errs, d.store.Close(), d.Backend.Close())
	return errors.Join(errs...)
}

// checkMemoryLimit warns when the Go runtime's soft memory limit
// (GOMEMLIMIT, the chart's agent.goMemoryLimit) leaves the heap live after
// the start less than a quarter more: the collector would run nearly all
// the time, and every policy update would wait for it.
func checkMemoryLimit(log logrus.FieldLogger) {
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 {
		return
	}
	sample := []runtimemetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	runtimemetrics.Read(sample)
	if sample[0].Value.Kind() != runtimemetrics.KindUint64 {
		return
	}
	if live := sample[0].Value.Uint64(); float64(live)*1.25 > float64(limit) {
		log.Warnf("the Go memory limit (GOMEMLIMIT) is %d MiB with %d MiB of heap live after the start: the collector will run nearly all the time; raise it (the chart's agent.goMemoryLimit: about 16 MiB plus 3.5 KiB per policy object)",
			limit>>20, live>>20)
	}
}
