package plugin

import (
	"context"
	"fmt"
	"time"

	nrilog "github.com/containerd/nri/pkg/log"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/internal/rootpath"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
)

// The host set: the KubeArmorHostPolicies whose nodeSelector matches the
// node's labels (Config.Node), compiled with the node's defaults into one
// set for the node's own processes — every process outside a container.
// The backend must be an enforce.HostBackend; containers without rules are
// then exempted (enforce), so that the host set does not reach them.

// Node is the node nri-armor runs on, as host policies select it.
type Node struct {
	Name   string
	Labels map[string]string
}

// host is what the plugin holds for the node's own processes.
type host struct {
	set        *policy.RuleSet // nil: no host policy applies
	enforcers  map[policy.Class]string
	unenforced []int
}

// ApplyHost resolves the host policies of the current catalog and has the
// backend enforce them on the node's own processes (or stop, when none
// applies any more), then publishes the host record. On error the previous
// host set stays in force.
func (p *Plugin) ApplyHost(ctx context.Context) error {
	cat := p.Catalog()
	var rs *policy.RuleSet
	if pols := cat.ResolveHost(p.node.Labels); len(pols) > 0 {
		rs = p.compiler.Compile(pols, policy.Options{Postures: p.defaults.Postures, Mode: p.defaults.Mode})
		if rs.Empty() || p.defaults.Mode == policy.ModeDisabled {
			rs = nil
		}
		if rs != nil {
			// The node's own processes see the host's root: /proc/1/root
			// (nri-armor runs with hostPID).
			rs = p.aliased(ctx, "host", rs, rootpath.New(p.proc+"/1/root", 0))
		}
	}
	p.hostMu.Lock()
	defer p.hostMu.Unlock()
	if digestOf(rs) == digestOf(p.host.set) {
		return nil
	}
	hb, ok := p.backend.(enforce.HostBackend)
	switch {
	case rs == nil && ok:
		if err := hb.RemoveHost(); err != nil {
			return fmt.Errorf("nri-armor: releasing the host policy set: %w", err)
		}
		nrilog.Infof(ctx, "host: no host policy applies any more")
		p.host = host{}
	case rs == nil:
		p.host = host{}
	case !ok:
		return fmt.Errorf("nri-armor: host policies %v: backend %s cannot enforce on the node's own processes", rs.Policies, p.backend.Name())
	default:
		rep, err := hb.ApplyHost(rs)
		if err != nil {
			return fmt.Errorf("nri-armor: applying host policy set %s: %w", rs.ShortDigest(), err)
		}
		p.logUnenforced(ctx, "host", rs, rep)
		en, un := enforcement(p.backend, rs, rep)
		p.host = host{set: rs, enforcers: en, unenforced: un}
		nrilog.Infof(ctx, "host: policy set %s (%d policies) applied to the node's own processes by %s", rs.ShortDigest(), len(rs.Policies), p.backend.Name())
	}
	p.publishHost(ctx)
	return nil
}

// publishHost writes the host record (and its set first). The caller holds p.hostMu.
func (p *Plugin) publishHost(ctx context.Context) {
	if p.state == nil {
		return
	}
	rec := state.Host{
		NodeName: p.node.Name, NodeLabels: p.node.Labels, Mode: p.defaults.Mode,
		Visibility: p.defaults.Visibility, Enforcers: p.host.enforcers, Unenforced: p.host.unenforced,
		Updated: time.Now().UTC(),
	}
	if rs := p.host.set; rs != nil {
		if err := p.state.PutSet(rs); err != nil {
			p.publishFailed(ctx, nil, err)
			return
		}
		rec.PolicySet = rs.Digest
	}
	if err := p.state.PutHost(rec); err != nil {
		p.publishFailed(ctx, nil, err)
	}
}

// digestOf is the set's digest, "" for no set.
func digestOf(rs *policy.RuleSet) string {
	if rs == nil {
		return ""
	}
	return rs.Digest
}
