package plugin

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/nri/pkg/api"
	nrilog "github.com/containerd/nri/pkg/log"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/policy"
)

// Syscall rules are enforced by a seccomp filter set at CreateContainer
// (package enforce/seccomp says why that is not a Backend): the plugin
// asks for it in its adjustment, validates the final adjustment (no other
// plugin replaced it), and checks at the start gate that the bundle's
// config.json has it.

// filter is what the plugin knows of a container's seccomp filter.
type filter struct {
	plan seccomp.Plan
	// installed: the container's filter carries plan (it was set at
	// creation, or Synchronize found it in the container's policy).
	installed bool
	// unenforced are the syscall rules no filter decides, with the reason.
	unenforced []enforce.Unenforced
	// localhost, on the Localhost route, is the profile that carries the
	// filter (seccomp_localhost.go); checked says that the start gate
	// found the bundle's filter to be it.
	localhost *seccomp.Expected
	checked   bool
}

// Configure records the runtime, whose name, version and NRI version
// decide how syscall rules reach its containers (seccomp.Table).
func (p *Plugin) Configure(ctx context.Context, _, runtime, version string) (api.EventMask, error) {
	rt := seccomp.Runtime{Name: runtime, Version: version}
	if s := p.stub.Load(); s != nil {
		rt.NRIVersion = (*s).RuntimeNRIVersion()
	}
	sup := seccomp.Table(rt)
	p.mu.Lock()
	p.runtime = sup
	p.mu.Unlock()
	if sup.Route == seccomp.RouteNone {
		nrilog.Warnf(ctx, "runtime %s: syscall rules cannot be enforced with seccomp: %s; containers with syscall Block rules are refused", rt, sup.Reason)
	} else {
		nrilog.Infof(ctx, "runtime %s: syscall rules enforced with seccomp (%s)", rt, sup.Route)
	}
	return 0, nil
}

// Runtime is what the plugin was told of the runtime, and what that
// allows for seccomp.
func (p *Plugin) Runtime() seccomp.Support {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runtime
}

// seccompFilter decides c's filter at CreateContainer and adds it to
// adjust; an error refuses the container. The caller holds p.mu.
func (p *Plugin) seccompFilter(ctx context.Context, c *container, ctr *api.Container, adjust *api.ContainerAdjustment) error {
	c.filter = nil
	if c.set == nil || len(c.set.Syscalls.Rules) == 0 {
		return nil
	}
	var d seccomp.Decision
	if p.runtime.Route == seccomp.RouteLocalhost {
		want, base, err := p.localhostWant(c)
		if err != nil {
			return err
		}
		d = seccomp.DecideLocalhost(p.runtime, c.set, p.sc, ctr, want)
		if d.Localhost != "" {
			c.filter = &filter{plan: d.Plan, installed: true, unenforced: d.Unenforced,
				localhost: &seccomp.Expected{Path: d.Localhost, Format: p.runtime.Format, Arch: p.sc.Arch, Base: base, Plan: d.Plan}}
			nrilog.Infof(ctx, "%s: seccomp profile %s refuses %v, logs %v", p.who(c), d.Localhost, d.Plan.Blocked, d.Plan.Logged)
			p.logFilterUnenforced(ctx, c)
			return nil
		}
	} else {
		d = seccomp.Decide(p.runtime, c.set, p.sc, ctr)
	}
	c.filter = &filter{plan: d.Plan, installed: d.Policy != nil, unenforced: d.Unenforced}
	if d.Refuse != nil {
		err := fmt.Errorf("nri-armor: %s: %w", p.who(c), d.Refuse)
		switch {
		case c.mode == policy.ModeAudit:
			nrilog.Warnf(ctx, "%v (audit mode: the container is created anyway)", err)
		case p.failOpen:
			nrilog.Errorf(ctx, "%v (fail mode open: the container is created UNPROTECTED)", err)
		default:
			return err
		}
	}
	if d.Policy != nil {
		adjust.SetLinuxSeccompPolicy(d.Policy)
		nrilog.Infof(ctx, "%s: seccomp filter refuses %v, logs %v", p.who(c), d.Plan.Blocked, d.Plan.Logged)
	}
	p.logFilterUnenforced(ctx, c)
	return nil
}

// logFilterUnenforced says which syscall rules no filter decides, one line
// per reason. The caller holds p.mu.
func (p *Plugin) logFilterUnenforced(ctx context.Context, c *container) {
	if c.filter == nil || len(c.filter.unenforced) == 0 {
		return
	}
	var order []string
	n := map[string]int{}
	for _, u := range c.filter.unenforced {
		if n[u.Reason] == 0 {
			order = append(order, u.Reason)
		}
		n[u.Reason]++
	}
	for _, why := range order {
		nrilog.Warnf(ctx, "%s: %d syscall rules not enforced by seccomp: %s; armor-tracer audits what the audit log shows of them", p.who(c), n[why], why)
	}
}

// withFilter folds c's filter into what the backend reported: the
// syscalls class is Seccomp's when the installed filter decides one of
// its rules, and the syscall rules it decides leave the unenforced list.
func withFilter(f *filter, rs *policy.RuleSet, enforcers map[policy.Class]string, unenforced []int) (map[policy.Class]string, []int) {
	if f == nil || rs == nil {
		return enforcers, unenforced
	}
	decided := map[int]bool{}
	if f.installed {
		for _, id := range f.plan.Enforced {
			decided[id] = true
		}
	}
	var out []int
	for _, id := range unenforced {
		if !decided[id] {
			out = append(out, id)
		}
	}
	for _, u := range f.unenforced {
		if !slices.Contains(out, u.Rule.ID) {
			out = append(out, u.Rule.ID)
		}
	}
	slices.Sort(out)
	if len(decided) > 0 || len(f.plan.Kernel) > 0 {
		if enforcers == nil {
			enforcers = map[policy.Class]string{}
		}
		enforcers[policy.ClassSyscalls] = seccomp.Enforcer
		if len(decided) == 0 {
			// Only rules BPF-LSM decides in the kernel (plan.Kernel).
			enforcers[policy.ClassSyscalls] = enforce.BackendBPFLSM
		}
	}
	return enforcers, out
}

