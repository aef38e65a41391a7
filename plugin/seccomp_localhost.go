package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/nri/pkg/api"
	nrilog "github.com/containerd/nri/pkg/log"

	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/policy"
)

// The seccomp Localhost route (enforce/seccomp, RouteLocalhost): on a
// runtime that does not show plugins a container's seccomp policy
// (CRI-O, containerd before 2.3), a container's syscall rules reach its
// filter through a profile file under the kubelet's seccomp root, the
// runtime's default with the rules merged in, which the pod names
// (securityContext.seccompProfile {type: Localhost, localhostProfile:
// nri-armor/NAME.json}; the pod webhook sets it). As for AppArmor
// (apparmor.go), the plugin
//
//   - writes the profile of every container a starting pod's annotations
//     name one for (seccomp.nri-armor.dev/CONTAINER, which the webhook
//     writes beside the field) at RunPodSandbox: the runtime reads the
//     file while it builds the container's spec, before CreateContainer;
//     a name that is not the one the pod's namespace, labels and
//     annotations give fails the pod;
//   - rewrites the files when a policy edit changes their rules (atomic
//     renames): a running container's filter cannot change (its syscall
//     rules are reported unenforced until it is created again, as on the
//     merge route), a container created again reads the new file;
//   - at CreateContainer, refuses a container with Block rules whose pod
//     names no profile of nri-armor's, or whose runtime shows another
//     profile (containerd 2.2.1 and later; CRI-O's annotation);
//   - at the start gate, refuses a container whose bundle's filter is not
//     its profile's (seccomp.CheckBundle), and at StartContainer one whose
//     bundle no hook checked;
//   - removes a file when no pod names it any more.

// scProfiles is what the plugin knows of the seccomp profiles it wrote:
// the pods (by sandbox id) whose annotations name each, by name.
type scProfiles map[string]map[string]bool

// profileRef is the localhostProfile container name of pod pd names for
// itself ("" for none), checked against the name nri-armor gives it.
func (p *Plugin) profileRef(pd *pod, name string) (string, seccomp.Base, error) {
	ref, ok := pd.annotations[seccomp.ProfileAnnotation+name]
	if !ok {
		return "", "", nil
	}
	base, ours := seccomp.ParseProfileName(ref)
	if !ours {
		return "", "", fmt.Errorf("nri-armor: pod %s/%s: annotation %s%s names %q, not a seccomp profile of nri-armor's (%s/…)", pd.namespace, pd.name, seccomp.ProfileAnnotation, name, ref, seccomp.ProfileDir)
	}
	if want := seccomp.ProfileName(pd.policyPod(), name, base); ref != want {
		return "", "", fmt.Errorf("nri-armor: pod %s/%s: annotation %s%s names seccomp profile %s, but the pod's namespace, labels (%v) and annotations give %s (changed since admission?)", pd.namespace, pd.name, seccomp.ProfileAnnotation, name, ref, pd.labels, want)
	}
	return ref, base, nil
}

// podSeccompProfiles writes, for a starting pod, the profile of every
// container its annotations name one for. The caller holds p.mu.
func (p *Plugin) podSeccompProfiles(ctx context.Context, sb *api.PodSandbox) error {
	pd := p.pods[sb.GetId()]
	if pd == nil {
		return nil
	}
	var names []string
	for k := range pd.annotations {
		if n, ok := strings.CutPrefix(k, seccomp.ProfileAnnotation); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		ref, base, err := p.profileRef(pd, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := p.writeSeccompProfile(ctx, pd, name, ref, base); err != nil {
			errs = append(errs, err)
			continue
		}
		if p.scFiles[ref] == nil {
			p.scFiles[ref] = map[string]bool{}
		}
		p.scFiles[ref][sb.GetId()] = true
	}
	return errors.Join(errs...)
}

// writeSeccompProfile writes profile ref of container name of pod pd, for
// its rules as resolved now, atomically. The caller holds p.mu.
func (p *Plugin) writeSeccompProfile(ctx context.Context, pd *pod, name, ref string, base seccomp.Base) error {
	who := fmt.Sprintf("pod %s/%s container %s", pd.namespace, pd.name, name)
	r, err := p.resolve(pd, name)
	if err != nil {
		return err
	}
	plan, err := seccomp.PlanOn(r.compiled, p.sc)
	if err != nil {
		return fmt.Errorf("nri-armor: %s: syscall rules: %w", who, err)
	}
	plan.LogRefusals = p.sc.LogRefusals
	format := p.runtime.Format
	if format == "" {
		format = seccomp.FormatOCI
	}
	body, err := seccomp.Profile(format, plan, p.sc.Arch, base)
	if err != nil {
		return fmt.Errorf("nri-armor: %s: seccomp profile %s: %w", who, ref, err)
	}
	file := seccomp.ProfilePath(p.scRoot, ref)
	if old, err := os.ReadFile(file); err == nil && string(old) == string(body) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("nri-armor: %s: seccomp profile: %w", who, err)
	}
	tmp := file + ".new"
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		return fmt.Errorf("nri-armor: %s: seccomp profile: %w", who, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("nri-armor: %s: seccomp profile: %w", who, err)
	}
	nrilog.Infof(ctx, "%s: seccomp profile %s written (%s, %s base): refuses %v, logs %v", who, file, format, base, plan.Blocked, plan.Logged)
	return nil
}

