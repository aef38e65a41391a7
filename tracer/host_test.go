package tracer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/internal/tracertest"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer/alert"
	"github.com/nri-armor/nri-armor/tracer/stream"
)

func TestMain(m *testing.M) {
	tracertest.RunProbe()
	os.Exit(m.Run())
}

// TestHostEnforcementAlert runs on the host's own kernel with nri-armor's
// real enforcement programs: a network Block rule set applied to a test
// cgroup by a bpflsm.Engine with private pins, the container published in a
// state directory, the tracer reading the pinned ring buffer through
// events.OpenPinned. A raw socket from a process in the cgroup is denied by
// the kernel, and the tracer's alert names the pod, the policy and the
// enforcer.
func TestHostEnforcementAlert(t *testing.T) {
	testenv.RequireRoot(t)
	cg2, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	pin := fmt.Sprintf("/sys/fs/bpf/nri-armor-tracer-test-%d", os.Getpid())
	t.Cleanup(func() { _ = bpflsm.Unpin(pin) })
	// The default wake-up threshold: a lone event does not wake the reader,
	// which must find it anyway.
	engine, err := bpflsm.OpenEngine(bpflsm.Config{PinPath: pin, MaxContainers: 64, MaxRuleEntries: 4096, RingBytes: 1 << 16}, bpflsm.HooksCgroupNet, cg2)
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	cg := testenv.NewCgroup(t)
	rs := policytest.Compile(t, tracertest.ShopPolicy)
	if _, err := engine.Apply(cg.ID, rs); err != nil {
		t.Fatal(err)
	}

	dir, err := state.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.PutSet(rs); err != nil {
		t.Fatal(err)
	}
	if err := dir.PutContainer(state.Container{
		CgroupID: cg.ID, ContainerID: "c0ffee", ContainerName: "nginx", PodName: "web-1", PodNamespace: "shop",
		PodLabels: map[string]string{"app": "web"}, Image: "nginx:1.27", PolicySet: rs.Digest, Mode: policy.ModeEnforce,
		Enforcers: map[policy.Class]string{policy.ClassNetwork: "CgroupBPF"},
	}); err != nil {
		t.Fatal(err)
	}

	pinned, err := events.OpenPinned(pin)
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	cfg := testConfig()
	cfg.ProcRoot = "/proc"
	hub := stream.NewHub(10, 10, 2, nil)
	m := NewMetrics(false, func() int { return 0 }, hub.Clients)
	tr := New(Options{Config: cfg, State: dir, Digests: pinned, Metrics: m, Hub: hub})
	srv := httptest.NewServer(hub)
	defer srv.Close()
	sub, err := http.Get(srv.URL + alert.StreamPath + "?follow=true&type=alert")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Body.Close()
	lines := make(chan []byte, 1)
	go func() {
		if l, err := bufio.NewReader(sub.Body).ReadBytes('\n'); err == nil {
			lines <- l
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	enf := make(chan events.Event, 16)
	readErr, readDone := make(chan error, 1), make(chan struct{})
	go func() { defer close(readDone); readErr <- ReadEnforcement(ctx, pinned, enf, m) }()
	defer func() { cancel(); <-readDone }() // before pinned is closed
	go func() { _ = tr.Run(ctx, enf, nil, nil) }()

	cmd := tracertest.RawSocketCmd(cg)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); strings.TrimSpace(line) != "true" {
		t.Fatalf("raw socket in the enforced cgroup: %q, want EPERM", line)
	}

	var a alert.Alert
	select {
	case line := <-lines:
		if err := json.Unmarshal(line, &a); err != nil {
			t.Fatal(err)
		}
	case err := <-readErr:
		t.Fatalf("ring buffer reader ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no alert within 5 s")
	}
	self, _ := os.Executable()
	if a.NamespaceName != "shop" || a.PodName != "web-1" || a.ContainerName != "nginx" || a.PolicyName != "shop-guard" ||
		a.Severity != "7" || a.Action != "Block" || a.Enforcer != "CgroupBPF" || a.Operation != alert.OpNetwork ||
		a.Resource != "domain=AF_INET type=SOCK_RAW protocol=1" || a.Result != alert.ResultPermissionDenied || a.Type != alert.TypeMatchedPolicy {
		t.Fatalf("alert %+v", a)
	}
	if a.HostPID != int64(cmd.Process.Pid) || a.ProcessName != self || a.ParentProcessName != self || a.Labels != "app=web" {
		t.Fatalf("process identity: pid %d %q parent %q (want %d %q): %+v", a.HostPID, a.ProcessName, a.ParentProcessName, cmd.Process.Pid, self, a)
	}
	if !strings.HasPrefix(a.Data, "set="+rs.ShortDigest()+" rule=") || strings.Contains(a.Data, "unresolved") {
		t.Fatalf("set id not resolved through the pins: %q", a.Data)
	}
	when, err := time.Parse(time.RFC3339Nano, a.UpdatedTime)
	if err != nil || time.Since(when).Abs() > time.Minute {
		t.Fatalf("UpdatedTime %q: %v (the kernel's boot clock mapped wrongly?)", a.UpdatedTime, err)
	}
	// The pipeline counts an alert right after it publishes it: the stream
	// may deliver it first.
	testenv.WaitFor(t, "the alert counted", func() bool { return counterValue(t, m, "nri_armor_tracer_alerts_total", "", "") != 0 })
	if v := counterValue(t, m, "nri_armor_tracer_alerts_total", "", ""); v != 1 {
		t.Fatalf("alerts_total %v", v)
	}
}
