package plugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
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

// TestStartAliasesSymlinkedPaths: at start the rule paths are resolved in
// the root of the container's process (here a helper chrooted into a
// merged-/usr image), and the set enforced holds the resolved name too,
// with the rule's identity; a reload keeps the aliases.
func TestStartAliasesSymlinkedPaths(t *testing.T) {
	testenv.RequireRoot(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/dash"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, to := range map[string]string{"bin": "usr/bin", "usr/bin/sh": "dash"} {
		if err := os.Symlink(to, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}

	rt := newRuntime(t)
	b := &recorder{}
	p, err := New(Config{Catalog: catalogOf(t, noShell), Defaults: policy.DefaultDefaults(), Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	rt.connect(p)
	sb := rt.RunPod("pod-1", "shop", "web-0", map[string]string{"app": "armored"}, nil)
	ctr, _, err := rt.Create(sb, "ctr-1", "web")
	if err != nil {
		t.Fatal(err)
	}
	created, _ := p.containerState("ctr-1")
	pr := startProc(t)
	if _, err := pr.in.Write([]byte("chroot " + root + "\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := pr.out.ReadString('\n'); err != nil || line != "ok\n" {
		t.Fatalf("chroot in the helper: %q %v", line, err)
	}
	if err := rt.Start(sb, ctr, pr.pid()); err != nil {
		t.Fatal(err)
	}
	started, _ := p.containerState("ctr-1")
	if started.digest == created.digest {
		t.Fatalf("set %s enforced as compiled: no alias for /bin/sh", started.digest)
	}
	expectCalls(t, b, fmt.Sprintf("apply %d %s", pr.cgroupID, started.digest))
	check := func(when string) {
		t.Helper()
		p.mu.Lock()
		defer p.mu.Unlock()
		d := policy.Decide(p.containers["ctr-1"].set, policy.Event{Class: policy.ClassProcess, Path: "/usr/bin/dash"})
		if d.Action != policy.Block || d.Rule == nil || d.Rule.Policy != "no-shell" || d.Rule.Field != "spec.process.matchPaths[0]" || d.Rule.ResolvedFrom != "/bin/sh" {
			t.Fatalf("%s: exec of /usr/bin/dash: %s by %+v; want Block by no-shell spec.process.matchPaths[0], alias of /bin/sh", when, d.Action, d.Rule)
		}
	}
	check("after start")

	// A reload that changes nothing keeps the aliased set and calls nothing.
	if err := p.Reapply(context.Background(), catalogOf(t, noShell)); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, b)
	check("after a reload")
	// One that adds a rule resolves again with the answers of the start.
	if err := p.Reapply(context.Background(), catalogOf(t, strings.Replace(noShell, "    - path: /bin/sh\n", "    - path: /bin/sh\n    - path: /usr/bin/env\n", 1))); err != nil {
		t.Fatal(err)
	}
	check("after an edit")
}
