package plugin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/containerd/nri/pkg/api"
	nrilog "github.com/containerd/nri/pkg/log"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/ocihook"
	"github.com/nri-armor/nri-armor/policy"
)

// The AppArmor backend (enforce/apparmor), where BPF-LSM is not active:
// a container whose set has process, file or capability rules runs under
// a profile of its own, apparmor.ProfileName of its pod and name. No NRI
// version can set or see a container's AppArmor profile: the pod names it
// (securityContext.appArmorProfile, Localhost; the admission webhook sets
// it) and runc puts the container's process under it. So the plugin
//
//   - loads the profiles a pod's containers will need when the pod starts
//     (RunPodSandbox): containerd checks that a Localhost profile is
//     loaded while it builds the container's spec, before it calls
//     CreateContainer. A pod says which containers need one by the
//     annotation Kubernetes used for AppArmor before 1.30,
//     container.apparmor.security.beta.kubernetes.io/NAME:
//     localhost/PROFILE, which the webhook writes beside the field (the
//     runtime shows the plugin a pod's annotations, never its containers'
//     security contexts);
//   - loads the profile again at CreateContainer (CRI-O checks nothing),
//     at the container's start with the aliases of its symlinked rule
//     paths, and whenever a policy edit changes it (in place: running
//     containers keep their profile, with the new rules);
//   - refuses, in enforce mode, a container whose spec names no profile,
//     another, or one that is not loaded: the runtime hook reads
//     config.json (checkBundle, on containerd and CRI-O alike), and
//     StartContainer refuses a container the hook did not check;
//   - removes a profile when no pod and no container uses it any more.

// appArmorAnnotation prefixes the pod annotation that names a container's
// AppArmor profile ("localhost/NAME").
const appArmorAnnotation = "container.apparmor.security.beta.kubernetes.io/"

// profiles is what the plugin knows of the profiles it loaded.
type profiles struct {
	loader *apparmor.Loader
	// users of each loaded profile: "pod:ID" for a pod whose annotation
	// names it, "ctr:ID" for a container that runs under it.
	users map[string]map[string]bool
}

func (a *profiles) use(name, user string) {
	if a.users[name] == nil {
		a.users[name] = map[string]bool{}
	}
	a.users[name][user] = true
}

// drop forgets user, and removes every profile that has no user left. The
// caller holds p.mu.
func (p *Plugin) dropProfiles(ctx context.Context, user string) error {
	if p.aa == nil {
		return nil
	}
	var errs []error
	for name, users := range p.aa.users {
		if !users[user] {
			continue
		}
		delete(users, user)
		if len(users) > 0 {
			continue
		}
		delete(p.aa.users, name)
		if err := p.aa.loader.Unload(name); err != nil {
			errs = append(errs, err)
			continue
		}
		nrilog.Infof(ctx, "AppArmor profile %s removed: no pod or container uses it", name)
	}
	return errors.Join(errs...)
}

// loadProfile compiles the profile name of set rs (nil: the base alone)
// with the policies' raw rules, and loads it unless the kernel holds it
// already. The caller holds p.mu.
func (p *Plugin) loadProfile(ctx context.Context, name string, rs *policy.RuleSet, raw []apparmor.RawRules) (apparmor.Profile, error) {
	prof, err := apparmor.Compile(name, apparmor.Restrict(rs), raw)
	if err != nil {
		return prof, err
	}
	start := time.Now()
	loaded, err := p.aa.loader.Load(prof)
	if err != nil {
		return prof, err
	}
	if loaded {
		nrilog.Infof(ctx, "AppArmor profile %s (policy set %s) loaded in %v", name, digestOf(rs), time.Since(start).Round(time.Millisecond))
	}
	return prof, nil
}

// podProfiles loads, for a starting pod, the profile of every container
// its annotations name an nri-armor profile for. A name that is not the
// one the pod's namespace, labels and annotations give (they changed
// since the webhook computed it) fails the pod: its containers could not
// run under their rules. The caller holds p.mu.
func (p *Plugin) podProfiles(ctx context.Context, sb *api.PodSandbox) error {
	pd := p.pods[sb.GetId()]
	if p.aa == nil || pd == nil {
		return nil
	}
	keys := make([]string, 0, len(pd.annotations))
	for k := range pd.annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		ctr, ok := strings.CutPrefix(k, appArmorAnnotation)
		name, local := strings.CutPrefix(pd.annotations[k], "localhost/")
		if !ok || !local || !strings.HasPrefix(name, apparmor.NamePrefix) {
			continue
		}
		if want := apparmor.ProfileName(pd.policyPod(), ctr); name != want {
			errs = append(errs, fmt.Errorf("nri-armor: pod %s/%s: annotation %s names AppArmor profile %s, but the pod's namespace, labels (%v) and annotations give %s (changed since admission?)", pd.namespace, pd.name, k, name, pd.labels, want))
			continue
		}
		r, err := p.resolve(pd, ctr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := p.loadProfile(ctx, name, r.compiled, r.raw); err != nil {
			errs = append(errs, fmt.Errorf("nri-armor: pod %s/%s container %s: %w", pd.namespace, pd.name, ctr, err))
			continue
		}
		p.aa.use(name, "pod:"+sb.GetId())
	}
	return errors.Join(errs...)
}

