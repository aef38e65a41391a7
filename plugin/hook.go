package plugin

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/containerd/nri/pkg/api"
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
