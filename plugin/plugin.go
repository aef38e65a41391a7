package plugin

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/nri/pkg/api"
	nrilog "github.com/containerd/nri/pkg/log"
	"github.com/containerd/nri/pkg/stub"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/rootpath"
	"github.com/nri-armor/nri-armor/ocihook"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
)

// Name and Index are how the plugin registers with the runtime.
const (
	Name  = "nri-armor"
	Index = "10"
)

// Config is what a Plugin is built from.
type Config struct {
	// Catalog holds the loaded policies; nil means none.
	Catalog *policy.Catalog
	// Defaults are the node's settings that pods may override.
	Defaults policy.Defaults
	// Compiler compiles (and caches) rule sets; nil makes one.
	Compiler *policy.Compiler
	// Backend installs sets for cgroups. Required.
	Backend enforce.Backend
	// Cgroup2 is the cgroup v2 mount point; empty finds it (cgroups.Mount).
	Cgroup2 string
	// Proc is where the host's procfs is mounted; empty means /proc.
	Proc string
	// FailOpen lets a container start when its set cannot be installed
	// (logged). The default, fail closed, refuses the start in enforce mode.
	FailOpen bool
	// Observe, when set, is told of every NRI event handled: its name, how
	// long it took and its error (for metrics).
	Observe func(event string, took time.Duration, err error)
	// Quota bounds each namespace's share of the kernel maps (quota.go).
	Quota Quota
	// QuotaRefused, when set, is told of every container refused for its
	// namespace's quota.
	QuotaRefused func(namespace string)
	// Ignored, when set, is told of every annotation not honoured because
	// it would weaken protection in a namespace that may not
	// (policy.Defaults.WeakenNamespaces), once per container tracked.
	Ignored func(namespace, pod, container string, a policy.IgnoredAnnotation)
	// State, when set, is where containers and rule sets are published for
	// armor-tracer. Publishing never refuses a container (see publish.go).
	State *state.Dir
	// SetGrace is how long a published rule set outlives its last
	// container; 0 means DefaultSetGrace.
	SetGrace time.Duration
	// Node is this node, as host policies' nodeSelector sees it (host.go).
	Node Node
	// Hook, when its Binary is set, adds the start gate's createRuntime
	// hook (package ocihook) to the containers that have rules; the
	// daemon answers it with EnforceNow (hook.go).
	Hook ocihook.Spec
	// Arch is the node's architecture (Go's name), whose system call names
	// syscall rules must use; empty means this machine's.
	Arch string
	// SeccompLogRefusals: the node's OCI runtime accepts seccomp flags
	// (runc ≥ 1.2, crun), so seccomp filters log their refusals for
	// armor-tracer's Block alerts (enforce/seccomp.FlagLog).
	SeccompLogRefusals bool
	// SeccompProfileRoot is the kubelet's seccomp root, under which the
	// Localhost route writes its profiles (seccomp_localhost.go); empty
	// means seccomp.DefaultProfileRoot.
	SeccompProfileRoot string
	// AppArmor, when set, loads the profiles of containers whose process,
	// file and capability rules AppArmor enforces: on a node where it is
	// active and BPF-LSM is not (apparmor.go).
	AppArmor *apparmor.Loader
}

// Plugin is the NRI plugin. Its handlers are safe for concurrent use.
type Plugin struct {
	backend  enforce.Backend
	compiler *policy.Compiler
	defaults policy.Defaults
	cgroup2  string
	proc     string
	failOpen bool
	observe  func(event string, took time.Duration, err error)
	ignored  func(namespace, pod, container string, a policy.IgnoredAnnotation)
	quota    Quota
	refused  func(namespace string)
	synced   atomic.Bool

	state         *state.Dir
	setGrace      time.Duration
	publishErrors atomic.Uint64

	catMu   sync.RWMutex
	catalog *policy.Catalog

	node   Node
	hook   ocihook.Spec
	sc     seccomp.Node
	name   string // as registered (NewStub)
	stub   atomic.Pointer[stub.Stub]
	hostMu sync.Mutex // never held while taking mu
	host   host

	// aa is the AppArmor backend's state; nil where it does not enforce.
	aa *profiles
	// scRoot is the kubelet's seccomp root; scFiles the seccomp profiles
	// written under it (seccomp_localhost.go).
	scRoot  string
	scFiles scProfiles

	mu sync.Mutex
	// runtime is what the runtime allows for seccomp (seccomp.go).
	runtime    seccomp.Support
	pods       map[string]*pod       // by sandbox id
	containers map[string]*container // by container id
}