// attachProfile gives a container whose set needs AppArmor its profile's
// name and loads the profile. The caller holds p.mu.
func (p *Plugin) attachProfile(ctx context.Context, c *container) error {
	if p.aa == nil || !apparmor.Needs(c.set) {
		return nil
	}
	c.profile = apparmor.ProfileName(p.pods[c.pod].policyPod(), c.name)
	p.aa.use(c.profile, "ctr:"+c.id)
	return p.containerProfile(ctx, c)
}

// containerProfile loads the profile of a container that has one, from
// its set as enforced now, and remembers what it leaves unenforced. The
// caller holds p.mu.
func (p *Plugin) containerProfile(ctx context.Context, c *container) error {
	if c.profile == "" {
		if p.aa != nil && apparmor.Needs(c.set) && c.cgroupID != 0 {
			// A policy edit gave rules to a container created without
			// them: its spec names no profile of nri-armor's.
			nrilog.Warnf(ctx, "%s: runs under no AppArmor profile of nri-armor's: its new process, file and capability rules are not enforced until it is created again", p.who(c))
		}
		return nil
	}
	prof, err := p.loadProfile(ctx, c.profile, c.set, c.raw)
	if err != nil {
		return fmt.Errorf("nri-armor: %s: %w", p.who(c), err)
	}
	c.apparmor = &prof
	return nil
}

// checkProfileSpec checks, for a container under AppArmor, the profile
// its bundle's config.json names (runc puts the process under it), and
// that nothing in the spec lets the container step around the profile's
// file and process rules: open_tree(OPEN_TREE_CLONE) makes a detached
// copy of a mount tree, which no LSM hook of AppArmor's sees (6.1), whose
// files AppArmor names from their filesystem's root — other names than
// the rules' (fsopen and fsmount likewise, for a new instance of a
// filesystem). They take CAP_SYS_ADMIN over the mount namespace (the
// container's own, or a user namespace's of its own making), so such a
// container must have detachedMountCalls refused by its seccomp filter
// (the runtime's default does, without CAP_SYS_ADMIN) and no
// CAP_SYS_ADMIN (with which the default allows them). pol is the bundle's seccomp policy
// (nil for none). The caller holds p.mu.
func (p *Plugin) checkProfileSpec(c *container, req ocihook.Request, pol *api.LinuxSeccomp) error {
	if c.profile == "" || c.mode != policy.ModeEnforce || p.failOpen {
		return nil
	}
	if !req.SpecRead {
		return fmt.Errorf("nri-armor: %s: the hook could not read the container's config.json, so not which AppArmor profile it runs under: refusing to start it", p.who(c))
	}
	if req.AppArmorProfile != c.profile {
		return fmt.Errorf("nri-armor: %s: its rules are enforced by AppArmor profile %s on this node, but its spec names %s: refusing to start it (set securityContext.appArmorProfile {type: Localhost, localhostProfile: %s}; nri-armor's admission webhook does)", p.who(c), c.profile, profileOrNone(req.AppArmorProfile), c.profile)
	}
	if loaded, err := p.aa.loader.Loaded(c.profile); err != nil || !loaded {
		return fmt.Errorf("nri-armor: %s: AppArmor profile %s is not loaded (%v): refusing to start it", p.who(c), c.profile, err)
	}
	if c.set != nil && len(c.set.File.Rules)+len(c.set.Process.Rules) > 0 {
		const why = "AppArmor cannot hold its file and process rules against detached mount trees (open_tree, fsopen and fsmount: their files are named otherwise)"
		if slices.Contains(req.Bounding, "CAP_SYS_ADMIN") {
			return fmt.Errorf("nri-armor: %s: it may hold CAP_SYS_ADMIN, and %s: refusing to start it (drop CAP_SYS_ADMIN, or run it on a node with BPF-LSM)", p.who(c), why)
		}
		if pol == nil {
			return fmt.Errorf("nri-armor: %s: it runs without a seccomp filter (Unconfined), and %s: refusing to start it (set securityContext.seccompProfile {type: RuntimeDefault})", p.who(c), why)
		}
		if err := seccomp.Carries(pol, seccomp.Plan{Blocked: detachedMountCalls}); err != nil {
			return fmt.Errorf("nri-armor: %s: %v, and %s: refusing to start it (set securityContext.seccompProfile {type: RuntimeDefault})", p.who(c), err, why)
		}
	}
	c.profileChecked = true
	return nil
}

