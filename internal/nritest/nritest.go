package nritest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// Runtime is the runtime side.
type Runtime struct {
	t      testing.TB
	NRI    *adaptation.Adaptation
	Sock   string
	Synced chan struct{}

	mu   sync.Mutex
	pods map[string]*api.PodSandbox
	ctrs map[string]*api.Container
}

// New starts a runtime side (NRI's adaptation, as containerd embeds it) on
// a temporary socket; it stops with the test.
func New(t testing.TB, opts ...adaptation.Option) *Runtime {
	t.Helper()
	dir, err := os.MkdirTemp("", "nri-armor-plugin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return NewAt(t, dir, opts...)
}

// NewAt starts a runtime side whose socket is dir/nri.sock: a second one in
// the same dir is the runtime restarted.
func NewAt(t testing.TB, dir string, opts ...adaptation.Option) *Runtime {
	t.Helper()
	var err error
	r := &Runtime{
		t:      t,
		Sock:   filepath.Join(dir, "nri.sock"),
		Synced: make(chan struct{}, 16),
		pods:   map[string]*api.PodSandbox{},
		ctrs:   map[string]*api.Container{},
	}
	syncFn := func(ctx context.Context, cb adaptation.SyncCB) error {
		r.mu.Lock()
		var pods []*api.PodSandbox
		var ctrs []*api.Container
		for _, p := range r.pods {
			pods = append(pods, p)
		}
		for _, c := range r.ctrs {
			ctrs = append(ctrs, c)
		}
		r.mu.Unlock()
		_, err := cb(ctx, pods, ctrs)
		r.Synced <- struct{}{}
		return err
	}
	updateFn := func(context.Context, []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
		return nil, nil
	}
	opts = append([]adaptation.Option{
		adaptation.WithSocketPath(r.Sock),
		adaptation.WithPluginPath(filepath.Join(dir, "plugins")),
		adaptation.WithPluginConfigPath(filepath.Join(dir, "conf.d")),
	}, opts...)
	r.NRI, err = adaptation.New("containerd", "v2.4.2", syncFn, updateFn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.NRI.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.NRI.Stop)
	<-r.Synced // Start synchronizes the (no) pre-installed plugins once itself.
	return r
}

// Connect starts the plugin's stub s against the runtime and returns once
// the runtime has synchronized it and counts it among its plugins.
func (r *Runtime) Connect(s stub.Stub) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(s.Stop)
	r.WaitSynced(ctx)
	// The runtime registers the plugin while it holds the sync lock, which
	// BlockPluginSync waits for: from here on, events reach the plugin.
	r.NRI.BlockPluginSync().Unblock()
}

// WaitSynced returns once a plugin has been synchronized (and registered).
func (r *Runtime) WaitSynced(ctx context.Context) {
	r.t.Helper()
	select {
	case <-r.Synced:
	case <-ctx.Done():
		r.t.Fatal("plugin not synchronized")
	}
	r.NRI.BlockPluginSync().Unblock()
}

// settle returns once the runtime has dropped plugins whose connection is
// gone. It notices a closed connection asynchronously; until then a request
// is still relayed to the plugin and, because nri-armor asks for
// FailRequest, fails with "ttrpc: closed" (and drops the plugin). A probe
// request shows when that window has passed.
// Settle returns once the runtime has dropped plugins whose connection is
// gone (see below).
func (r *Runtime) Settle() {
	r.t.Helper()
	probe := &api.PodSandbox{Id: "settle-probe", Name: "probe", Namespace: "probe"}
	for i := 0; ; i++ {
		err := r.NRI.RunPodSandbox(context.Background(), &api.RunPodSandboxRequest{Pod: probe})
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "ttrpc: closed") || i == 100 {
			r.t.Fatalf("probe: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.NRI.RemovePodSandbox(context.Background(), &api.RemovePodSandboxRequest{Pod: probe}); err != nil {
		r.t.Fatalf("probe: %v", err)
	}
}

// RunPod sends RunPodSandbox.
func (r *Runtime) RunPod(id, ns, name string, labels, ann map[string]string) *api.PodSandbox {
	r.t.Helper()
	sb := &api.PodSandbox{Id: id, Name: name, Uid: "uid-" + id, Namespace: ns, Labels: labels, Annotations: ann}
	if err := r.NRI.RunPodSandbox(context.Background(), &api.RunPodSandboxRequest{Pod: sb}); err != nil {
		r.t.Fatalf("RunPodSandbox %s: %v", id, err)
	}
	r.mu.Lock()
	r.pods[id] = sb
	r.mu.Unlock()
	return sb
}

// Create sends CreateContainer.
func (r *Runtime) Create(sb *api.PodSandbox, id, name string) (*api.Container, *api.CreateContainerResponse, error) {
	ctr := &api.Container{Id: id, PodSandboxId: sb.Id, Name: name, State: api.ContainerState_CONTAINER_CREATED}
	resp, err := r.NRI.CreateContainer(context.Background(), &api.CreateContainerRequest{Pod: sb, Container: ctr})
	if err == nil {
		r.mu.Lock()
		r.ctrs[id] = ctr
		r.mu.Unlock()
	}
	return ctr, resp, err
}

// Start sends StartContainer with the container's pid.
func (r *Runtime) Start(sb *api.PodSandbox, ctr *api.Container, pid int) error {
	r.mu.Lock()
	ctr.Pid = uint32(pid)
	ctr.State = api.ContainerState_CONTAINER_RUNNING
	r.mu.Unlock()
	return r.NRI.StartContainer(context.Background(), &api.StartContainerRequest{Pod: sb, Container: ctr})
}

// Remove sends RemoveContainer.
func (r *Runtime) Remove(sb *api.PodSandbox, ctr *api.Container) error {
	r.mu.Lock()
	ctr.State = api.ContainerState_CONTAINER_STOPPED
	delete(r.ctrs, ctr.Id)
	r.mu.Unlock()
	return r.NRI.RemoveContainer(context.Background(), &api.RemoveContainerRequest{Pod: sb, Container: ctr})
}