// pod is what the plugin remembers of a pod sandbox.
type pod struct {
	namespace, name, uid string
	labels, annotations  map[string]string
}

// policyPod is pd as policies select it.
func (pd *pod) policyPod() policy.Pod {
	return policy.Pod{Namespace: pd.namespace, Name: pd.name, Labels: pd.labels, Annotations: pd.annotations}
}

// container is what the plugin remembers of a container.
type container struct {
	id, pod, name, image string
	resolved
	// cgroupID is the container's cgroup, resolved from its pid at start; 0
	// until then. Every started container's is kept (not only those with a
	// set), so that a policy added later reaches running containers.
	cgroupID uint64
	// applied: the backend holds set for cgroupID.
	applied bool
	// enforcers and unenforced are what the backend reported at the last
	// Apply: who enforces each class, and the rule ids it does not enforce.
	enforcers  map[policy.Class]string
	unenforced []int
	// published: a state record for cgroupID exists.
	published bool
	// pid is the init process the container was started with, and links
	// resolves rule paths in its root (alias.go); 0 and nil until then.
	pid   int
	links *rootpath.Resolver
	// filter is its seccomp filter, decided at creation (seccomp.go); nil
	// when it has no syscall rules.
	filter *filter
	// profile is the AppArmor profile it runs under ("" for none; on a
	// node where AppArmor enforces, apparmor.go); apparmor is what the
	// profile holds as last loaded, and profileChecked says that the
	// runtime hook found the spec naming it.
	profile        string
	apparmor       *apparmor.Profile
	profileChecked bool
	// gated: CreateContainer added the start gate (the per-container OCI
	// hook) through NRI, and the bundle must carry it (checkBundle).
	gated bool
}

// New returns a plugin for cfg.
func New(cfg Config) (*Plugin, error) {
	if cfg.Backend == nil {
		return nil, errors.New("plugin: no enforcement backend")
	}
	if cfg.Compiler == nil {
		cfg.Compiler = policy.NewCompiler(0)
	}
	if cfg.Catalog == nil {
		c, err := policy.NewCatalog(nil)
		if err != nil {
			return nil, err
		}
		cfg.Catalog = c
	}
	if cfg.Cgroup2 == "" {
		m, err := cgroups.Mount()
		if err != nil {
			return nil, fmt.Errorf("plugin: %w", err)
		}
		cfg.Cgroup2 = m
	}
	if cfg.Proc == "" {
		cfg.Proc = "/proc"
	}
	if cfg.SetGrace == 0 {
		cfg.SetGrace = DefaultSetGrace
	}
	if cfg.Arch == "" {
		cfg.Arch = policy.NodeArch()
	}
	var aa *profiles
	if cfg.AppArmor != nil {
		aa = &profiles{loader: cfg.AppArmor, users: map[string]map[string]bool{}}
	}
	sc := seccomp.Node{Arch: cfg.Arch, LogRefusals: cfg.SeccompLogRefusals}
	if k, ok := cfg.Backend.(enforce.SyscallEnforcer); ok {
		sc.KernelSyscalls = k.KernelSyscalls
	}
	if cfg.SeccompProfileRoot == "" {
		cfg.SeccompProfileRoot = seccomp.DefaultProfileRoot
	}
	return &Plugin{
		aa:         aa,
		scRoot:     filepath.Clean(cfg.SeccompProfileRoot),
		scFiles:    scProfiles{},
		backend:    cfg.Backend,
		compiler:   cfg.Compiler,
		defaults:   cfg.Defaults,
		cgroup2:    cfg.Cgroup2,
		proc:       cfg.Proc,
		failOpen:   cfg.FailOpen,
		observe:    cfg.Observe,
		ignored:    cfg.Ignored,
		quota:      cfg.Quota,
		refused:    cfg.QuotaRefused,
		state:      cfg.State,
		setGrace:   cfg.SetGrace,
		catalog:    cfg.Catalog,
		node:       cfg.Node,
		hook:       cfg.Hook,
		sc:         sc,
		runtime:    seccomp.Table(seccomp.Runtime{}),
		pods:       map[string]*pod{},
		containers: map[string]*container{},
	}, nil
}

