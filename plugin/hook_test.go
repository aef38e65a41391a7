package plugin

import (
	"context"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/ocihook"
	"github.com/nri-armor/nri-armor/policy"
)

// TestGateEnforcesBeforeStart: with the start gate on, a container with
// rules gets the createRuntime hook at CreateContainer, and the gate's
// request (what the hook sends while the runtime starts the container)
// installs its set before NRI's StartContainer; a container the plugin
// does not know is refused, by the guard too unless its namespace may
// weaken protection.
func TestGateEnforcesBeforeStart(t *testing.T) {
	testenv.RequireRoot(t)
	b := cgroupNetBackend(t)
	defaults := policy.DefaultDefaults()
	defaults.WeakenNamespaces = []string{"trusted"}
	p, err := New(Config{Catalog: testCatalog(t), Defaults: defaults, Backend: b,
		Hook: ocihook.Spec{Binary: "/opt/nri-armor/bin/nri-armor-hook", Socket: "/run/nri-armor/gate.sock", Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t)
	rt.connect(p)
	sb := rt.RunPod("pod-1", "shop", "web-0", nil, map[string]string{policy.AnnotationPolicies: "no-raw"})
	ctr, resp, err := rt.Create(sb, "ctr-1", "nginx")
	if err != nil {
		t.Fatal(err)
	}
	hooks := resp.GetAdjust().GetHooks().GetCreateRuntime()
	if len(hooks) != 1 || hooks[0].Path != "/opt/nri-armor/bin/nri-armor-hook" ||
		strings.Join(hooks[0].Args, " ") != "/opt/nri-armor/bin/nri-armor-hook -socket /run/nri-armor/gate.sock -timeout 5s" {
		t.Fatalf("createRuntime hooks %v", hooks)
	}
	// The bundle must carry the gate: were it filtered out of the
	// adjustment, the rules would wait for StartContainer, whose refusal
	// CRI-O ignores. The guard, which runs first, sends the hooks it read.
	bundle := func(h ...rspec.Hook) error {
		return p.checkBundle(ocihook.Request{ContainerID: ctr.Id, SpecRead: true, HooksRead: true, CreateRuntime: h})
	}
	five := 5
	for _, h := range [][]rspec.Hook{nil, {{Path: "/usr/bin/true", Args: hooks[0].Args, Timeout: &five}}, {{Path: hooks[0].Path, Args: hooks[0].Args[:1], Timeout: &five}}} {
		if err := bundle(h...); err == nil || !strings.Contains(err.Error(), "lacks the start gate") {
			t.Errorf("a bundle with createRuntime hooks %+v: %v, want refused", h, err)
		}
	}
	if err := bundle(rspec.Hook{Path: "/opt/other"}, rspec.Hook{Path: hooks[0].Path, Args: hooks[0].Args, Timeout: &five}); err != nil {
		t.Errorf("a bundle with the gate: %v", err)
	}
	if err := p.checkBundle(ocihook.Request{ContainerID: ctr.Id, SpecRead: true}); err != nil {
		t.Errorf("an older hook, which sends no hooks: %v", err)
	}
	plain := rt.RunPod("pod-2", "shop", "plain", nil, nil)
	if _, resp, err := rt.Create(plain, "ctr-2", "app"); err != nil || len(resp.GetAdjust().GetHooks().GetCreateRuntime()) != 0 {
		t.Fatalf("a container without rules: %v, hooks %v (want none)", err, resp.GetAdjust().GetHooks())
	}

	pr := startProc(t)
	if got := pr.raw(t); got != "ok" {
		t.Fatalf("before the gate: raw socket %s, want ok", got)
	}
	ctx := context.Background()
	if err := p.EnforceNow(ctx, ctr.Id, pr.pid(), ""); err != nil {
		t.Fatal(err)
	}
	if got := pr.raw(t); got != "EPERM" {
		t.Fatalf("after the gate, before StartContainer: raw socket %s, want EPERM", got)
	}
	if err := rt.Start(sb, ctr, pr.pid()); err != nil {
		t.Fatal(err)
	}
	if got := pr.raw(t); got != "EPERM" {
		t.Fatalf("after StartContainer: raw socket %s, want EPERM", got)
	}
	if err := p.EnforceNow(ctx, "unknown", pr.pid(), ""); err == nil || !strings.Contains(err.Error(), "does not know container unknown") {
		t.Fatalf("unknown container: %v", err)
	}

	// The guard: what the plugin knows it decides as above (ctr-2 has no
	// rules), what it does not know starts in a trusted namespace only.
	guard := func(id, ns string) error {
		return p.Gate(ctx, ocihook.Request{ContainerID: id, PID: pr.pid(), Guard: true, Namespace: ns})
	}
	if err := guard("ctr-2", "shop"); err != nil {
		t.Errorf("guard, known container without rules: %v", err)
	}
	if err := guard("unknown", "trusted"); err != nil {
		t.Errorf("guard, unknown container of a trusted namespace: %v", err)
	}
	for _, ns := range []string{"shop", ""} {
		if err := guard("unknown", ns); err == nil || !strings.Contains(err.Error(), "does not know container unknown") || !strings.Contains(err.Error(), "weakenNamespaces") {
			t.Errorf("guard, unknown container of namespace %q: %v", ns, err)
		}
	}
}
