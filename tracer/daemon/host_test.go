package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/internal/tracertest"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer/alert"
)

func TestMain(m *testing.M) {
	tracertest.RunProbe()
	os.Exit(m.Run())
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
	cmd := tracertest.RawSocketCmd(cg)
	cmd.Stdin = strings.NewReader("\n")
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
	srv := serve(t, cfg, nil)

	engine := openTestEngine(t, pin)
	cg := testenv.NewCgroup(t)
	rs := policytest.Compile(t, tracertest.ShopPolicy)
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
	testenv.WaitFor(t, "ready", func() bool {
		r, err := http.Get(srv.metrics + "/readyz")
		return err == nil && r.StatusCode == http.StatusOK
	})

	resp, err := http.Get(srv.stream + alert.StreamPath + "?follow=true&type=alert&pod=web-1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() alert.Alert {
		t.Helper()
		got := make(chan alert.Alert, 1)
		go func() {
			var a alert.Alert
			if lines.Scan() {
				_ = json.Unmarshal(lines.Bytes(), &a)
			}
			got <- a
		}()
		select {
		case a := <-got:
			return a
		case <-time.After(5 * time.Second):
			t.Fatal("no alert streamed within 5 s")
		}
		return alert.Alert{}
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
	// The pipeline streams an alert just before it counts it: wait for the
	// count, which must then be exactly 2.
	const series = `nri_armor_tracer_alerts_total{action="Block",container="nginx",namespace="shop",operation="Network",policy="shop-guard",severity="7"} `
	var body string
	testenv.WaitFor(t, "the second alert counted", func() bool {
		body = get(t, srv.metrics+"/metrics")
		return !strings.Contains(body, series+"1\n")
	})
	if !strings.Contains(body, series+"2\n") ||
		!strings.Contains(body, `nri_armor_tracer_bpf_program_runs_total{program="armor_cg_sock_create"}`) {
		t.Fatalf("/metrics:\n%s", body)
	}
}
