//go:build e2e && vme2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/vmtest"
)

// TestVMHostPolicyPodStarts: with a host policy in force (one Audit rule,
// selecting this node), the node's own processes — containerd, runc, the
// shim — still write the cgroup files that start a container: a pod starts
// and runs, and crictl exec works in it. (A host set once carried the
// built-in cgroupfs rule meant for containers, and no container could start.)
func TestVMHostPolicyPodStarts(t *testing.T) {
	vmtest.RequireLSM(t, "bpf")
	need(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	writePolicy(t, "host-audit.yaml", `apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata:
  name: e2e-host-audit
spec:
  nodeSelector:
    matchLabels:
      kubernetes.io/hostname: `+host+`
  file:
    matchPaths:
    - path: /etc/e2e-host-audited
  action: Audit
`)
	startArmor(t)
	tr := startTracer(t)
	defer func() {
		if t.Failed() {
			tr.dump(t)
		}
	}()
	record := filepath.Join(env.stateDir, "v1", "host.json")
	waitFor(t, "the host set applied ("+record+")", 20*time.Second, func() bool {
		b, err := os.ReadFile(record)
		return err == nil && strings.Contains(string(b), "sha256:")
	})
	p := runPod(t, "under-host-policy", nil)
	id := startContainer(t, p, "main", sleeper...)
	wantOK(t, execIn(t, id, "cat", "/etc/passwd"), "crictl exec in a pod started under a host policy", "root:")

	// A pod with process and file rules of its own starts too: runc init,
	// exec'd on the host under the host set (which records the node's
	// programs), is still the runtime's setup, whose mounts and pivot_root
	// the pod's rules would refuse.
	writePolicy(t, "no-apt-no-shadow.yaml", vmPolicy)
	guarded := runPod(t, "guarded-under-host-policy", map[string]string{policiesKey: vmPolicyName})
	gid := startContainer(t, guarded, "main", sleeper...)
	wantOK(t, execIn(t, gid, "cat", "/etc/passwd"), "crictl exec in a guarded pod under a host policy", "root:")
	wantRefused(t, execIn(t, gid, "cat", "/etc/shadow"), "cat /etc/shadow", "Operation not permitted")
}
