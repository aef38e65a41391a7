package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
)

const shellPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-shell, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  process:
    matchPaths:
    - path: /bin/sh
  action: Block
`

// TestExplainRoot: --root resolves the rule paths in an unpacked image as
// nri-armor does in a container; explain lists the alias and check blocks
// the resolved name by the rule written. validate hints at the path.
func TestExplainRoot(t *testing.T) {
	dir := t.TempDir()
	p := testenv.WriteFile(t, dir, "no-shell.yaml", shellPolicy)
	root := filepath.Join(dir, "rootfs")
	testenv.WriteFile(t, root, "usr/bin/dash", "")
	for name, to := range map[string]string{"bin": "usr/bin", "usr/bin/sh": "dash"} {
		if err := os.Symlink(to, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	pod := []string{"--policies", p, "--namespace", "shop", "--labels", "app=web"}

	out, errOut, code := armorctl(t, append([]string{"explain", "--root", root}, pod...)...)
	if code != 0 || !strings.Contains(out, "Block path /usr/bin/dash (alias: /bin/sh resolves to it)") {
		t.Fatalf("explain --root: exit %d\n%s%s", code, out, errOut)
	}
	check := append([]string{"check", "--op", "process", "--path", "/usr/bin/dash"}, pod...)
	if out, _, _ := armorctl(t, check...); !strings.HasPrefix(out, "Allow") {
		t.Fatalf("check without --root: the kernel's name matches no rule written, got\n%s", out)
	}
	out, _, code = armorctl(t, append(check, "--root", root)...)
	if code != 4 || !strings.Contains(out, "no-shell") || !strings.Contains(out, "spec.process.matchPaths[0]") {
		t.Fatalf("check --root: exit %d, want 4 (Block by no-shell spec.process.matchPaths[0])\n%s", code, out)
	}
	if _, errOut, code := armorctl(t, append([]string{"explain", "--root", filepath.Join(dir, "none")}, pod...)...); code != 2 || !strings.Contains(errOut, "--root") {
		t.Fatalf("missing --root: exit %d, want 2 naming --root\n%s", code, errOut)
	}

	out, _, code = armorctl(t, "validate", p)
	if code != 0 || !strings.Contains(out, `hint: spec.process.matchPaths[0].path: "/bin/sh" is a symlink in many images`) {
		t.Fatalf("validate: exit %d, want 0 with a hint about /bin/sh\n%s", code, out)
	}
}