// NewStub returns the NRI stub that connects p to the runtime, registered as
// idx-name (Index and Name when empty) and asking the runtime to fail a
// request rather than go on without nri-armor when the plugin does not
// answer in time (ignored by runtimes whose NRI predates failure policies).
func (p *Plugin) NewStub(name, idx string, opts ...stub.Option) (stub.Stub, error) {
	if name == "" {
		name = Name
	}
	if idx == "" {
		idx = Index
	}
	base := []stub.Option{
		stub.WithPluginName(name),
		stub.WithPluginIdx(idx),
		stub.WithFailurePolicy(&api.FailurePolicy{FailRequest: true}),
	}
	s, err := stub.New(p, append(base, opts...)...)
	if err == nil {
		p.mu.Lock()
		p.name = name
		p.mu.Unlock()
		p.stub.Store(&s) // Configure asks it the runtime's NRI version
	}
	return s, err
}

// Catalog returns the current catalog.
func (p *Plugin) Catalog() *policy.Catalog {
	p.catMu.RLock()
	defer p.catMu.RUnlock()
	return p.catalog
}

// SetCatalog swaps the catalog. Containers created from now on resolve
// against it; the sets of existing containers are not changed (Reapply
// changes them).
func (p *Plugin) SetCatalog(c *policy.Catalog) {
	p.catMu.Lock()
	p.catalog = c
	p.catMu.Unlock()
}

