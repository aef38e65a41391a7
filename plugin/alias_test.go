package plugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/ocihook"
	"github.com/nri-armor/nri-armor/policy"
)

const noShell = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-shell, namespace: shop}
spec:
  selector: {matchLabels: {app: armored}}
  process:
    matchPaths:
    - path: /bin/sh
  action: Block
`

// mergedUsr is a root filesystem as merged-/usr images have it: /bin is a
// link to usr/bin, sh a link to image-sh (a name the host has not: resolving in the host's root instead gives another answer).
func mergedUsr(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/image-sh"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, to := range map[string]string{"bin": "usr/bin", "usr/bin/sh": "image-sh"} {
		if err := os.Symlink(to, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// chroot has the helper change its root to dir, as runc's pivot_root does.
func (pr *proc) chroot(t *testing.T, dir string) {
	t.Helper()
	if _, err := pr.in.Write([]byte("chroot " + dir + "\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := pr.out.ReadString('\n'); err != nil || line != "ok\n" {
		t.Fatalf("chroot in the helper: %q %v", line, err)
	}
}

// wantAlias asserts that the set enforced for container id refuses the
// exec of /usr/bin/image-sh by the rule written on /bin/sh.
func wantAlias(t *testing.T, p *Plugin, id, when string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	d := policy.Decide(p.containers[id].set, policy.Event{Class: policy.ClassProcess, Path: "/usr/bin/image-sh"})
	if d.Action != policy.Block || d.Rule == nil || d.Rule.Policy != "no-shell" || d.Rule.Field != "spec.process.matchPaths[0]" || d.Rule.ResolvedFrom != "/bin/sh" {
		t.Fatalf("%s: exec of /usr/bin/image-sh: %s by %+v; want Block by no-shell spec.process.matchPaths[0], alias of /bin/sh", when, d.Action, d.Rule)
	}
}

// noShellContainer connects a plugin made of cfg (with the no-shell
// policy and a recorder) to a test runtime and creates container ctr-1 in
// a pod the policy selects.
func noShellContainer(t *testing.T, cfg Config) (*runtime, *recorder, *Plugin, *api.PodSandbox, *api.Container) {
	t.Helper()
	testenv.RequireRoot(t)
	rt := newRuntime(t)
	b := &recorder{}
	cfg.Catalog, cfg.Defaults, cfg.Backend = catalogOf(t, noShell), policy.DefaultDefaults(), b
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rt.connect(p)
	sb := rt.RunPod("pod-1", "shop", "web-0", map[string]string{"app": "armored"}, nil)
	ctr, _, err := rt.Create(sb, "ctr-1", "web")
	if err != nil {
		t.Fatal(err)
	}
	return rt, b, p, sb, ctr
}

// TestStartAliasesSymlinkedPaths: at start the rule paths are resolved in
// the root of the container's process (here a helper chrooted into a
// merged-/usr image), and the set enforced holds the resolved name too,
// with the rule's identity; a reload keeps the aliases.
func TestStartAliasesSymlinkedPaths(t *testing.T) {
	root := mergedUsr(t)
	rt, b, p, sb, ctr := noShellContainer(t, Config{})
	created, _ := p.containerState("ctr-1")
	pr := startProc(t)
	pr.chroot(t, root)
	if err := rt.Start(sb, ctr, pr.pid()); err != nil {
		t.Fatal(err)
	}
	started, _ := p.containerState("ctr-1")
	if started.digest == created.digest {
		t.Fatalf("set %s enforced as compiled: no alias for /bin/sh", started.digest)
	}
	expectCalls(t, b, fmt.Sprintf("apply %d %s", pr.cgroupID, started.digest))
	wantAlias(t, p, "ctr-1", "after start")

	// A reload that changes nothing keeps the aliased set and calls nothing.
	if err := p.Reapply(context.Background(), catalogOf(t, noShell)); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, b)
	wantAlias(t, p, "ctr-1", "after a reload")
	// One that adds a rule resolves again with the answers of the start.
	if err := p.Reapply(context.Background(), catalogOf(t, strings.Replace(noShell, "    - path: /bin/sh\n", "    - path: /bin/sh\n    - path: /usr/bin/env\n", 1))); err != nil {
		t.Fatal(err)
	}
	wantAlias(t, p, "ctr-1", "after an edit")
}

// TestGateAliasesSymlinkedPaths: the start gate's hook runs before the
// container's pivot_root, so its request names the root filesystem; the
// gate installs the aliased set, and StartContainer, after pivot_root,
// keeps the same set.
func TestGateAliasesSymlinkedPaths(t *testing.T) {
	root := mergedUsr(t)
	rt, b, p, sb, ctr := noShellContainer(t, Config{Hook: ocihook.Spec{Binary: "/opt/nri-armor/bin/nri-armor-hook", Socket: "/run/nri-armor/gate.sock"}})
	// Before pivot_root: the process still has the host's root.
	pr := startProc(t)
	if err := p.EnforceNow(context.Background(), ctr.Id, pr.pid(), root); err != nil {
		t.Fatal(err)
	}
	gated, _ := p.containerState("ctr-1")
	wantAlias(t, p, "ctr-1", "after the gate")
	pr.chroot(t, root)
	if err := rt.Start(sb, ctr, pr.pid()); err != nil {
		t.Fatal(err)
	}
	if started, _ := p.containerState("ctr-1"); started.digest != gated.digest {
		t.Fatalf("StartContainer enforced %s, the gate %s: want the same aliased set", started.digest, gated.digest)
	}
	expectCalls(t, b, fmt.Sprintf("apply %d %s", pr.cgroupID, gated.digest), fmt.Sprintf("apply %d %s", pr.cgroupID, gated.digest))
}
