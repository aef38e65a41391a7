package ocihook

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHook(t *testing.T) {
	// The bundle's config.json names the root filesystem relative to it.
	bundle := t.TempDir()
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(`{"ociVersion":"1.2.0","root":{"path":"rootfs"},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}},"hooks":{"createRuntime":[{"path":"/opt/nri-armor/bin/nri-armor-hook","args":["nri-armor-hook","-socket","/run/nri-armor/gate.sock"],"timeout":5}]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	state := `{"ociVersion":"1.2.0","id":"ctr-1","status":"creating","pid":4242,"bundle":"` + bundle + `"}`
	sock := filepath.Join(t.TempDir(), "gate.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got Request
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, sock, func(_ context.Context, req Request) error {
			got = req
			if req.ContainerID == "refused" {
				return errors.New("applying policy set abc: map full")
			}
			return nil
		})
	}()
	waitSocket(t, sock)

	if err := Hook(strings.NewReader(state), sock, time.Second); err != nil {
		t.Fatalf("hook: %v", err)
	}
	// The bundle's seccomp section goes to the daemon as it is, and its
	// createRuntime hooks, for its checks.
	five := 5
	if want := (Request{ContainerID: "ctr-1", PID: 4242, Rootfs: filepath.Join(bundle, "rootfs"), SpecRead: true, Seccomp: json.RawMessage(`{"defaultAction":"SCMP_ACT_ALLOW"}`),
		HooksRead: true, CreateRuntime: []rspec.Hook{{Path: "/opt/nri-armor/bin/nri-armor-hook", Args: []string{"nri-armor-hook", "-socket", "/run/nri-armor/gate.sock"}, Timeout: &five}}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("daemon asked for %+v, want %+v", got, want)
	}
	// A bundle without a readable config: no rootfs, the start goes on.
	if err := Hook(strings.NewReader(`{"id":"ctr-2","pid":7,"bundle":"/nonexistent"}`), sock, time.Second); err != nil || !reflect.DeepEqual(got, Request{ContainerID: "ctr-2", PID: 7}) {
		t.Fatalf("bundle without config.json: %v, daemon asked for %+v", err, got)
	}
	err := Hook(strings.NewReader(`{"id":"refused","pid":7}`), sock, time.Second)
	if err == nil || !strings.Contains(err.Error(), "container refused: applying policy set abc: map full") {
		t.Fatalf("refused: %v", err)
	}
	if err := Hook(strings.NewReader(`{"id":"x"}`), sock, time.Second); err == nil || !strings.Contains(err.Error(), "without container id or pid") {
		t.Fatalf("state without pid: %v", err)
	}
	if err := Hook(strings.NewReader(`not json`), sock, time.Second); err == nil || !strings.Contains(err.Error(), "reading the OCI state") {
		t.Fatalf("bad state: %v", err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// The daemon is gone: the hook refuses, saying why.
	err = Hook(strings.NewReader(state), sock, time.Second)
	if err == nil || !strings.Contains(err.Error(), "nri-armor is not running") {
		t.Fatalf("without a daemon: %v", err)
	}
}

func waitSocket(t *testing.T, sock string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if err := Hook(strings.NewReader(`{"id":"probe","pid":1}`), sock, time.Second); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("gate socket %s never answered", sock)
}
