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
// are the image's. The gate's hook runs before the container's pivot_root,
// when /proc/<pid>/root is still the runtime's root: it names the root
// filesystem (ocihook.Request.Rootfs). The answers are kept for the container's life: a policy
// reload reuses them, and resolves in the running container only paths
// new to its set; a restarted nri-armor resolves in the running container
// (Synchronize).

// rootOf is the root of process pid, as its own paths resolve.
func (p *Plugin) rootOf(pid int) string { return fmt.Sprintf("%s/%d/root", p.proc, pid) }

// alias sets c.set to c's compiled set with the aliases of its paths in
// root, where the container of init process pid has its root filesystem;
// root "" resolves with what c already knows (a reload), or not at all. A
// failure to resolve means no alias, never a refusal: the rule still holds
// on the name written. The caller holds p.mu.
func (p *Plugin) alias(ctx context.Context, c *container, pid int, root string) {
	if c.compiled == nil || pid <= 0 {
		return
	}
	switch {
	case c.links == nil || c.pid != pid:
		if root == "" {
			return // the gate could not say where the root is: StartContainer resolves
		}
		c.links, c.pid = rootpath.New(root, 0), pid
	case root != "":
		// The same container's root seen another way (the gate's, before
		// pivot_root; StartContainer's, after): the answers stand.
		c.links.SetRoot(root)
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
