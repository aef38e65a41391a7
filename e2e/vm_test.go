//go:build e2e && vme2e

package e2e

// The VM end-to-end tests (make vmtest-e2e): the same private containerd,
// runc, crictl and nri-armor as on the host, inside the QEMU VM of
// hack/vmtest booted into a Debian root (hack/vmtest/e2e.sh), where BPF-LSM
// is active and enforces process and file Block rules, which the host's
// kernel cannot. armor-tracer runs beside nri-armor and must report the
// kernel's decisions as alerts with the pod's identity.

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/vmtest"
)

const (
	vmPolicyName = "e2e-no-apt-no-shadow"
	// vmPolicy blocks running the image's package manager and reading its
	// password file: the classes BPF-LSM enforces (bprm_check_security,
	// file_open) and cgroup-BPF cannot.
	vmPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: ` + vmPolicyName + `
  namespace: e2e
spec:
  process:
    matchPaths:
    - path: /usr/bin/apt-get
  file:
    matchPaths:
    - path: /etc/shadow
  action: Block
`
)

// waitAlert waits for the BPF-LSM Block alert of one operation on one
// resource in a pod's container (waitAlertLike).
func (tr *tracer) waitAlert(t *testing.T, p pod, container, operation, resource string) alert {
	t.Helper()
	return tr.waitAlertLike(t, p, alert{ContainerName: container, Operation: operation, Resource: resource,
		PolicyName: vmPolicyName, Enforcer: "BPFLSM", Action: "Block", Result: "Permission denied"})
}

// TestVMProcessFileBlock: a pod naming a process and file Block policy
// cannot run /usr/bin/apt-get or read /etc/shadow — from its first
// instruction and in every later exec, refused by BPF-LSM with EPERM —
// while a pod without the annotation can; armor-tracer reports each
// refusal as an alert naming the pod, container and policy, enforced by
// BPFLSM. On containerd and on CRI-O (runtimes_vme2e_test.go).
func TestVMProcessFileBlock(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, _ *criRuntime) { testVMProcessFileBlock(t) })
}

// testVMProcessFileBlock is TestVMProcessFileBlock against one runtime.
func testVMProcessFileBlock(t *testing.T) {
	vmtest.RequireLSM(t, "bpf")
	need(t)
	writePolicy(t, "no-apt-no-shadow.yaml", vmPolicy)
	a := startArmor(t)
	tr := startTracer(t)

	guarded := runPod(t, "guarded", map[string]string{policiesKey: vmPolicyName})
	// The container's own command tries first thing: enforcement is in
	// place before its first instruction.
	first := startContainer(t, guarded, "first", "sh", "-c",
		"apt-get install x; echo apt-exit=$?; cat /etc/shadow; echo cat-exit=$?; exec sleep 3600")
	id := startContainer(t, guarded, "main", sleeper...)
	open := runPod(t, "open", nil)
	openID := startContainer(t, open, "main", sleeper...)

	var logs string
	waitFor(t, "the first container's commands", 20*time.Second, func() bool {
		// crictl logs writes the container's stderr to its own stderr.
		r := crictl(t, "logs", first)
		logs = r.stdout + r.stderr
		return strings.Contains(logs, "cat-exit=")
	})
	t.Logf("the guarded container's first command printed:\n%s", logs)
	// busybox sh reports a refused exec with the kernel's message and
	// status 126; cat with status 1.
	for _, want := range []string{"sh: apt-get: Operation not permitted", "apt-exit=126", "cat: can't open '/etc/shadow': Operation not permitted", "cat-exit=1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the guarded container's first command: %q; want %q", logs, want)
		}
	}
	if strings.Contains(logs, "apt-get (fake)") || strings.Contains(logs, "root:") {
		t.Errorf("the guarded container's first command ran apt-get or read /etc/shadow: %q", logs)
	}

	// Every later exec too: runc's exec of the binary itself, a shell's,
	// and the read. crictl exec exits 1 whatever the command's status,
	// and says the status when it is not 1.
	wantRefused(t, execIn(t, id, "apt-get", "install", "x"), "crictl exec apt-get", "exec /usr/bin/apt-get: operation not permitted")
	wantRefused(t, execIn(t, id, "sh", "-c", "apt-get install x"), "sh -c apt-get",
		"sh: apt-get: Operation not permitted", "command terminated with exit code 126")
	wantRefused(t, execIn(t, id, "cat", "/etc/shadow"), "cat /etc/shadow", "cat: can't open '/etc/shadow': Operation not permitted")
	// What the policy does not name still works.
	wantOK(t, execIn(t, id, "cat", "/etc/passwd"), "cat /etc/passwd in the guarded container", "root:")

	// The same binary and file in a pod naming no policy.
	wantOK(t, execIn(t, openID, "apt-get", "install", "x"), "apt-get in the unannotated container", "apt-get (fake): install x")
	wantOK(t, execIn(t, openID, "cat", "/etc/shadow"), "cat /etc/shadow in the unannotated container", "root:")

	// Both guarded containers are enforced by BPF-LSM for both classes.
	for _, class := range []string{"process", "file"} {
		a.wantMetric(t, fmt.Sprintf(`nri_armor_containers_enforced{backend="BPFLSM",class=%q}`, class), 2)
	}

	// armor-tracer's alerts, as armorctl logs shows them.
	tr.waitAlert(t, guarded, "first", "Process", "/usr/bin/apt-get")
	tr.waitAlert(t, guarded, "main", "Process", "/usr/bin/apt-get")
	tr.waitAlert(t, guarded, "main", "File", "/etc/shadow")
	if as := tr.policyAlerts(t, open.name); len(as) != 0 {
		t.Errorf("alerts for the unannotated pod %s: %v; want none", open.name, as)
	}
	// The same alerts on armor-tracer's stdout (one JSON object a line).
	f, err := os.Open(tr.stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for _, al := range decodeAlerts(t, bufio.NewScanner(f)) {
		if al.PodName == guarded.name && al.Enforcer == "BPFLSM" && al.Operation == "Process" && al.Resource == "/usr/bin/apt-get" {
			n++
		}
	}
	if n == 0 {
		t.Errorf("armor-tracer's stdout has no BPFLSM alert for /usr/bin/apt-get in %s", guarded.name)
	}
}
