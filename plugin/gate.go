package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/nri/pkg/api"
)

// Gate is the start gate (package gate): the hook that has the runtime ask
// nri-armor to enforce a container while starting it, before NRI's
// StartContainer, and fail the start when nri-armor does not answer.
type Gate struct {
	// Binary is nri-armor's binary as the runtime sees it (a host path).
	Binary string
	// Socket is the daemon's gate socket (a host path).
	Socket string
	// Timeout bounds the hook; the runtime kills it after that.
	Timeout time.Duration
}

func (g Gate) hooks() *api.Hooks {
	timeout := int64(g.Timeout / time.Second)
	if timeout <= 0 {
		timeout = 10
	}
	return &api.Hooks{CreateRuntime: []*api.Hook{{
		Path:    g.Binary,
		Args:    []string{g.Binary, "hook", "-socket", g.Socket, "-timeout", fmt.Sprintf("%ds", timeout)},
		Timeout: &api.OptionalInt{Value: timeout},
	}}}
}

// EnforceNow is the gate's request: container id, whose init process is
// pid, is about to run; install its set now, exactly as StartContainer
// does (which then finds it done). An unknown container is an error: the
// hook is only added by this plugin, and Synchronize tells a restarted
// plugin of every container.
func (p *Plugin) EnforceNow(ctx context.Context, id string, pid int) (err error) {
	defer func(start time.Time) { p.done("GateHook", start, err) }(time.Now())
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.containers[id]
	if !ok {
		return fmt.Errorf("nri-armor does not know container %s (not yet synchronized with the runtime?): refusing to start it without its rules", id)
	}
	return p.startOrRefuse(ctx, &api.Container{Id: id, Pid: uint32(pid)}, c)
}