// detachedMountCalls make or attach detached mount trees: open_tree (a
// copy of a tree the process sees), fsopen and fsmount (a new instance
// of a filesystem), move_mount (attaching either). None has an AppArmor
// hook on 6.1. The runtime's default seccomp filter refuses them all
// without CAP_SYS_ADMIN.
var detachedMountCalls = []string{"fsmount", "fsopen", "move_mount", "open_tree"}

// checkProfileChecked, at StartContainer, refuses a container under
// AppArmor whose bundle the runtime hook did not check (checkProfileSpec):
// a spec without the hook (another plugin removed it, or the node has no
// start gate) could name any profile. It cannot read the profile runc set
// on the waiting process instead: the kernel shows /proc/PID/attr/exec
// of the reading process, not of PID (apparmor_getprocattr). The caller
// holds p.mu.
func (p *Plugin) checkProfileChecked(c *container) error {
	if c.profile == "" || c.profileChecked || c.mode != policy.ModeEnforce || p.failOpen {
		return nil
	}
	return fmt.Errorf("nri-armor: %s: its rules are enforced by AppArmor profile %s, but no runtime hook of nri-armor's checked that its spec names it (the node's start gate, gateBinary, is needed for AppArmor): refusing to start it", p.who(c), c.profile)
}

// syncProfile, at Synchronize, gives a container under AppArmor that a
// restarted plugin did not know its profile. One created but not started
// gets it as at CreateContainer (the hook checks its spec). A running
// one keeps it only if its process runs under it; one that does not
// (created while nri-armor was down, with no profile) keeps its rules
// unenforced by AppArmor, which is logged. The caller holds p.mu.
func (p *Plugin) syncProfile(ctx context.Context, c *container, pid int) {
	if p.aa == nil || !apparmor.Needs(c.set) {
		return
	}
	if pid == 0 {
		if err := p.attachProfile(ctx, c); err != nil {
			nrilog.Errorf(ctx, "synchronize: %v (the runtime hook refuses it if its profile is not loaded)", err)
		}
		return
	}
	name := apparmor.ProfileName(p.pods[c.pod].policyPod(), c.name)
	label, err := apparmor.CurrentLabel(p.proc, pid)
	if err != nil || label != name {
		nrilog.Errorf(ctx, "%s: runs under AppArmor profile %s (%v), not its own %s: its process, file and capability rules are not enforced until it restarts", p.who(c), profileOrNone(label), err, name)
		return
	}
	c.profile = name
	p.aa.use(name, "ctr:"+c.id)
}

// pruneProfiles, at Synchronize, removes the nri-armor profiles that no
// live pod names and no live process runs under: those of pods removed
// while nri-armor was down. live are the labels the runtime's running
// containers run under. The caller holds p.mu.
func (p *Plugin) pruneProfiles(ctx context.Context, live map[string]bool) {
	if p.aa == nil {
		return
	}
	names, err := p.aa.loader.Names()
	if err != nil {
		nrilog.Warnf(ctx, "listing AppArmor profiles: %v", err)
		return
	}
	for _, n := range names {
		if live[n] || len(p.aa.users[n]) > 0 {
			continue
		}
		if err := p.aa.loader.Unload(n); err != nil {
			nrilog.Warnf(ctx, "%v", err)
			continue
		}
		nrilog.Infof(ctx, "AppArmor profile %s removed: no pod or container uses it", n)
	}
}

// withAppArmor replaces, in a backend's report, what it says of the
// classes AppArmor enforces for the container by what its profile leaves
// out. The second result says which of those classes the profile
// enforces (a rule not wholly unenforced).
func withAppArmor(c *container, rep enforce.Report) (enforce.Report, map[policy.Class]string) {
	if c.apparmor == nil || c.set == nil {
		return rep, nil
	}
	ours := map[policy.Class]bool{}
	for _, cl := range apparmor.Classes {
		ours[cl] = true
	}
	out := enforce.Report{}
	for _, u := range rep.Unenforced {
		if !ours[u.Rule.Class] {
			out.Unenforced = append(out.Unenforced, u)
		}
	}
	out.Unenforced = append(out.Unenforced, c.apparmor.Unenforced...)
	return out, enforcedBy(enforce.BackendAppArmor, apparmor.Classes, c.set, out)
}

// AppArmorProfiles counts the profiles the plugin holds loaded.
func (p *Plugin) AppArmorProfiles() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.aa == nil {
		return 0
	}
	return len(p.aa.users)
}

func profileOrNone(name string) string {
	if name == "" {
		return "none"
	}
	return name
}
