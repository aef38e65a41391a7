package tracer

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
)

// TelemetryFilter is the telemetry programs' per-cgroup filter: the kernel
// reports events only for the cgroups it watches, and only of the classes
// asked for (tracepoints run for every process of the node, so what is not
// needed is dropped in the kernel, not here). The telemetry loader
// implements it (an adapter maps policy.Visibility to its class bits); a
// telemetry source that is also a TelemetryFilter is kept in step with the
// state directory by tracer/daemon.Serve. A filter that can also list what
// it watches (Watched() (map[uint64]policy.Visibility, error), e.g. from
// pinned maps that outlived the tracer) is reconciled from that.
type TelemetryFilter interface {
	Watch(cgroupID uint64, classes policy.Visibility) error
	Unwatch(cgroupID uint64) error
}

// NeededClasses is the telemetry a container needs: the classes of its
// visibility (ContainerLog), and the classes whose rules only user space
// can match — those with rules but no kernel enforcer on this node, and
// those whose enforcer leaves some rules out (the record's Unenforced).
// rs may be nil (no rules, or the set not published yet).
func NeededClasses(c state.Container, rs *policy.RuleSet) policy.Visibility {
	v := c.Visibility
	if rs == nil {
		return v
	}
	unenforced := idSet(c.Unenforced)
	for _, cl := range []policy.Class{policy.ClassProcess, policy.ClassFile, policy.ClassNetwork, policy.ClassCapabilities} {
		cr := rs.Class(cl)
		need := false
		if c.Enforcers[cl] == "" {
			need = len(cr.Rules) > 0 || cr.AllowList
		} else {
			for _, r := range cr.Rules {
				if unenforced[r.ID] {
					need = true
					break
				}
			}
		}
		if need {
			switch cl {
			case policy.ClassProcess:
				v.Process = true
			case policy.ClassFile:
				v.File = true
			case policy.ClassNetwork:
				v.Network = true
			case policy.ClassCapabilities:
				v.Capabilities = true
			}
		}
	}
	return v
}

// telemetrySync keeps a TelemetryFilter watching exactly the published
// containers that need telemetry, with the classes they need.
type telemetrySync struct {
	id      *Identity
	f       TelemetryFilter
	log     logrus.FieldLogger
	watched map[uint64]policy.Visibility
}

// SyncTelemetry runs until ctx ends: a full pass now and every every
// (which also repairs anything a lost notification left behind), and one
// container at a time as fsnotify reports its record changed (Watch must
// run for that: it feeds the changes).
func (id *Identity) SyncTelemetry(ctx context.Context, f TelemetryFilter, every time.Duration, log logrus.FieldLogger) {
	s := &telemetrySync{id: id, f: f, log: log, watched: map[uint64]policy.Visibility{}}
	if w, ok := f.(interface {
		Watched() (map[uint64]policy.Visibility, error)
	}); ok {
		// Pinned filters outlive the tracer: start from what the kernel
		// holds, so that cgroups gone meanwhile are unwatched.
		if m, err := w.Watched(); err == nil {
			s.watched = m
		}
	}
	changes := id.subscribeChanges()
	s.full()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.full()
		case cg := <-changes:
			if cg == 0 { // changes were lost, or everything may have changed
				s.full()
			} else {
				s.one(cg)
			}
		}
	}
}

func (s *telemetrySync) need(c state.Container) policy.Visibility {
	var rs *policy.RuleSet
	if c.PolicySet != "" {
		if set := s.id.Set(c.PolicySet); !set.missing {
			rs = set.rs
		}
	}
	return NeededClasses(c, rs)
}

func (s *telemetrySync) apply(cg uint64, v policy.Visibility, present bool) {
	old, watched := s.watched[cg]
	switch {
	case (!present || v == policy.Visibility{}) && watched:
		if err := s.f.Unwatch(cg); err != nil {
			s.log.Warnf("telemetry: unwatching cgroup %d: %v", cg, err)
			return
		}
		delete(s.watched, cg)
	case present && v != (policy.Visibility{}) && (!watched || old != v):
		if err := s.f.Watch(cg, v); err != nil {
			// Retried at the next full pass; meanwhile its events are missing.
			s.log.Warnf("telemetry: watching cgroup %d: %v", cg, err)
			return
		}
		s.watched[cg] = v
	}
}

func (s *telemetrySync) one(cg uint64) {
	c, err := s.id.dir.Container(cg)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.apply(cg, policy.Visibility{}, false)
	case err != nil:
		s.log.Warnf("telemetry: %v", err)
	default:
		s.apply(cg, s.need(c), true)
	}
}

func (s *telemetrySync) full() {
	cs, err := s.id.dir.Containers()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warnf("telemetry: %v", err)
		return
	}
	seen := make(map[uint64]bool, len(cs))
	for _, c := range cs {
		seen[c.CgroupID] = true
		s.apply(c.CgroupID, s.need(c), true)
	}
	for cg := range s.watched {
		if !seen[cg] {
			s.apply(cg, policy.Visibility{}, false)
		}
	}
}
