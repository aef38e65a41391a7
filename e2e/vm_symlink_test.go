//go:build e2e && vme2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/vmtest"
)

const (
	symlinkPolicyName = "e2e-no-bin-sh"
	symlinkMessage    = "no shell from /bin/sh"
	// symlinkPolicy names /bin/sh, which in the usrmerge image is
	// /bin → usr/bin, then sh → usrmerge-sh: the kernel only ever sees
	// /usr/bin/usrmerge-sh.
	symlinkPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: ` + symlinkPolicyName + `
  namespace: e2e
spec:
  process:
    matchPaths:
    - path: /bin/sh
      message: ` + symlinkMessage + `
      severity: 6
  action: Block
`
)

// TestVMSymlinkedRulePaths: a Block rule on /bin/sh, a link in a merged-/usr
// image, refuses the exec of /bin/sh (and of sh, found on PATH as
// /usr/bin/sh) from the container's first instruction and in later execs,
// while other applets of the same busybox run; the alert names the policy
// and carries the rule's message and severity; the published set records
// the alias. A pod without the policy runs /bin/sh.
func TestVMSymlinkedRulePaths(t *testing.T) {
	vmtest.RequireLSM(t, "bpf")
	need(t)
	writePolicy(t, "no-bin-sh.yaml", symlinkPolicy)
	startArmor(t)
	tr := startTracer(t)

	usrmerge := func(p pod, name string, cmd ...string) string {
		t.Helper()
		cfg := containerConfig(name, cmd)
		cfg["image"] = map[string]any{"image": env.usrmerge}
		id, r := createContainerWith(t, p, cfg)
		if id == "" {
			t.Fatalf("crictl create %s in pod %s: %v", name, p.name, r)
		}
		mustCrictl(t, "start", id)
		return id
	}
	guarded := runPod(t, "symlinked", map[string]string{policiesKey: symlinkPolicyName})
	// The container's own first command: busybox's shell, run by the name
	// that is no link, execs /bin/sh.
	first := usrmerge(guarded, "first", "/usr/bin/busybox", "sh", "-c",
		"/bin/sh -c 'echo inner-ran'; echo sh-exit=$?; exec sleep 3600")
	id := usrmerge(guarded, "main", sleeper...)
	open := runPod(t, "symlinked-open", nil)
	openID := usrmerge(open, "main", sleeper...)

	var logs string
	waitFor(t, "the first container's command", 20*time.Second, func() bool {
		r := crictl(t, "logs", first)
		logs = r.stdout + r.stderr
		return strings.Contains(logs, "sh-exit=")
	})
	t.Logf("the guarded container's first command printed:\n%s", logs)
	if !strings.Contains(logs, "sh: /bin/sh: Operation not permitted") || !strings.Contains(logs, "sh-exit=126") || strings.Contains(logs, "inner-ran") {
		t.Errorf("the guarded container's first command: %q; want /bin/sh refused (Operation not permitted, status 126)", logs)
	}

	// Later execs: runc's exec by the name written and by PATH, and a shell's.
	wantRefused(t, execIn(t, id, "/bin/sh", "-c", "echo ran"), "crictl exec /bin/sh", "exec /bin/sh: operation not permitted")
	wantRefused(t, execIn(t, id, "sh", "-c", "echo ran"), "crictl exec sh", "operation not permitted")
	wantRefused(t, execIn(t, id, "/usr/bin/busybox", "sh", "-c", "/bin/sh -c 'echo ran'"), "busybox sh -c /bin/sh",
		"sh: /bin/sh: Operation not permitted", "command terminated with exit code 126")
	// The same busybox by other names still runs: only the file /bin/sh
	// resolves to is refused.
	wantOK(t, execIn(t, id, "/bin/echo", "echo-ran"), "/bin/echo in the guarded container", "echo-ran")
	wantOK(t, execIn(t, id, "/usr/bin/busybox", "sh", "-c", "echo busybox-sh-ran"), "busybox sh in the guarded container", "busybox-sh-ran")
	// Without the policy, /bin/sh runs.
	wantOK(t, execIn(t, openID, "/bin/sh", "-c", "echo open-ran"), "/bin/sh in the unannotated container", "open-ran")

	// The alert names the resolved file, the policy and the rule written.
	for _, ctr := range []string{"first", "main"} {
		var found *alert
		waitFor(t, "the alert of "+ctr, 20*time.Second, func() bool {
			for _, a := range tr.alerts(t, guarded.name) {
				if a.ContainerName == ctr && a.Operation == "Process" && a.Resource == "/usr/bin/usrmerge-sh" {
					found = &a
					return true
				}
			}
			return false
		})
		t.Logf("alert: %s", found)
		if found.PolicyName != symlinkPolicyName || found.Message != symlinkMessage || found.Severity != "6" ||
			found.Action != "Block" || found.Result != "Permission denied" || found.Enforcer != "BPFLSM" {
			t.Errorf("alert %+v: want Block by %s (message %q, severity 6), Permission denied, BPFLSM", *found, symlinkPolicyName, symlinkMessage)
		}
	}

	// What nri-armor published for armor-tracer: the set with the alias.
	rec := published(t, id)
	rs, err := stateDir(t).Set(rec.PolicySet)
	if err != nil {
		t.Fatal(err)
	}
	var aliases []string
	for _, r := range rs.Aliases() {
		aliases = append(aliases, r.Describe())
	}
	if want := "path /usr/bin/usrmerge-sh (alias: /bin/sh resolves to it)"; len(aliases) != 1 || aliases[0] != want {
		t.Errorf("published set %s: aliases %q, want [%q]", rec.PolicySet, aliases, want)
	}
}