// checkFilter checks that pol, the seccomp policy the container is about
// to get (the final adjustment, or the bundle's), still carries c's
// filter. The caller holds p.mu.
func (p *Plugin) checkFilter(c *container, pol *api.LinuxSeccomp, where string) error {
	if c.filter == nil || !c.filter.installed {
		return nil
	}
	if c.filter.localhost != nil {
		if pol != nil {
			return fmt.Errorf("nri-armor: %s: %s sets a seccomp policy, which would replace nri-armor's Localhost profile %s", p.who(c), where, c.filter.localhost.Path)
		}
		return nil
	}
	if err := seccomp.Carries(pol, c.filter.plan); err != nil {
		return fmt.Errorf("nri-armor: %s: %s: %w (another NRI plugin or the runtime replaced nri-armor's seccomp policy)", p.who(c), where, err)
	}
	return nil
}

// resyncFilter decides, at Synchronize, what a container created before
// nri-armor (re)connected has: the filter the runtime shows carries its
// plan or not. Nothing can be set on it any more. The caller holds p.mu.
func (p *Plugin) resyncFilter(ctx context.Context, c *container, ctr *api.Container) {
	c.filter = nil
	if c.set == nil || len(c.set.Syscalls.Rules) == 0 {
		return
	}
	plan, err := seccomp.PlanOn(c.set, p.sc)
	if err != nil || plan.Empty() {
		return
	}
	plan.LogRefusals = p.sc.LogRefusals
	f := &filter{plan: plan, unenforced: plan.Unenforced}
	if p.runtime.Route == seccomp.RouteMerge && seccomp.Carries(ctr.GetLinux().GetSeccompPolicy(), plan) == nil {
		f.installed = true
	} else if want, _, _ := p.localhostWant(c); p.runtime.Route == seccomp.RouteLocalhost && want != "" && ranWith(ctr) == want {
		// Started under its profile (the gate checked it then); the file
		// may have changed since, and its filter with it only if the
		// rules did: a restart of nri-armor alone changes neither.
		f.installed, f.checked = true, true
	} else {
		f.unenforced = nil
		for _, r := range c.set.Syscalls.Rules {
			if r.Action != policy.Allow && !slices.Contains(plan.Kernel, r.ID) {
				f.unenforced = append(f.unenforced, enforce.Unenforced{Rule: r, Reason: "the container's seccomp filter, set when it was created, does not carry these rules (a filter cannot change once the container runs)"})
			}
		}
	}
	c.filter = f
	p.logFilterUnenforced(ctx, c)
}

// refilter keeps c's installed filter across a policy edit (Reapply): a
// running container's filter cannot change, so the new set's syscall
// rules count as enforced only where they ask for the same filter. The
// caller holds p.mu.
func (p *Plugin) refilter(ctx context.Context, c *container, old *filter) {
	c.filter = old
	if old == nil && (c.set == nil || len(c.set.Syscalls.Rules) == 0) {
		return
	}
	plan, _ := seccomp.PlanOn(c.set, p.sc)
	plan.LogRefusals = p.sc.LogRefusals
	if old != nil && old.installed && slices.Equal(plan.Blocked, old.plan.Blocked) && slices.Equal(plan.Logged, old.plan.Logged) {
		c.filter = &filter{plan: plan, installed: true, unenforced: plan.Unenforced, localhost: old.localhost, checked: old.checked}
		return
	}
	f := &filter{plan: plan, installed: old != nil && old.installed}
	if old != nil {
		// The profile the container was created with, and what it holds:
		// the start gate checks the bundle against that, not the edit.
		f.localhost, f.checked = old.localhost, old.checked
	}
	if c.set != nil {
		for _, r := range c.set.Syscalls.Rules {
			if r.Action != policy.Allow && !slices.Contains(plan.Kernel, r.ID) { // BPF-LSM's change at once
				f.unenforced = append(f.unenforced, enforce.Unenforced{Rule: r, Reason: "syscall rules changed while the container runs: its seccomp filter, set at creation, cannot change (they apply when it is created again)"})
			}
		}
	}
	f.plan.Enforced = nil
	c.filter = f
	p.logFilterUnenforced(ctx, c)
}

// seccompOwner is how NRI names nri-armor among adjustment owners
// ("<index>-<name>").
func seccompOwnedBy(owner, name string) bool {
	return owner == name || strings.HasSuffix(owner, "-"+name)
}

// ranWith is the Localhost profile a running container was created with,
// as its runtime shows it: containerd 2.2.1 and later in its seccomp
// profile, CRI-O in its spec's annotation; "" when neither says.
func ranWith(ctr *api.Container) string {
	if prof := ctr.GetLinux().GetSeccompProfile(); prof != nil && prof.GetProfileType() == api.SecurityProfile_LOCALHOST {
		return prof.GetLocalhostRef()
	}
	return ctr.GetAnnotations()[seccomp.CRIOProfileAnnotation]
}
