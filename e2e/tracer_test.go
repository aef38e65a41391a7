//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// tracerProc is a running armor-tracer.
type tracerProc struct {
	addr string // metrics and stream, host:port
}

// startTracer starts the armor-tracer binary on nri-armor's state and pins
// of these tests, with its own telemetry pins, until the test ends.
func startTracer(t *testing.T) *tracerProc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logPath := filepath.Join(env.tmp, "armor-tracer-"+randomSuffix()+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(env.tracerBin, "-stateDir", env.stateDir, "-bpffs", env.pinPath,
		"-metricsAddress", addr, "-streamAddress", addr, "-stdout=false", "-nodeName", "e2e-node",
		"-retryInterval", "200ms", "-logLevel", "debug")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("armor-tracer log (%s):\n%s", logPath, b)
		}
	})
	waitFor(t, "armor-tracer to read nri-armor's events (/readyz)", 20*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return &tracerProc{addr: addr}
}

// alert is the part of armor-tracer's alert JSON the tests look at.
type alert struct {
	Type, NamespaceName, PodName, ContainerName, PolicyName, Severity string
	Operation, Resource, Enforcer, Action, Result, ProcessName        string
}

// alerts returns the alerts armor-tracer has streamed for pod.
func (tr *tracerProc) alerts(t *testing.T, pod string) []alert {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/v1/logs?type=alert&namespace=%s&pod=%s", tr.addr, podNamespace, pod))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []alert
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var a alert
		if line != "" && json.Unmarshal([]byte(line), &a) == nil && a.Type == "MatchedPolicy" {
			out = append(out, a)
		}
	}
	return out
}

// TestAlerts: through crictl, a pod naming a policy does what it blocks
// and what it audits; armor-tracer reports each as the user would read it:
// the pod, the container, the policy, the operation, the resource, the
// verdict and what enforced it — the kernel's cgroup-BPF for the raw
// socket, armor-tracer's own matching ("eBPF Monitor") for the audited file
// read and exec, which this kernel cannot enforce. Its metrics count them.
func TestAlerts(t *testing.T) {
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
		"raw":    {Operation: "Network", Enforcer: "CgroupBPF", Action: "Block"},
		"shadow": {Operation: "File", Resource: "/etc/shadow", Enforcer: "eBPF Monitor", Action: "Audit"},
		"apt":    {Operation: "Process", Resource: "/usr/bin/apt-get", Enforcer: "eBPF Monitor", Action: "Audit"},
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
		got = tr.alerts(t, p.name)
		seen := map[string]bool{}
		for _, a := range got {
			seen[kind(a)] = true
		}
		return seen["raw"] && seen["shadow"] && seen["apt"]
	})
	for _, a := range got {
		t.Logf("alert: %+v", a)
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
