package plugin

import (
	"context"
	"fmt"

	nrilog "github.com/containerd/nri/pkg/log"

	"github.com/nri-armor/nri-armor/internal/rootpath"
	"github.com/nri-armor/nri-armor/policy"
)

// Symlinked rule paths (policy.Aliased): the kernel sees the file a path
// resolves to, so each container's rule paths are resolved in its root,
// /proc/<pid>/root of its init process, and the resolved names are
// enforced too. start does it, and start is the one path that installs a
// container's set, whether StartContainer or the start gate (EnforceNow)
// comes first: the container's first instruction has not run, so its links
// are the image's. The answers are kept for the container's life: a policy
// reload reuses them, and resolves in the running container only paths
// new to its set; a restarted nri-armor resolves in the running container
// (Synchronize).

// alias sets c.set to c's compiled set with the aliases of its paths in the
// root of pid. A failure to resolve means no alias, never a refusal: the
// rule still holds on the name written. The caller holds p.mu.
func (p *Plugin) alias(ctx context.Context, c *container, pid int) {
	if c.compiled == nil || pid <= 0 {
		return
	}
	if c.links == nil || c.pid != pid {
		c.links, c.pid = rootpath.New(fmt.Sprintf("%s/%d/root", p.proc, pid), 0), pid
	}
	c.set = p.aliased(ctx, p.who(c), c.compiled, c.links)
}

// aliased is rs with the aliases of its paths as links resolves them,
// logged.
func (p *Plugin) aliased(ctx context.Context, who string, rs *policy.RuleSet, links *rootpath.Resolver) *policy.RuleSet {
	skipped := links.Skipped()
	out := rs.Aliased(links.Resolve)
	if n := links.Skipped() - skipped; n > 0 {
		nrilog.Warnf(ctx, "%s: %s: %d rule paths not resolved in %s: more than %d distinct paths; they match only by the name written", who, rs.ShortDigest(), n, links.Root(), rootpath.DefaultMax)
	}
	if out != rs {
		nrilog.Infof(ctx, "%s: policy set %s has %d symlinked rule paths in %s: enforced as %s", who, rs.ShortDigest(), len(out.Aliases()), links.Root(), out.ShortDigest())
	}
	return out
}
