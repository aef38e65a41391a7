package ocihook

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
	"slices"
	"time"

	"github.com/containerd/nri/pkg/api"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// crioSeccompProfile is the annotation in which CRI-O records the seccomp
// profile it loaded (enforce/seccomp.CRIOProfileAnnotation; not imported:
// the hook binary stays small).
const crioSeccompProfile = "io.kubernetes.cri-o.SeccompProfilePath"

// maxRequest bounds a request the daemon reads.
const maxRequest = 4 << 20

// DefaultSocket is where the daemon listens by default.
const DefaultSocket = "/run/nri-armor/gate.sock"

// Spec is the hook as the plugin adds it to a container.
type Spec struct {
	// Binary is nri-armor-hook as the runtime sees it (a host path).
	Binary string
	// Socket is the daemon's socket (a host path).
	Socket string
	// Timeout bounds the hook; the runtime kills it after that (default 10 s).
	Timeout time.Duration
}

// Hooks is the OCI hook to add to a container's spec.
func (s Spec) Hooks() *api.Hooks {
	timeout := int64(s.Timeout / time.Second)
	if timeout <= 0 {
		timeout = 10
	}
	return &api.Hooks{CreateRuntime: []*api.Hook{{
		Path:    s.Binary,
		Args:    []string{s.Binary, "-socket", s.Socket, "-timeout", fmt.Sprintf("%ds", timeout)},
		Timeout: &api.OptionalInt{Value: timeout},
	}}}
}