// Reapply swaps the catalog and resolves every known container again: a
// running container whose set changed gets the new one (the backend swaps
// it atomically), one whose set became empty is released, and their state
// records are rewritten. A container that no longer resolves (its
// annotation names a policy that is gone), or whose new set the backend
// refuses, keeps its last set: a policy edit never leaves a container with
// less than it had without saying so; the error is returned for each such
// container.
func (p *Plugin) Reapply(ctx context.Context, cat *policy.Catalog) error {
	p.SetCatalog(cat)
	var errs []error
	if err := p.ApplyHost(ctx); err != nil {
		errs = append(errs, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.rewriteSeccompProfiles(ctx); err != nil {
		errs = append(errs, err)
	}
	for id, c := range p.containers {
		pd := p.pods[c.pod]
		if pd == nil {
			continue
		}
		r, err := p.resolve(pd, c.name)
		if err != nil {
			errs = append(errs, fmt.Errorf("nri-armor: container %s keeps policy set %s: %w", id, c.digest(), err))
			continue
		}
		if digestOf(r.compiled) == digestOf(c.compiled) {
			r.set = c.set // with the aliases made at its start
			c.resolved = r
			continue
		}
		last, lastFilter := c.resolved, c.filter
		c.resolved = r
		p.refilter(ctx, c, lastFilter)
		if c.cgroupID == 0 {
			continue // not started yet: StartContainer applies the new set
		}
		p.alias(ctx, c, c.pid, "")
		if err := p.enforce(ctx, c); err != nil {
			c.resolved, c.filter = last, lastFilter // what the kernel still holds, and so a later edit retries
			errs = append(errs, fmt.Errorf("%w (it keeps policy set %s)", err, c.digest()))
			continue
		}
		p.released(ctx, last.set)
		p.publish(ctx, c)
	}
	return errors.Join(errs...)
}

// Synchronized reports whether the runtime's first Synchronize has been
// handled: until then the plugin does not know the running containers.
func (p *Plugin) Synchronized() bool { return p.synced.Load() }

// done reports a handled event to the observer.
func (p *Plugin) done(event string, start time.Time, err error) {
	if p.observe != nil {
		p.observe(event, time.Since(start), err)
	}
}

// RunPodSandbox records the pod and loads the AppArmor profiles its
// annotations name (apparmor.go); an error fails the pod.
func (p *Plugin) RunPodSandbox(ctx context.Context, sb *api.PodSandbox) (err error) {
	defer func(start time.Time) { p.done("RunPodSandbox", start, err) }(time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recordPod(sb)
	return errors.Join(p.podProfiles(ctx, sb), p.podSeccompProfiles(ctx, sb))
}

// RemovePodSandbox forgets the pod and releases any container of it that is
// still known.
func (p *Plugin) RemovePodSandbox(ctx context.Context, sb *api.PodSandbox) (err error) {
	defer func(start time.Time) { p.done("RemovePodSandbox", start, err) }(time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for id, c := range p.containers {
		if c.pod == sb.GetId() {
			errs = append(errs, p.forget(ctx, id))
		}
	}
	delete(p.pods, sb.GetId())
	errs = append(errs, p.dropProfiles(ctx, "pod:"+sb.GetId()), p.dropSeccompProfiles(ctx, sb.GetId()))
	return errors.Join(errs...)
}

// CreateContainer resolves and compiles the container's set, refusing the
// container when its annotations cannot be honoured, and names the set on the
// container by the nri-armor.dev/policy-set annotation.
func (p *Plugin) CreateContainer(ctx context.Context, sb *api.PodSandbox, ctr *api.Container) (_ *api.ContainerAdjustment, _ []*api.ContainerUpdate, err error) {
	defer func(start time.Time) { p.done("CreateContainer", start, err) }(time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recordPod(sb)
	c, err := p.track(sb, ctr)
	if err != nil {
		return nil, nil, err
	}
	if err := p.checkQuota(c); err != nil {
		delete(p.containers, c.id)
		return nil, nil, err
	}
	if c.set == nil {
		return nil, nil, nil
	}
	if err := p.checkStartRefusable(c); err != nil {
		delete(p.containers, c.id)
		return nil, nil, err
	}
	adjust := &api.ContainerAdjustment{}
	if err := p.seccompFilter(ctx, c, ctr, adjust); err != nil {
		delete(p.containers, c.id)
		return nil, nil, err
	}
	if err := p.attachProfile(ctx, c); err != nil {
		if verr := p.verdict(ctx, c, err); verr != nil {
			_ = p.dropProfiles(ctx, "ctr:"+c.id)
			delete(p.containers, c.id)
			return nil, nil, verr
		}
	}
	adjust.AddAnnotation(policy.AnnotationPolicySet, c.set.Digest)
	if p.hook.Binary != "" && !p.failOpen && c.mode == policy.ModeEnforce {
		adjust.AddHooks(p.hook.Hooks())
		c.gated = true
	}
	return adjust, nil, nil
}

// checkStartRefusable refuses, at CreateContainer, an enforced container
// with rules on CRI-O when there is no start gate: its rules would be
// installed at StartContainer, whose error CRI-O only logs (every version;
// 1.36.3 server/container_start.go), so a failure there would start it
// without them. With the gate, its createRuntime hook installs them and
// fails the container when it cannot. The caller holds p.mu.
func (p *Plugin) checkStartRefusable(c *container) error {
	if p.hook.Binary != "" || p.failOpen || c.mode != policy.ModeEnforce || p.runtime.Runtime.Name != "cri-o" {
		return nil
	}
	return fmt.Errorf("nri-armor: %s: CRI-O only logs a plugin's refusal at StartContainer, where this container's rules would be installed without the start gate (gateBinary is empty): refusing to create it", p.who(c))
}

// StartContainer applies the container's set to its cgroup and publishes
// the container. The runtime waits for it; an error refuses the start in
// enforce mode. In audit mode nothing would be blocked anyway, so a failure
// is logged and the start goes on.
func (p *Plugin) StartContainer(ctx context.Context, sb *api.PodSandbox, ctr *api.Container) (err error) {
	defer func(start time.Time) { p.done("StartContainer", start, err) }(time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recordPod(sb)
	c, ok := p.containers[ctr.GetId()]
	if !ok {
		// Created before nri-armor was connected and missed by Synchronize.
		var err error
		if c, err = p.track(sb, ctr); err != nil {
			return err
		}
		p.resyncFilter(ctx, c, ctr)
	}
	if err := p.checkProfileChecked(c); err != nil {
		return p.verdict(ctx, c, err)
	}
	if err := p.checkLocalhostChecked(c); err != nil {
		return p.verdict(ctx, c, err)
	}
	// After runc create: the process has its root, the container's.
	return p.startOrRefuse(ctx, ctr, c, p.rootOf(int(ctr.GetPid())))
}

// startOrRefuse starts c (start) and refuses it or not (verdict). The
// caller holds p.mu.
func (p *Plugin) startOrRefuse(ctx context.Context, ctr *api.Container, c *container, root string) error {
	return p.verdict(ctx, c, p.start(ctx, ctr, c, root))
}

// verdict decides what an error enforcing c means: in audit mode and with
// fail mode open the container starts anyway (logged); else the error
// refuses it. The caller holds p.mu.
func (p *Plugin) verdict(ctx context.Context, c *container, err error) error {
	if err != nil {
		if c.mode == policy.ModeAudit {
			nrilog.Warnf(ctx, "%v (audit mode: the container starts anyway)", err)
			p.publish(ctx, c)
			return nil
		}
		if p.failOpen {
			nrilog.Errorf(ctx, "%v (fail mode open: the container starts UNPROTECTED)", err)
			p.publish(ctx, c)
			return nil
		}
		return err
	}
	return nil
}

// RemoveContainer stops enforcing on the container's cgroup, deletes its
// state record and forgets it.
func (p *Plugin) RemoveContainer(ctx context.Context, _ *api.PodSandbox, ctr *api.Container) (err error) {
	defer func(start time.Time) { p.done("RemoveContainer", start, err) }(time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forget(ctx, ctr.GetId())
}

// Synchronize rebuilds the state from the runtime's pods and containers,
// applies the set of every container that has a process again, rewrites
// every state record and deletes the records of cgroups that no container
// has any more. It does not fail on one container: the runtime would drop
// the plugin and every other container would go unprotected. Each failure
// is logged instead.
func (p *Plugin) Synchronize(ctx context.Context, pods []*api.PodSandbox, ctrs []*api.Container) (_ []*api.ContainerUpdate, err error) {
	defer func(start time.Time) { p.done("Synchronize", start, err); p.synced.Store(true) }(time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	livePods := map[string]bool{}
	byID := map[string]*api.PodSandbox{}
	for _, sb := range pods {
		p.recordPod(sb)
		livePods[sb.GetId()] = true
		byID[sb.GetId()] = sb
		if err := p.podProfiles(ctx, sb); err != nil {
			nrilog.Errorf(ctx, "synchronize: %v", err)
		}
		if err := p.podSeccompProfiles(ctx, sb); err != nil {
			nrilog.Errorf(ctx, "synchronize: %v", err)
		}
	}
	// The AppArmor labels the running containers run under.
	labels := map[string]bool{}
	live := map[string]bool{}
	for _, ctr := range ctrs {
		live[ctr.GetId()] = true
		switch ctr.GetState() {
		case api.ContainerState_CONTAINER_STOPPED:
			// Its cgroup may be gone; Remove will follow. Keep what we knew.
			continue
		}
		sb := byID[ctr.GetPodSandboxId()]
		if sb == nil {
			nrilog.Errorf(ctx, "synchronize: container %s: pod %s not in the runtime's list", ctr.GetId(), ctr.GetPodSandboxId())
			continue
		}
		// Resolve again, against the current catalog.
		old := p.containers[ctr.GetId()]
		c, err := p.track(sb, ctr)
		if err != nil {
			nrilog.Errorf(ctx, "synchronize: container %s: %v", ctr.GetId(), err)
			if old != nil {
				p.containers[ctr.GetId()] = old
			}
			continue
		}
		if old != nil {
			// What the backend and the state directory hold for it.
			c.cgroupID, c.applied, c.published = old.cgroupID, old.applied, old.published
			c.enforcers, c.unenforced = old.enforcers, old.unenforced
			c.links, c.pid = old.links, old.pid
			c.profile, c.apparmor, c.profileChecked = old.profile, old.apparmor, old.profileChecked
			p.refilter(ctx, c, old.filter)
			if old.digest() != c.digest() {
				p.released(ctx, old.set)
			}
		} else {
			p.resyncFilter(ctx, c, ctr)
			p.syncProfile(ctx, c, int(ctr.GetPid()))
		}
		if ctr.GetPid() == 0 {
			continue // created, not started: StartContainer follows
		}
		if p.aa != nil {
			if label, err := apparmor.CurrentLabel(p.proc, int(ctr.GetPid())); err == nil {
				labels[label] = true
			}
		}
		if err := p.start(ctx, ctr, c, p.rootOf(int(ctr.GetPid()))); err != nil {
			nrilog.Errorf(ctx, "synchronize: %v", err)
		}
	}
	for id := range p.containers {
		if !live[id] {
			if err := p.forget(ctx, id); err != nil {
				nrilog.Errorf(ctx, "synchronize: %v", err)
			}
		}
	}
	for id := range p.pods {
		if !livePods[id] {
			delete(p.pods, id)
			if err := p.dropProfiles(ctx, "pod:"+id); err != nil {
				nrilog.Errorf(ctx, "synchronize: %v", err)
			}
			if err := p.dropSeccompProfiles(ctx, id); err != nil {
				nrilog.Errorf(ctx, "synchronize: %v", err)
			}
		}
	}
	p.pruneProfiles(ctx, labels)
	p.pruneSeccompProfiles(ctx)
	p.sweep(ctx)
	return nil, nil
}

// recordPod remembers sb. The caller holds p.mu.
func (p *Plugin) recordPod(sb *api.PodSandbox) {
	if sb == nil || sb.GetId() == "" {
		return
	}
	p.pods[sb.GetId()] = &pod{
		namespace:   sb.GetNamespace(),
		name:        sb.GetName(),
		uid:         sb.GetUid(),
		labels:      sb.GetLabels(),
		annotations: sb.GetAnnotations(),
	}
}

// track resolves and compiles the container's set and remembers the
// container. The caller holds p.mu.
func (p *Plugin) track(sb *api.PodSandbox, ctr *api.Container) (*container, error) {
	pd := p.pods[ctr.GetPodSandboxId()]
	if pd == nil {
		// The runtime always sends the pod with the container.
		p.recordPod(sb)
		if pd = p.pods[ctr.GetPodSandboxId()]; pd == nil {
			return nil, fmt.Errorf("nri-armor: container %s: unknown pod %s", ctr.GetId(), ctr.GetPodSandboxId())
		}
	}
	r, err := p.resolve(pd, ctr.GetName())
	if err != nil {
		return nil, err
	}
	c := &container{id: ctr.GetId(), pod: ctr.GetPodSandboxId(), name: ctr.GetName(), image: imageOf(ctr), resolved: r}
	p.containers[ctr.GetId()] = c
	if p.ignored != nil {
		for _, a := range r.ignored {
			p.ignored(pd.namespace, pd.name, c.name, a)
		}
	}
	return c, nil
}

// resolved is what a container's pod asks for it against the catalog.
type resolved struct {
	// compiled is the compiled set; nil when there is nothing to enforce.
	compiled *policy.RuleSet
	// set is what is enforced: compiled, with the aliases of its symlinked
	// paths once the container's root is known (alias.go).
	set        *policy.RuleSet
	mode       policy.Mode
	visibility policy.Visibility
	// ignored are the pod's annotations not honoured: they would have
	// weakened protection in a namespace that may not.
	ignored []policy.IgnoredAnnotation
	// raw are the policies' raw AppArmor rules (spec.apparmor), where the
	// AppArmor backend enforces.
	raw []apparmor.RawRules
}

// digest is the set's digest, "" when there is none.
func (r resolved) digest() string { return digestOf(r.set) }

// resolve finds and compiles the set of container name of pod pd against
// the current catalog.
func (p *Plugin) resolve(pd *pod, name string) (resolved, error) {
	target, err := p.Catalog().Resolve(pd.policyPod(), name, p.defaults)
	if err != nil {
		return resolved{}, fmt.Errorf("nri-armor: pod %s/%s container %s: %w", pd.namespace, pd.name, name, err)
	}
	r := resolved{mode: target.Settings.Mode, visibility: target.Settings.Visibility, ignored: target.Settings.Ignored}
	if target.Settings.Mode == policy.ModeDisabled || len(target.Policies) == 0 {
		return r, nil
	}
	if rs := p.compiler.Compile(target.Policies, target.Settings.Options()); !rs.Empty() {
		r.compiled, r.set = rs, rs
	}
	if p.aa != nil {
		r.raw = apparmor.RawRulesOf(target.Policies)
	}
	return r, nil
}

// who names the container in messages. The caller holds p.mu.
func (p *Plugin) who(c *container) string {
	if pd := p.pods[c.pod]; pd != nil {
		return fmt.Sprintf("pod %s/%s container %s (%s)", pd.namespace, pd.name, c.name, c.id)
	}
	return "container " + c.id
}

// start finds the cgroup of a container whose process exists, has the
// backend enforce its set there, with the aliases of its symlinked rule
// paths as resolved in root (alias.go; "" resolves nothing new), and
// publishes the container. The caller holds p.mu.
func (p *Plugin) start(ctx context.Context, ctr *api.Container, c *container, root string) error {
	if img := imageOf(ctr); img != "" {
		c.image = img
	}
	if c.set == nil && c.applied {
		// Its set became empty since it was applied (a policy changed while
		// the runtime reconnected): release the cgroup.
		if err := p.enforce(ctx, c); err != nil {
			return err
		}
	}
	// A container in mode disabled has no set and no record, but is
	// located like any other: it is a container, out of the host set's reach.
	// Every started container's cgroup is looked up, not only those with a
	// set: a policy added later must reach it, and the tracer wants it.
	if err := p.locate(ctx, ctr, c); err != nil {
		if c.set == nil {
			// Nothing to enforce: no reason to refuse the start.
			nrilog.Warnf(ctx, "%v (nothing to enforce now; a policy added later reaches it only after the next Synchronize)", err)
			return nil
		}
		return err
	}
	p.alias(ctx, c, int(ctr.GetPid()), root)
	if err := p.enforce(ctx, c); err != nil {
		return err
	}
	p.publish(ctx, c)
	return nil
}

// locate resolves the container's cgroup from its pid. The caller holds p.mu.
func (p *Plugin) locate(ctx context.Context, ctr *api.Container, c *container) error {
	id, err := cgroups.IDOfPID(p.proc, p.cgroup2, int(ctr.GetPid()))
	if err != nil {
		return fmt.Errorf("nri-armor: %s: %w", p.who(c), err)
	}
	if c.cgroupID != 0 && c.cgroupID != id {
		// Not expected for one container; release the old id rather than leak it.
		if c.applied {
			if err := p.backend.Remove(c.cgroupID); err != nil {
				nrilog.Warnf(ctx, "%s: releasing cgroup %d: %v", p.who(c), c.cgroupID, err)
			}
			c.applied = false
		}
		p.unpublish(ctx, c)
	}
	c.cgroupID = id
	return nil
}

// enforce has the backend hold the container's set for its cgroup, or
// nothing when it has no set. The caller holds p.mu.
func (p *Plugin) enforce(ctx context.Context, c *container) error {
	if err := p.containerProfile(ctx, c); err != nil {
		return err
	}
	if c.set == nil {
		c.enforcers, c.unenforced = nil, nil
		if hb, ok := p.backend.(enforce.HostBackend); ok {
			// A container, even without rules: the host set is not its.
			// Failing to mark it is not a reason to refuse it (the host
			// set is more than it asked for, never less): say so.
			if err := hb.Exempt(c.cgroupID); err != nil {
				nrilog.Warnf(ctx, "%s: marking cgroup %d as a container without rules: %v (host policies may reach it)", p.who(c), c.cgroupID, err)
				return nil
			}
			c.applied = true
			return nil
		}
		if !c.applied {
			return nil
		}
		if err := p.backend.Remove(c.cgroupID); err != nil {
			return fmt.Errorf("nri-armor: %s: releasing cgroup %d: %w", p.who(c), c.cgroupID, err)
		}
		c.applied = false
		nrilog.Infof(ctx, "%s: no policy applies any more; cgroup %d released", p.who(c), c.cgroupID)
		return nil
	}
	rep, err := p.backend.Apply(c.cgroupID, c.set)
	if err != nil {
		return fmt.Errorf("nri-armor: %s: applying policy set %s to cgroup %d: %w", p.who(c), c.set.ShortDigest(), c.cgroupID, err)
	}
	c.applied = true
	rep, byProfile := withAppArmor(c, rep)
	c.enforcers, c.unenforced = enforcement(p.backend, c.set, rep)
	for cl, by := range byProfile {
		if c.enforcers == nil {
			c.enforcers = map[policy.Class]string{}
		}
		c.enforcers[cl] = by
	}
	c.enforcers, c.unenforced = withFilter(c.filter, c.set, c.enforcers, c.unenforced)
	p.logUnenforced(ctx, p.who(c), c.set, rep)
	by := p.backend.Name()
	if c.profile != "" {
		by += " and AppArmor profile " + c.profile
	}
	nrilog.Infof(ctx, "%s: policy set %s (%d policies) applied to cgroup %d by %s", p.who(c), c.set.ShortDigest(), len(c.set.Policies), c.cgroupID, by)
	return nil
}

// forget stops enforcing on the container's cgroup, deletes its state
// record and drops it. The caller holds p.mu.
func (p *Plugin) forget(ctx context.Context, id string) error {
	c, ok := p.containers[id]
	if !ok {
		return nil
	}
	if c.applied {
		if err := p.backend.Remove(c.cgroupID); err != nil {
			// Kept, so that the runtime's retry of the removal retries this.
			return fmt.Errorf("nri-armor: container %s: releasing cgroup %d: %w", id, c.cgroupID, err)
		}
		nrilog.Infof(ctx, "container %s: cgroup %d released", id, c.cgroupID)
	}
	p.unpublish(ctx, c)
	p.released(ctx, c.set)
	delete(p.containers, id)
	return p.dropProfiles(ctx, "ctr:"+id)
}

// snapshot is what the plugin knows about one container, for tests.
type snapshot struct {
	pod, name, digest string
	cgroupID          uint64
}

// containerState returns the plugin's view of container id.
func (p *Plugin) containerState(id string) (snapshot, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.containers[id]
	if !ok {
		return snapshot{}, false
	}
	return snapshot{pod: c.pod, name: c.name, digest: c.digest(), cgroupID: c.cgroupID}, true
}

// hasPod says whether the plugin knows sandbox id.
func (p *Plugin) hasPod(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.pods[id]
	return ok
}

// Enforced counts the started containers that have a rule set, per class
// and backend that enforces it in the kernel for them.
func (p *Plugin) Enforced() map[policy.Class]map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[policy.Class]map[string]int{}
	for _, c := range p.containers {
		// A container without rules may be applied too (exempt from the
		// host set): it has no set to count.
		if !c.applied || c.set == nil {
			continue
		}
		// Only what a backend really enforces in the kernel: a class none
		// can (file on a node without BPF-LSM or AppArmor) is audited by
		// the tracer.
		for cl, by := range c.enforcers {
			if out[cl] == nil {
				out[cl] = map[string]int{}
			}
			out[cl][by]++
		}
	}
	return out
}

// logUnenforced says what of rs the backend does not enforce: one line per
// reason with the count and one example (a set of thousands of file rules
// on a node without BPF-LSM must not log thousands of lines per container,
// which also cost milliseconds per start); `armorctl explain` lists them.
func (p *Plugin) logUnenforced(ctx context.Context, who string, rs *policy.RuleSet, rep enforce.Report) {
	type reason struct {
		n       int
		example string
	}
	var order []string
	byReason := map[string]*reason{}
	for _, u := range rep.Unenforced {
		r := byReason[u.Reason]
		if r == nil {
			r = &reason{example: u.Rule.Describe()}
			byReason[u.Reason] = r
			order = append(order, u.Reason)
		}
		r.n++
	}
	for _, why := range order {
		r := byReason[why]
		nrilog.Warnf(ctx, "%s: %s: %d rules not enforced in the kernel (e.g. %s): %s; armor-tracer audits them", who, rs.ShortDigest(), r.n, r.example, why)
	}
}