// rewriteSeccompProfiles writes every profile again after a policy edit,
// from a pod that names it. The caller holds p.mu.
func (p *Plugin) rewriteSeccompProfiles(ctx context.Context) error {
	var errs []error
	for ref, users := range p.scFiles {
		for id := range users {
			pd := p.pods[id]
			if pd == nil {
				continue
			}
			for k, v := range pd.annotations {
				if name, ok := strings.CutPrefix(k, seccomp.ProfileAnnotation); ok && v == ref {
					base, _ := seccomp.ParseProfileName(ref)
					errs = append(errs, p.writeSeccompProfile(ctx, pd, name, ref, base))
					break
				}
			}
			break
		}
	}
	return errors.Join(errs...)
}

// dropSeccompProfiles forgets pod id, and removes the profiles no pod
// names any more. The caller holds p.mu.
func (p *Plugin) dropSeccompProfiles(ctx context.Context, id string) error {
	var errs []error
	for ref, users := range p.scFiles {
		if !users[id] {
			continue
		}
		delete(users, id)
		if len(users) > 0 {
			continue
		}
		delete(p.scFiles, ref)
		if err := os.Remove(seccomp.ProfilePath(p.scRoot, ref)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("nri-armor: seccomp profile %s: %w", ref, err))
			continue
		}
		nrilog.Infof(ctx, "seccomp profile %s removed: no pod names it", ref)
	}
	return errors.Join(errs...)
}

// pruneSeccompProfiles, at Synchronize, removes the profile files no live
// pod names: those of pods removed while nri-armor was down.
func (p *Plugin) pruneSeccompProfiles(ctx context.Context) {
	dir := seccomp.ProfilePath(p.scRoot, seccomp.ProfileDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		ref := seccomp.ProfileDir + "/" + e.Name()
		if _, ours := seccomp.ParseProfileName(ref); !ours || len(p.scFiles[ref]) > 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err == nil {
			nrilog.Infof(ctx, "seccomp profile %s removed: no pod names it", ref)
		}
	}
}

// localhostWant is the Localhost profile container c must run with on the
// Localhost route ("" when its pod names none). The caller holds p.mu.
func (p *Plugin) localhostWant(c *container) (string, seccomp.Base, error) {
	pd := p.pods[c.pod]
	if pd == nil {
		return "", "", nil
	}
	ref, base, err := p.profileRef(pd, c.name)
	if err != nil || ref == "" {
		return "", "", err
	}
	return seccomp.ProfilePath(p.scRoot, ref), base, nil
}

// checkLocalhost checks, at the start gate, that the bundle's seccomp
// section is c's Localhost profile (seccomp.CheckBundle); ref is the
// profile the runtime says it loaded. The caller holds p.mu.
func (p *Plugin) checkLocalhost(c *container, pol *api.LinuxSeccomp, ref string) error {
	f := c.filter
	if err := seccomp.CheckBundle(*f.localhost, pol, ref); err != nil {
		if c.mode != policy.ModeEnforce || p.failOpen {
			f.installed = false // started all the same; its rules go unenforced
			return nil
		}
		return fmt.Errorf("nri-armor: %s: the bundle's config.json: %w: refusing to start it (its pod must name securityContext.seccompProfile {type: Localhost, localhostProfile: %s}, as nri-armor's pod webhook sets it)", p.who(c), err, strings.TrimPrefix(strings.TrimPrefix(f.localhost.Path, p.scRoot), "/"))
	}
	f.checked = true
	return nil
}

// checkLocalhostChecked, at StartContainer, refuses a container on the
// Localhost route whose bundle no runtime hook checked. The caller holds
// p.mu.
func (p *Plugin) checkLocalhostChecked(c *container) error {
	if c.filter == nil || c.filter.localhost == nil || c.filter.checked || c.mode != policy.ModeEnforce || p.failOpen {
		return nil
	}
	return fmt.Errorf("nri-armor: %s: its syscall rules are enforced by seccomp profile %s, but no runtime hook of nri-armor's checked that its spec has it (the node's start gate, gateBinary, is needed on this runtime): refusing to start it", p.who(c), c.filter.localhost.Path)
}
