package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/containerd/nri/pkg/api"
	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nri-armor/nri-armor/ocihook"
	"github.com/nri-armor/nri-armor/policy"
)

// EnforceNow answers the start gate's hook (package ocihook): container
// id, whose init process is pid, is about to run; install its set now,
// exactly as StartContainer does (which then finds it done). An unknown
// container is an error: the hook is only added by this plugin, and
// Synchronize tells a restarted plugin of every container. rootfs is the
// container's root as the runtime's mount namespace names it: the hook
// runs before pivot_root, so the container's root is
// /proc/<pid>/root<rootfs>; with none, rule paths are resolved at
// StartContainer (alias.go).
func (p *Plugin) EnforceNow(ctx context.Context, id string, pid int, rootfs string) (err error) {
	defer func(start time.Time) { p.done("GateHook", start, err) }(time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.containers[id]
	if !ok {
		return fmt.Errorf("nri-armor does not know container %s (not yet synchronized with the runtime?): refusing to start it without its rules", id)
	}
	root := ""
	if rootfs != "" {
		root = p.rootOf(pid) + filepath.Clean("/"+rootfs)
	}
	return p.startOrRefuse(ctx, &api.Container{Id: id, Pid: uint32(pid)}, c, root)
}

// GuardNow answers the guard (ocihook.Guard, the runtime's hook for every
// container): a container the plugin knows is enforced as by EnforceNow.
// One it does not know was created without it (nri-armor down, the pod
// tolerating that; or not yet synchronized): it may start only when its
// namespace may weaken protection (the node's weakenNamespaces), as the
// guard decides while nri-armor is down.
func (p *Plugin) GuardNow(ctx context.Context, req ocihook.Request) error {
	p.mu.Lock()
	_, known := p.containers[req.ContainerID]
	p.mu.Unlock()
	if known {
		return p.EnforceNow(ctx, req.ContainerID, req.PID, req.Rootfs)
	}
	if req.Namespace != "" && p.defaults.MayWeaken(req.Namespace) {
		return nil
	}
	return fmt.Errorf("nri-armor does not know container %s (created while it was down?) and namespace %q may not start containers without it (the node's weakenNamespaces): refusing to start it", req.ContainerID, req.Namespace)
}

// Gate answers the start gate's socket (ocihook.Serve): the guard's
// requests by GuardNow, the per-container hook's by EnforceNow.
func (p *Plugin) Gate(ctx context.Context, req ocihook.Request) error {
	if err := p.checkBundle(req); err != nil {
		return err
	}
	if req.Guard {
		return p.GuardNow(ctx, req)
	}
	return p.EnforceNow(ctx, req.ContainerID, req.PID, req.Rootfs)
}

// checkBundle checks, for a known container, that the bundle's
// config.json the hook read carries its start gate, its seccomp filter and
// names its AppArmor profile: what runc is about to run and install, after
// every plugin and the runtime had their say.
func (p *Plugin) checkBundle(req ocihook.Request) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.containers[req.ContainerID]
	if !ok {
		return nil
	}
	if !req.SpecRead {
		if f := c.filter; f != nil && f.installed && f.localhost != nil && c.mode == policy.ModeEnforce && !p.failOpen {
			return fmt.Errorf("nri-armor: %s: the hook could not read the container's config.json, so not its seccomp filter (nri-armor's Localhost profile %s): refusing to start it", p.who(c), f.localhost.Path)
		}
		return p.checkProfileSpec(c, req, nil)
	}
	// Without its gate the rules would be installed at StartContainer,
	// whose refusal CRI-O only logs: a runtime that filtered the hook out
	// of the adjustment (none checked does: containerd 2.4.2, CRI-O 1.36.3)
	// is caught here, by the guard, which runs before it would have.
	if c.gated && req.HooksRead && !p.hook.Added(req.CreateRuntime) {
		return fmt.Errorf("nri-armor: %s: the bundle's config.json lacks the start gate nri-armor added through NRI (createRuntime hook %s): the runtime or another plugin dropped it, and the container's rules could not be installed before its first instruction: refusing to start it", p.who(c), p.hook.Binary)
	}
	var pol *api.LinuxSeccomp
	if len(req.Seccomp) > 0 && string(req.Seccomp) != "null" {
		var spec rspec.LinuxSeccomp
		if err := json.Unmarshal(req.Seccomp, &spec); err != nil {
			return fmt.Errorf("nri-armor: %s: the bundle's seccomp section: %w", p.who(c), err)
		}
		pol = api.FromOCILinuxSeccomp(&spec)
	}
	if err := p.checkProfileSpec(c, req, pol); err != nil {
		return err
	}
	if f := c.filter; f != nil && f.installed && f.localhost != nil {
		return p.checkLocalhost(c, pol, req.SeccompRef)
	}
	return p.checkFilter(c, pol, "the bundle's config.json")
}
