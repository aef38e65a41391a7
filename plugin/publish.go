package plugin

import (
	"context"
	"sort"
	"time"

	"github.com/containerd/nri/pkg/api"
	nrilog "github.com/containerd/nri/pkg/log"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
)

// Publishing for armor-tracer (package state), when Config.State is set:
//
//   - Which containers: every started container that has a rule set, and
//     every one without a set whose visibility is not "none" (the tracer
//     reports their ContainerLog events and needs their identity too). A
//     container in mode disabled is left alone: no record.
//   - When: at StartContainer after the set is applied (so the record's
//     Enforcers are what the kernel really holds), after a policy edit
//     changed a running container's set (Reapply), and for every running
//     container in Synchronize, which also deletes the records of cgroups
//     that no container has any more. RemoveContainer deletes the record.
//   - A record's set file is written before the record, so a reader that
//     finds the record finds its set. A set file outlives its last
//     container by the grace period (DefaultSetGrace): events queued in the
//     ring buffer during a swap or a removal still resolve.
//   - Errors never refuse a container: what protects it is the kernel
//     state, which is in place; a missing record costs the tracer identity
//     in alerts, not the container its protection. An error is logged and
//     counted (PublishErrors, the metric
//     nri_armor_state_publish_errors_total), and the next Synchronize
//     writes every record again.

// DefaultSetGrace is how long a published rule set outlives its last
// container. Five minutes: far longer than a ring buffer holds events
// while armor-tracer is up, and long enough for a tracer restart.
const DefaultSetGrace = 5 * time.Minute

// Image annotations the runtimes put on containers; NRI's Image field is
// newer than containerd 2.4.2's embedded NRI (v0.12.3) and CRI-O's.
var imageAnnotations = []string{"io.kubernetes.cri.image-name", "io.kubernetes.cri-o.ImageName"}

// imageOf is the container's image reference, "" when the runtime gives none.
func imageOf(ctr *api.Container) string {
	if n := ctr.GetImage().GetName(); n != "" {
		return n
	}
	for _, k := range imageAnnotations {
		if v := ctr.GetAnnotations()[k]; v != "" {
			return v
		}
	}
	return ""
}

// wantsRecord says whether the tracer needs a record of the container.
func (c *container) wantsRecord() bool {
	return c.mode != policy.ModeDisabled && (c.set != nil || c.visibility != policy.Visibility{})
}

// enforcement says, per class of rs that has rules, what enforces it: the
// backend when the class is one of its own and it enforces at least one of
// the class's rules, if only in part (a class missing from the map is
// audited only). It also lists the ids of the rules the backend does not
// enforce, wholly or in part, which the tracer matches in user space.
func enforcement(b enforce.Backend, rs *policy.RuleSet, rep enforce.Report) (map[policy.Class]string, []int) {
	var ids []int
	seen := map[int]bool{}
	for _, u := range rep.Unenforced {
		if !seen[u.Rule.ID] {
			seen[u.Rule.ID] = true
			ids = append(ids, u.Rule.ID)
		}
	}
	sort.Ints(ids)
	return enforcedBy(b.Name(), b.Classes(), rs, rep), ids
}

// enforcedBy says which of classes enforcer name enforces for rs: those
// with a rule that rep does not list as wholly unenforced; nil for none.
func enforcedBy(name string, classes []policy.Class, rs *policy.RuleSet, rep enforce.Report) map[policy.Class]string {
	whole := map[int]bool{}
	for _, u := range rep.Unenforced {
		whole[u.Rule.ID] = whole[u.Rule.ID] || !u.Partial
	}
	var enforcers map[policy.Class]string
	for _, cl := range classes {
		for _, r := range rs.Class(cl).Rules {
			if !whole[r.ID] {
				if enforcers == nil {
					enforcers = map[policy.Class]string{}
				}
				enforcers[cl] = name
				break
			}
		}
	}
	return enforcers
}

