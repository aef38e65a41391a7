//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/vmtest"
)

// auditPolicy blocks raw sockets (enforced in the kernel here, by
// cgroup-BPF) and audits reads of /etc/shadow and runs of apt-get (this
// host has no BPF-LSM: armor-tracer matches them from its telemetry).
const auditPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: e2e-audit
  namespace: e2e
spec:
  severity: 5
  network:
    matchProtocols:
    - protocol: raw
      action: Block
  file:
    matchPaths:
    - path: /etc/shadow
  process:
    matchPaths:
    - path: /usr/bin/apt-get
  action: Audit
`

// fileBackend is what decides file and process rules where the tests run:
// armor-tracer's own matching on the CI host (no BPF-LSM), BPF-LSM in the VM.
func fileBackend() string {
	if vmtest.InVM() {
		return "BPFLSM"
	}
	return "eBPF Monitor"
}

// TestAlerts: through crictl, a pod naming a policy does what it blocks
// and what it audits; armor-tracer reports each as the user would read it:
// the pod, the container, the policy, the operation, the resource, the
// verdict and what decided it — on the CI host the kernel's cgroup-BPF for
// the raw socket and armor-tracer's own matching ("eBPF Monitor") for the
// audited file read and exec, which that kernel cannot enforce; in the VM
// BPF-LSM for all three. Its metrics count them.
func TestAlerts(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, _ *criRuntime) { testAlerts(t) })
}

// testAlerts is TestAlerts against one runtime.
func testAlerts(t *testing.T) {
	need(t)
	writePolicy(t, "audit.yaml", auditPolicy)
	startArmor(t)
	tr := startTracer(t)
	p := runPod(t, "audited", map[string]string{policiesKey: "e2e-audit"})
	id := startContainer(t, p, "main", sleeper...)
	// armor-tracer watches the container once nri-armor published it.
	waitFor(t, "armor-tracer to watch the container", 10*time.Second, func() bool {
		return scrape(t, tr.addr, "nri_armor_tracer_containers_watched") >= 1
	})

	wantDenied(t, execIn(t, id, "nettool", "raw"), "socket raw")
	wantOK(t, execIn(t, id, "cat", "/etc/shadow"), "cat /etc/shadow (audited)", "root:")
	wantOK(t, execIn(t, id, "apt-get", "install", "x"), "apt-get (audited)", "apt-get (fake)")

	want := map[string]alert{
		"raw":    {Operation: "Network", Enforcer: networkBackend(), Action: "Block"},
		"shadow": {Operation: "File", Resource: "/etc/shadow", Enforcer: fileBackend(), Action: "Audit"},
		"apt":    {Operation: "Process", Resource: "/usr/bin/apt-get", Enforcer: fileBackend(), Action: "Audit"},
	}
	kind := func(a alert) string {
		switch {
		case a.Operation == "Network" && strings.Contains(a.Resource, "SOCK_RAW"):
			return "raw"
		case a.Operation == "File" && a.Resource == "/etc/shadow":
			return "shadow"
		case a.Operation == "Process" && a.Resource == "/usr/bin/apt-get":
			return "apt"
		}
		return ""
	}
	var got []alert
	waitFor(t, "the three alerts", 15*time.Second, func() bool {
		got = got[:0]
		for _, a := range tr.alerts(t, p.name) {
			if a.Type == "MatchedPolicy" {
				got = append(got, a)
			}
		}
		seen := map[string]bool{}
		for _, a := range got {
			seen[kind(a)] = true
		}
		return seen["raw"] && seen["shadow"] && seen["apt"]
	})
	count := map[string]int{}
	for _, a := range got {
		t.Logf("alert: %+v", a)
		count[kind(a)]++
		w, ok := want[kind(a)]
		if !ok {
			continue // e.g. the shell's own reads: not what this test audits
		}
		if a.NamespaceName != podNamespace || a.PodName != p.name || a.ContainerName != "main" || a.PolicyName != "e2e-audit" ||
			a.Severity != "5" || a.Operation != w.Operation || a.Enforcer != w.Enforcer || a.Action != w.Action ||
			(w.Resource != "" && a.Resource != w.Resource) {
			t.Errorf("alert %+v: want pod %s/%s, container main, policy e2e-audit, severity 5, %s %s by %s", a, podNamespace, p.name, w.Action, w.Operation, w.Enforcer)
		}
	}
	// One operation, one alert: on overlayfs the kernel opens the real file
	// under the container's too, which must not count as a second open.
	for k := range want {
		if count[k] != 1 {
			t.Errorf("%d alerts for the %s operation, want exactly 1", count[k], k)
		}
	}
	total := 0.0
	for _, op := range []string{"Network", "File", "Process"} {
		for _, action := range []string{"Block", "Audit"} {
			total += scrape(t, tr.addr, fmt.Sprintf(`nri_armor_tracer_alerts_total{action=%q,container="main",namespace=%q,operation=%q,policy="e2e-audit",severity="5"}`, action, podNamespace, op))
		}
	}
	if int(total) != len(got) {
		t.Errorf("armor-tracer counts %v alerts for the pod's policy, streamed %d", total, len(got))
	}
}
