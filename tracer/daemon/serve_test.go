package daemon

import (
	"bufio"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/internal/tracertest"
	"github.com/nri-armor/nri-armor/tracer/alert"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// fakeTelemetry stands in for the telemetry loader (unit test only).
type fakeTelemetry struct {
	ch   chan telemetry.Event
	lost atomic.Uint64
}

func (f *fakeTelemetry) Events() <-chan telemetry.Event { return f.ch }
func (f *fakeTelemetry) Lost() uint64                   { return f.lost.Load() }

// TestServeTelemetry: Serve takes a telemetry source's events through the
// pipeline (here an audit-only Block, reported by "eBPF Monitor" on the
// stream) and exports its losses; without nri-armor's pins it is not ready.
func TestServeTelemetry(t *testing.T) {
	dir, _ := tracertest.ShopState(t)
	cfg := testConfig()
	cfg.StateDir, cfg.BPFFS = dir.Root(), filepath.Join(t.TempDir(), "no-pins")
	cfg.RetryInterval = 20 * time.Millisecond
	tel := &fakeTelemetry{ch: make(chan telemetry.Event, 4)}
	tel.lost.Store(3)
	base := serve(t, cfg, tel)
	resp, err := http.Get(base + alert.StreamPath + "?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	testenv.WaitFor(t, "stream client", func() bool {
		return strings.Contains(get(t, base+"/metrics"), "nri_armor_tracer_stream_clients 1")
	})
	tel.ch <- telemetry.Event{Kind: telemetry.KindOpen, CgroupID: tracertest.ShopCgroup, PID: 5, TGID: 5, Path: "/etc/shadow", Ret: 3}
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var a alert.Alert
	if err := json.Unmarshal(line, &a); err != nil || a.Enforcer != alert.EnforcerMonitor || a.Action != "Block" || a.PodName != "web-1" {
		t.Fatalf("streamed %s (%v)", line, err)
	}
	if m := get(t, base+"/metrics"); !strings.Contains(m, `nri_armor_tracer_events_lost_total{source="telemetry"} 3`) {
		t.Fatalf("no telemetry losses in\n%s", m)
	}
}
