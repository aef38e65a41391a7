//go:build e2e && vme2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/vmtest"
)

const (
	vmAllowListName = "e2e-etc-passwd-only"
	// vmAllowList allows reading what the pod's commands need and nothing
	// else (with the file posture block): /etc/passwd, and /dev/null,
	// where a shell sends what it discards.
	vmAllowList = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: ` + vmAllowListName + `
  namespace: e2e
spec:
  file:
    matchPaths:
    - path: /etc/passwd
    - path: /dev/null
  action: Allow
`
)

// TestVMFileAllowList: a pod under a file allow-list with posture block
// starts (runc's own setup inside the container's cgroup — opens of /,
// /proc, /sys and of the program it starts — is not the container's), its
// first command and every crictl exec run what the list allows, and reads
// outside it are refused, from the first instruction on; the alerts name
// the pod and the default posture. (Which program acted, after a shell
// exec'd another in its place, is tracer.TestExecInPlace's: in this image
// sh and cat are both busybox.)
func TestVMFileAllowList(t *testing.T) {
	vmtest.RequireLSM(t, "bpf")
	need(t)
	writePolicy(t, "etc-passwd-only.yaml", vmAllowList)
	startArmor(t)
	tr := startTracer(t)

	p := runPod(t, "allowlist", map[string]string{policiesKey: vmAllowListName, "nri-armor.dev/posture": "file=block"})
	first := startContainer(t, p, "first", "sh", "-c",
		"cat /etc/passwd >/dev/null && echo started; cat /etc/shadow; echo cat-exit=$?; exec sleep 3600")
	var logs string
	waitFor(t, "the first container's commands", 20*time.Second, func() bool {
		r := crictl(t, "logs", first)
		logs = r.stdout + r.stderr
		return strings.Contains(logs, "cat-exit=")
	})
	t.Logf("the allow-listed container's first command printed:\n%s", logs)
	for _, want := range []string{"started", "cat: can't open '/etc/shadow': Operation not permitted", "cat-exit=1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the allow-listed container's first command: %q; want %q", logs, want)
		}
	}

	// runc exec's setup is not the container's either; what it runs is.
	wantOK(t, execIn(t, first, "cat", "/etc/passwd"), "crictl exec cat /etc/passwd", "root:")
	wantOK(t, execIn(t, first, "sh", "-c", "echo hi >/dev/null; echo exec-ok"), "crictl exec sh -c", "exec-ok")
	wantRefused(t, execIn(t, first, "cat", "/etc/shadow"), "crictl exec cat /etc/shadow", "cat: can't open '/etc/shadow': Operation not permitted")
	wantRefused(t, execIn(t, first, "sh", "-c", "exec cat /etc/group"), "sh -c 'exec cat /etc/group'", "cat: can't open '/etc/group': Operation not permitted")

	// The alerts: the pod and the posture.
	for _, res := range []string{"/etc/shadow", "/etc/group"} {
		var found *alert
		waitFor(t, "the alert for "+res, 20*time.Second, func() bool {
			for _, a := range tr.alerts(t, p.name) {
				if a.Operation == "File" && a.Resource == res {
					found = &a
					return true
				}
			}
			return false
		})
		a := *found
		t.Logf("alert: %s", a)
		if a.NamespaceName != podNamespace || a.ContainerName != "first" || a.Action != "Block" || a.Enforcer != "BPFLSM" ||
			a.PolicyName != "DefaultPosture" || a.Result != "Permission denied" {
			t.Errorf("alert for %s: %s; want the pod's container, Block by BPFLSM's DefaultPosture", res, a)
		}
	}
	for _, a := range tr.alerts(t, p.name) {
		if a.Operation == "File" && a.Resource != "/etc/shadow" && a.Resource != "/etc/group" {
			t.Errorf("an alert for runc's own setup: %s", a)
		}
	}
}
