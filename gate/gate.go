// Package gate closes the last fail-open window of NRI: a container created
// while nri-armor runs and started after it died. NRI skips a plugin whose
// connection is gone, so its StartContainer is skipped and the container
// would start without its rules.
//
// At CreateContainer the plugin adds an OCI createRuntime hook to every
// container that has rules. The runtime runs it while starting the
// container (runc create: the container's init process and cgroup exist,
// its first instruction has not run), before NRI's StartContainer. The hook
// is nri-armor's own binary (`nri-armor hook -socket PATH`): it reads the
// OCI state from stdin and asks the running daemon, over a unix socket, to
// enforce the container now. The daemon installs the set exactly as at
// StartContainer (which then finds it installed). If the daemon does not
// answer, or answers with an error, the hook fails, and so does the start:
// the container never runs without its rules. Once installed, the rules are
// pinned in the kernel and survive the daemon.
//
// The protocol is one JSON request and one JSON reply per connection.
package gate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DefaultSocket is where the daemon listens by default.
const DefaultSocket = "/run/nri-armor/gate.sock"

// Request asks the daemon to enforce a container whose process exists.
type Request struct {
	ContainerID string `json:"containerId"`
	PID         int    `json:"pid"`
}

// Reply is the daemon's answer; Error is empty when the container is
// enforced (or has nothing to enforce).
type Reply struct {
	Error string `json:"error,omitempty"`
}

// ociState is the part of the OCI runtime state a hook receives on stdin.
type ociState struct {
	ID  string `json:"id"`
	PID int    `json:"pid"`
}

// Hook is the hook's side: it reads the OCI state from stdin and has the
// daemon at socket enforce the container. Any failure is an error, which
// fails the container's start.
func Hook(stdin io.Reader, socket string, timeout time.Duration) error {
	var st ociState
	if err := json.NewDecoder(stdin).Decode(&st); err != nil {
		return fmt.Errorf("nri-armor hook: reading the OCI state from stdin: %w", err)
	}
	if st.ID == "" || st.PID <= 0 {
		return fmt.Errorf("nri-armor hook: OCI state without container id or pid: %+v", st)
	}
	conn, err := net.DialTimeout("unix", socket, timeout)
	if err != nil {
		return fmt.Errorf("nri-armor hook: container %s: nri-armor is not running (%w): refusing to start it without its rules", st.ID, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if err := json.NewEncoder(conn).Encode(Request{ContainerID: st.ID, PID: st.PID}); err != nil {
		return fmt.Errorf("nri-armor hook: container %s: %w", st.ID, err)
	}
	var rep Reply
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&rep); err != nil {
		return fmt.Errorf("nri-armor hook: container %s: no answer from nri-armor (%w): refusing to start it without its rules", st.ID, err)
	}
	if rep.Error != "" {
		return fmt.Errorf("nri-armor hook: container %s: %s", st.ID, rep.Error)
	}
	return nil
}

// Enforcer is what the daemon does for a request.
type Enforcer func(ctx context.Context, containerID string, pid int) error

// Serve answers requests on socket (created, mode 0600, replacing a stale
// one) until ctx ends.
func Serve(ctx context.Context, socket string, enforce Enforcer) error {
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return fmt.Errorf("gate socket: %w", err)
	}
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("gate socket: %w", err)
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("gate socket: %w", err)
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("gate socket: %w", err)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("gate socket: %w", err)
		}
		go answer(ctx, conn, enforce)
	}
}

func answer(ctx context.Context, conn net.Conn, enforce Enforcer) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var req Request
	var rep Reply
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&req); err != nil {
		rep.Error = fmt.Sprintf("bad request: %v", err)
	} else if err := enforce(ctx, req.ContainerID, req.PID); err != nil {
		rep.Error = err.Error()
	}
	_ = json.NewEncoder(conn).Encode(rep)
}
