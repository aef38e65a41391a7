package tracer

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
)

// helperEnv makes the test binary a probe process: it opens a raw socket,
// prints "ok" or the errno, and stays alive until its stdin closes (so
// that the tracer can read its /proc entry, as for any live process).
const helperEnv = "NRI_ARMOR_TRACER_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "raw" {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
		if err != nil {
			fmt.Println(err.(syscall.Errno) == syscall.EPERM)
		} else {
			syscall.Close(fd)
			fmt.Println("ok")
		}
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(0)
	}
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
	rs := policytest.Compile(t, shopPolicy)
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
	hub := NewHub(10, 10, 2, nil)
	m := NewMetrics(false, func() int { return 0 }, hub.Clients)
	tr := New(Options{Config: cfg, State: dir, Digests: pinned, Metrics: m, Hub: hub})
	sub, _, err := hub.subscribe(Filter{Type: "alert"}, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	enf := make(chan events.Event, 16)
	readErr, readDone := make(chan error, 1), make(chan struct{})
	go func() { defer close(readDone); readErr <- ReadEnforcement(ctx, pinned, enf, m) }()
	defer func() { cancel(); <-readDone }() // before pinned is closed
	go func() { _ = tr.Run(ctx, enf, nil) }()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=raw")
	cg.Into(cmd)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); strings.TrimSpace(line) != "true" {
		t.Fatalf("raw socket in the enforced cgroup: %q, want EPERM", line)
	}

	var a Alert
	select {
	case line := <-sub.ch:
		if err := jsonUnmarshal(line, &a); err != nil {
			t.Fatal(err)
		}
	case err := <-readErr:
		t.Fatalf("ring buffer reader ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no alert within 5 s")
	}
	self, _ := os.Executable()
	if a.NamespaceName != "shop" || a.PodName != "web-1" || a.ContainerName != "nginx" || a.PolicyName != "shop-guard" ||
		a.Severity != "7" || a.Action != "Block" || a.Enforcer != "CgroupBPF" || a.Operation != OpNetwork ||
		a.Resource != "domain=AF_INET type=SOCK_RAW protocol=1" || a.Result != ResultPermissionDenied || a.Type != TypeMatchedPolicy {
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
	if v := counterValue(t, m, "nri_armor_tracer_alerts_total", "", ""); v != 1 {
		t.Fatalf("alerts_total %v", v)
	}
}

func openTestEngine(t *testing.T, pin string) *bpflsm.Engine {
	t.Helper()
	cg2, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	e, err := bpflsm.OpenEngine(bpflsm.Config{PinPath: pin, MaxContainers: 64, MaxRuleEntries: 4096, RingBytes: 1 << 16, WakeupBytes: 1}, bpflsm.HooksCgroupNet, cg2)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// rawSocketIn runs the helper in cg and returns once it has tried.
func rawSocketIn(t *testing.T, cg *testenv.Cgroup) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=raw")
	cmd.Stdin = strings.NewReader("\n")
	cg.Into(cmd)
	if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Fatalf("raw socket in the enforced cgroup: %q (%v), want EPERM", out, err)
	}
}

// TestServe runs the whole tracer as armor-tracer does (Serve): it starts
// before nri-armor has pinned anything (not ready), picks the pins up when
// they appear, streams the alert of a denied socket over HTTP, and when
// nri-armor's pins are removed and created anew (a new ring buffer), it
// follows to the new one without being restarted.
func TestServe(t *testing.T) {
	testenv.RequireRoot(t)
	pin := fmt.Sprintf("/sys/fs/bpf/nri-armor-tracer-serve-%d", os.Getpid())
	t.Cleanup(func() { _ = bpflsm.Unpin(pin) })
	stateDir := t.TempDir()
	cfg := testConfig()
	cfg.ProcRoot, cfg.BPFFS, cfg.StateDir = "/proc", pin, stateDir
	cfg.RetryInterval = 50 * time.Millisecond
	base := serve(t, cfg, nil)

	engine := openTestEngine(t, pin)
	cg := testenv.NewCgroup(t)
	rs := policytest.Compile(t, shopPolicy)
	dir, _ := state.Open(stateDir, true)
	if err := dir.PutSet(rs); err != nil {
		t.Fatal(err)
	}
	if err := dir.PutContainer(state.Container{CgroupID: cg.ID, ContainerName: "nginx", PodName: "web-1", PodNamespace: "shop",
		PolicySet: rs.Digest, Enforcers: map[policy.Class]string{policy.ClassNetwork: "CgroupBPF"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Apply(cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "ready", func() bool { r, err := http.Get(base + "/readyz"); return err == nil && r.StatusCode == http.StatusOK })

	resp, err := http.Get(base + StreamPath + "?follow=true&type=alert&pod=web-1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() Alert {
		t.Helper()
		got := make(chan Alert, 1)
		go func() {
			var a Alert
			if lines.Scan() {
				_ = jsonUnmarshal(lines.Bytes(), &a)
			}
			got <- a
		}()
		select {
		case a := <-got:
			return a
		case <-time.After(5 * time.Second):
			t.Fatal("no alert streamed within 5 s")
		}
		return Alert{}
	}
	rawSocketIn(t, cg)
	if a := next(); a.PodName != "web-1" || a.Enforcer != "CgroupBPF" || a.PolicyName != "shop-guard" {
		t.Fatalf("streamed %+v", a)
	}

	// nri-armor goes away with its pins, and comes back with new ones.
	engine.Close()
	if err := bpflsm.Unpin(pin); err != nil {
		t.Fatal(err)
	}
	engine = openTestEngine(t, pin)
	defer engine.Close()
	if _, err := engine.Apply(cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * cfg.RetryInterval) // the tracer notices the new ring buffer
	rawSocketIn(t, cg)
	if a := next(); a.PodName != "web-1" || a.Action != "Block" {
		t.Fatalf("after the pins were replaced: %+v", a)
	}
	body := get(t, base+"/metrics")
	if !strings.Contains(body, `nri_armor_tracer_alerts_total{action="Block",container="nginx",namespace="shop",operation="Network",policy="shop-guard",severity="7"} 2`) ||
		!strings.Contains(body, `nri_armor_tracer_bpf_program_runs_total{program="armor_cg_sock_create"}`) {
		t.Fatalf("/metrics:\n%s", body)
	}
}