// Request asks the daemon to enforce a container whose process exists.
type Request struct {
	ContainerID string `json:"containerId"`
	PID         int    `json:"pid"`
	// Rootfs is the container's root filesystem as the runtime's mount
	// namespace names it (the bundle's root.path). The hook runs before
	// the container's pivot_root: /proc/<pid>/root is not yet the
	// container's root, /proc/<pid>/root<Rootfs> is. Empty when the hook
	// could not read it (or is older): the daemon then resolves no rule
	// path at the gate, and StartContainer does.
	Rootfs string `json:"rootfs,omitempty"`
	// Guard is set by the guard (guard.go), which runs for every container,
	// not only for those nri-armor added the hook to: a container the
	// daemon does not know is then judged by Namespace, its pod's.
	Guard     bool   `json:"guard,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// SpecRead says that the hook read the bundle's config.json, and
	// Seccomp is its linux.seccomp section (null when it has none): the
	// daemon checks that it carries the container's seccomp filter. An
	// older hook sends neither.
	SpecRead bool            `json:"specRead,omitempty"`
	Seccomp  json.RawMessage `json:"seccomp,omitempty"`
	// SeccompRef is the seccomp profile the runtime says it loaded for the
	// container, where it says so: CRI-O's spec annotation
	// io.kubernetes.cri-o.SeccompProfilePath (a Localhost profile's path).
	SeccompRef string `json:"seccompRef,omitempty"`
	// AppArmorProfile is the spec's process.apparmorProfile, the profile
	// runc will put the container's process under ("" for none): the
	// daemon checks that it is the container's own.
	AppArmorProfile string `json:"apparmorProfile,omitempty"`
	// Bounding is the spec's process.capabilities.bounding: what the
	// container's processes can ever hold.
	Bounding []string `json:"bounding,omitempty"`
	// CreateRuntime is the spec's hooks.createRuntime, the hooks runc is
	// about to run: the daemon checks that the one it added through NRI
	// (Spec.Hooks) is there, since a runtime is free to filter a plugin's
	// adjustments. HooksRead says the hook sent it (an older hook does
	// not).
	HooksRead     bool         `json:"hooksRead,omitempty"`
	CreateRuntime []rspec.Hook `json:"createRuntime,omitempty"`
}

// Reply is the daemon's answer; Error is empty when the container is
// enforced (or has nothing to enforce).
type Reply struct {
	Error string `json:"error,omitempty"`
}

// ociState is the part of the OCI runtime state a hook receives on stdin.
type ociState struct {
	ID     string `json:"id"`
	PID    int    `json:"pid"`
	Bundle string `json:"bundle"`
}

// ociSpec is the part of the container's config.json (the bundle's) that
// the hooks read.
type ociSpec struct {
	Annotations map[string]string `json:"annotations"`
	Root        struct {
		Path string `json:"path"`
	} `json:"root"`
	Linux struct {
		Seccomp json.RawMessage `json:"seccomp"`
	} `json:"linux"`
	Hooks struct {
		CreateRuntime []rspec.Hook `json:"createRuntime"`
	} `json:"hooks"`
	Process struct {
		ApparmorProfile string `json:"apparmorProfile"`
		Capabilities    struct {
			Bounding []string `json:"bounding"`
		} `json:"capabilities"`
	} `json:"process"`
}

// request is what the hooks ask the daemon about the container of st
// whose spec was read (or not: err).
func (s ociSpec) request(st ociState, err error) Request {
	if err != nil {
		return Request{ContainerID: st.ID, PID: st.PID}
	}
	return Request{ContainerID: st.ID, PID: st.PID, Rootfs: s.rootfs(st.Bundle), SpecRead: true, Seccomp: s.Linux.Seccomp,
		SeccompRef:      s.Annotations[crioSeccompProfile],
		AppArmorProfile: s.Process.ApparmorProfile, Bounding: s.Process.Capabilities.Bounding,
		HooksRead: true, CreateRuntime: s.Hooks.CreateRuntime}
}

// Added says whether hooks, a spec's createRuntime hooks, hold the one the
// plugin added (Hooks): same program, arguments and timeout.
func (s Spec) Added(hooks []rspec.Hook) bool {
	want := s.Hooks().CreateRuntime[0]
	for _, h := range hooks {
		if h.Path == want.Path && slices.Equal(h.Args, want.Args) && h.Timeout != nil && int64(*h.Timeout) == want.Timeout.Value {
			return true
		}
	}
	return false
}

// readSpec reads the bundle's config.json; file is its path.
func readSpec(bundle string) (spec ociSpec, file string, err error) {
	if bundle == "" {
		return spec, "", errors.New("OCI state without a bundle")
	}
	file = filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(file)
	if err != nil {
		return spec, file, err
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return spec, file, fmt.Errorf("%s: %w", file, err)
	}
	return spec, file, nil
}

// rootfs is the container's root filesystem as the spec names it, made
// absolute as runc does (relative to the bundle); "" when it names none.
func (s ociSpec) rootfs(bundle string) string {
	switch {
	case s.Root.Path == "":
		return ""
	case !filepath.IsAbs(s.Root.Path):
		return filepath.Join(bundle, s.Root.Path)
	}
	return filepath.Clean(s.Root.Path)
}

func readState(stdin io.Reader) (ociState, error) {
	var st ociState
	if err := json.NewDecoder(stdin).Decode(&st); err != nil {
		return st, fmt.Errorf("nri-armor hook: reading the OCI state from stdin: %w", err)
	}
	if st.ID == "" || st.PID <= 0 {
		return st, fmt.Errorf("nri-armor hook: OCI state without container id or pid: %+v", st)
	}
	return st, nil
}

// Hook is the hook's side (cmd/nri-armor-hook): it reads the OCI state from stdin and has the
// daemon at socket enforce the container. Any failure is an error, which
// fails the container's start.
func Hook(stdin io.Reader, socket string, timeout time.Duration) error {
	st, err := readState(stdin)
	if err != nil {
		return err
	}
	// An unreadable spec is never a reason to refuse a start here: the
	// root filesystem only serves symlinked rule paths (without it the
	// daemon resolves at StartContainer), and the seccomp section is
	// checked when it was read.
	spec, _, err := readSpec(st.Bundle)
	down, err := ask(socket, timeout, spec.request(st, err))
	if down != nil {
		return fmt.Errorf("nri-armor hook: container %s: %w: refusing to start it without its rules", st.ID, down)
	}
	return err
}

// ask sends req to the daemon at socket. down says that the daemon did not
// answer (not running, or gone before its reply); err is its refusal.
func ask(socket string, timeout time.Duration, req Request) (down, err error) {
	conn, err := net.DialTimeout("unix", socket, timeout)
	if err != nil {
		return fmt.Errorf("nri-armor is not running (%w)", err), nil
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return fmt.Errorf("no answer from nri-armor (%w)", err), nil
	}
	var rep Reply
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&rep); err != nil {
		return fmt.Errorf("no answer from nri-armor (%w)", err), nil
	}
	if rep.Error != "" {
		return nil, fmt.Errorf("nri-armor hook: container %s: %s", req.ContainerID, rep.Error)
	}
	return nil, nil
}

// Enforcer is what the daemon does for a request.
type Enforcer func(ctx context.Context, req Request) error

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
	// A request carries the bundle's seccomp section (tens of KiB for a
	// runtime default); bounded all the same.
	if err := json.NewDecoder(bufio.NewReader(io.LimitReader(conn, maxRequest))).Decode(&req); err != nil {
		rep.Error = fmt.Sprintf("bad request: %v", err)
	} else if err := enforce(ctx, req); err != nil {
		rep.Error = err.Error()
	}
	_ = json.NewEncoder(conn).Encode(rep)
}

// Install copies nri-armor-hook, which ships next to the running binary
// (nri-armor), to path (atomically, mode 0755) for the runtime to run as
// the hook; nothing to do when path is that file.
func Install(path string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src := filepath.Join(filepath.Dir(self), "nri-armor-hook")
	if err := InstallFrom(src, path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("nri-armor-hook must ship next to nri-armor: %w", err)
		}
		return err
	}
	return nil
}

// InstallFrom copies the hook binary src to path as Install does (also
// what a node's provisioning does for the guard: the e2e tests use it).
func InstallFrom(src, path string) error {
	if a, err1 := filepath.EvalSymlinks(src); err1 == nil {
		if b, err2 := filepath.EvalSymlinks(path); err2 == nil && a == b {
			return nil
		}
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
