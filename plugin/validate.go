package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// The stub subscribes nri-armor to validation because Plugin has the method.
var _ stub.ValidateContainerAdjustmentInterface = (*Plugin)(nil)

// ValidateContainerAdjustment makes nri-armor one of the runtime's
// adjustment validators, which closes a fail-open window of the fail-closed
// configuration (config/containerd-nri.toml): right after nri-armor dies or
// times out, NRI (v0.12.3, in containerd 2.4) still lists it, so its
// default validator counts it as present, while the CreateContainer call to
// it fails on the closed connection and is skipped without an error — the
// container would start unprotected (e2e TestCrashWindow). A validator that
// cannot be reached fails the request instead. When nri-armor answers, its
// own CreateContainer has already run in the same request; what is left to
// check is that the adjustment every plugin made together still carries
// the seccomp filter nri-armor asked for: only one plugin may own the
// policy, and a later one could have replaced it (seccomp.go).
func (p *Plugin) ValidateContainerAdjustment(_ context.Context, req *api.ValidateContainerAdjustmentRequest) (err error) {
	defer func(start time.Time) { p.done("ValidateContainerAdjustment", start, err) }(time.Now())
	id := req.GetContainer().GetId()
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.containers[id]
	if !ok || c.filter == nil || !c.filter.installed {
		return nil
	}
	if owners := req.GetOwners(); owners != nil {
		if owner, owned := owners.SeccompPolicyOwner(id); owned && c.filter.localhost != nil {
			return fmt.Errorf("nri-armor: %s: plugin %s sets the seccomp policy, replacing nri-armor's Localhost profile %s: its syscall rules would not be enforced", p.who(c), owner, c.filter.localhost.Path)
		}
		if owner, owned := owners.SeccompPolicyOwner(id); owned && !seccompOwnedBy(owner, p.name) {
			return fmt.Errorf("nri-armor: %s: plugin %s owns the seccomp policy, not nri-armor: its syscall rules would not be enforced", p.who(c), owner)
		}
	}
	return p.checkFilter(c, req.GetAdjust().GetLinux().GetSeccompPolicy(), "the runtime's final adjustment")
}