// publish writes the container's record (and its set first), or deletes
// the record when the tracer no longer needs one. The caller holds p.mu.
func (p *Plugin) publish(ctx context.Context, c *container) {
	if p.state == nil || c.cgroupID == 0 {
		return
	}
	if !c.wantsRecord() {
		p.unpublish(ctx, c)
		return
	}
	rec := state.Container{
		CgroupID:      c.cgroupID,
		ContainerID:   c.id,
		ContainerName: c.name,
		Image:         c.image,
		Mode:          c.mode,
		Visibility:    c.visibility,
		Enforcers:     c.enforcers,
		Unenforced:    c.unenforced,
		Ignored:       c.ignored,
		Updated:       time.Now().UTC(),
	}
	if pd := p.pods[c.pod]; pd != nil {
		rec.PodName, rec.PodNamespace, rec.PodUID, rec.PodLabels = pd.name, pd.namespace, pd.uid, pd.labels
	}
	if c.set != nil {
		if err := p.state.PutSet(c.set); err != nil {
			p.publishFailed(ctx, c, err)
			return
		}
		rec.PolicySet = c.set.Digest
	}
	if err := p.state.PutContainer(rec); err != nil {
		p.publishFailed(ctx, c, err)
		return
	}
	c.published = true
}

// unpublish deletes the container's record. The caller holds p.mu.
func (p *Plugin) unpublish(ctx context.Context, c *container) {
	if p.state == nil || !c.published {
		return
	}
	if err := p.state.DeleteContainer(c.cgroupID); err != nil {
		p.publishFailed(ctx, c, err)
		return
	}
	c.published = false
}

// released starts the grace period of a set a container stopped using: its
// file's time is its last use, which is what PruneSets measures from.
func (p *Plugin) released(ctx context.Context, rs *policy.RuleSet) {
	if p.state == nil || rs == nil {
		return
	}
	if err := p.state.PutSet(rs); err != nil {
		p.publishFailed(ctx, nil, err)
	}
}

// publishFailed logs and counts a publishing error; the container is
// enforced regardless.
func (p *Plugin) publishFailed(ctx context.Context, c *container, err error) {
	p.publishErrors.Add(1)
	who := "nri-armor"
	if c != nil {
		who = p.who(c)
	}
	nrilog.Errorf(ctx, "%s: publishing state for armor-tracer: %v (enforcement is not affected)", who, err)
}

// sweep deletes the records of cgroups that no known container has (their
// containers went away while nri-armor was not listening) and prunes
// unused set files. The caller holds p.mu.
func (p *Plugin) sweep(ctx context.Context) {
	if p.state == nil {
		return
	}
	recs, err := p.state.Containers()
	if err != nil {
		p.publishFailed(ctx, nil, err)
		return
	}
	mine := map[uint64]bool{}
	for _, c := range p.containers {
		if c.published {
			mine[c.cgroupID] = true
		}
	}
	for _, r := range recs {
		if !mine[r.CgroupID] {
			if err := p.state.DeleteContainer(r.CgroupID); err != nil {
				p.publishFailed(ctx, nil, err)
			}
		}
	}
	p.prune(ctx)
}

// prune removes the set files that no container has used for the grace
// period. The caller holds p.mu.
func (p *Plugin) prune(ctx context.Context) {
	inUse := map[string]bool{}
	for _, c := range p.containers {
		if c.set != nil {
			inUse[c.set.Digest] = true
		}
	}
	p.hostMu.Lock()
	inUse[digestOf(p.host.set)] = true
	p.hostMu.Unlock()
	if err := p.state.PruneSets(inUse, p.setGrace); err != nil {
		p.publishFailed(ctx, nil, err)
	}
}

// PruneState removes published rule sets that no container has used for
// the grace period; the daemon calls it periodically.
func (p *Plugin) PruneState(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != nil {
		p.prune(ctx)
	}
}

// PublishErrors counts the errors met publishing state for armor-tracer.
func (p *Plugin) PublishErrors() uint64 { return p.publishErrors.Load() }
