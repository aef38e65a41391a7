package tracer

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/tracer/alert"
)

// TestFlood: a burst of one rule's alerts far above the limit gives
// exactly rateBurst alerts, then one AlertThreshold summary whose count is
// every dropped alert, with the rule's policy, id and severity; the
// counters agree, and the limiter's memory stays bounded.
func TestFlood(t *testing.T) {
	cfg := testConfig()
	cfg.RateBurst, cfg.RatePerSecond = 20, 5
	cfg.RateExemptSeverity = 0 // ShopPolicy's rules are of severity 7 and 9
	e := newEnv(t, cfg)
	const n = 200_000
	ev := e.varLogAudit(t) // Block alerts are never dropped: an Audit rule
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		e.t.Enforcement(&ev) // the clock is frozen: no refill
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	got := e.alerts(t) // flushes: the window's summary
	if len(got) != cfg.RateBurst+1 {
		t.Fatalf("%d records, want %d alerts + 1 summary", len(got), cfg.RateBurst)
	}
	for _, a := range got[:cfg.RateBurst] {
		if a.Type != alert.TypeMatchedPolicy {
			t.Fatalf("alert %+v", a)
		}
	}
	s := got[cfg.RateBurst]
	wantDrops := n - cfg.RateBurst
	if s.Type != alert.TypeSystemEvent || s.Operation != alert.OpAlertThreshold || s.PodName != "web-1" || s.ContainerName != "nginx" ||
		!strings.HasPrefix(s.Data, "droppedAlerts="+itoa(wantDrops)+" droppedLogs=0 ") ||
		!strings.HasSuffix(s.Data, " dropped[policy=shop-guard,rule="+itoa(int(ev.RuleID))+",severity=7]="+itoa(wantDrops)) {
		t.Fatalf("summary %+v, want %d dropped", s, wantDrops)
	}
	if v := counterValue(t, e.m, "nri_armor_tracer_rate_limited_total", "policy", "shop-guard"); v != float64(wantDrops) {
		t.Fatalf("rate_limited_total %v, want %d", v, wantDrops)
	}
	if v := counterValue(t, e.m, "nri_armor_tracer_alerts_total", "", ""); v != float64(cfg.RateBurst) {
		t.Fatalf("alerts_total %v, want %d", v, cfg.RateBurst)
	}
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 4<<20 {
		t.Fatalf("heap grew %d bytes over %d events", grown, n)
	}
	// A second window with nothing dropped gives no summary; refilled
	// tokens let alerts through again at the steady rate.
	if got := e.alerts(t); len(got) != 0 {
		t.Fatalf("empty window: %+v", got)
	}
	e.clock.add(2 * time.Second) // 10 tokens at 5/s
	for i := 0; i < 100; i++ {
		e.t.Enforcement(&ev)
	}
	if got := e.alerts(t); len(got) != 10+1 {
		t.Fatalf("after 2 s: %d records, want 10 alerts + 1 summary", len(got))
	}
}

// TestFloodManyContainers: more flooding containers than maxContainers —
// buckets are evicted, the limiter stays at its bound, and every event is
// either emitted or counted in a summary (nothing vanishes).
func TestFloodManyContainers(t *testing.T) {
	cfg := testConfig()
	cfg.RateBurst, cfg.MaxContainers = 3, 50
	cfg.RateExemptSeverity = 0
	e := newEnv(t, cfg)
	ev := e.varLogAudit(t) // Block alerts are never dropped: an Audit rule
	const containers, each = 2_000, 10
	for c := 0; c < containers; c++ {
		ev.CgroupID = uint64(10_000 + c)
		for i := 0; i < each; i++ {
			e.t.Enforcement(&ev)
		}
		if e.t.limiter.m.Len() > cfg.MaxContainers || len(e.t.limiter.evicted) > cfg.MaxContainers {
			t.Fatalf("limiter grew past its bound: %d buckets, %d evicted", e.t.limiter.m.Len(), len(e.t.limiter.evicted))
		}
	}
	emitted, dropped := 0, 0
	for _, a := range e.alerts(t) {
		if a.Operation == alert.OpAlertThreshold {
			n := strings.Fields(strings.TrimPrefix(a.Data, "droppedAlerts="))[0]
			// Containers still tracked name the rule; the sum of those
			// no longer tracked names the severity.
			if !strings.HasSuffix(a.Data, ",severity=7]="+n) && !strings.HasSuffix(a.Data, " dropped[severity=7]="+n) {
				t.Fatalf("summary %+v does not name what it dropped", a)
			}
			dropped += atoi(t, n)
			continue
		}
		emitted++
	}
	if emitted != containers*cfg.RateBurst || emitted+dropped != containers*each {
		t.Fatalf("emitted %d + dropped %d != %d events", emitted, dropped, containers*each)
	}
	if e.t.ids.containers.Len() > cfg.MaxContainers {
		t.Fatalf("identity cache %d entries, bound %d", e.t.ids.containers.Len(), cfg.MaxContainers)
	}
}

// TestLogsDoNotStarveAlerts: logs have their own bucket.
func TestLogsDoNotStarveAlerts(t *testing.T) {
	cfg := testConfig()
	cfg.RateBurst = 2
	e := newEnv(t, cfg)
	for i := 0; i < 50; i++ {
		ev := openEv(e.cg, 301, "/etc/hosts", 0)
		e.t.Telemetry(&ev)
	}
	ev := e.rawSocketBlock(t)
	e.t.Enforcement(&ev)
	got := e.alerts(t)
	var alerts, logs int
	for _, a := range got {
		switch a.Type {
		case alert.TypeMatchedPolicy:
			alerts++
		case alert.TypeContainerLog:
			logs++
		case alert.TypeSystemEvent:
			if !strings.HasPrefix(a.Data, "droppedAlerts=0 droppedLogs=48 ") {
				t.Fatalf("summary %+v", a)
			}
		}
	}
	if alerts != 1 || logs != 2 {
		t.Fatalf("%d alerts, %d logs; want 1 and 2", alerts, logs)
	}
}

// varLogAudit is the kernel's record of an Audit decision in e's
// container: a write under /var/log/ (ShopPolicy's Audit rule, severity 7).
func (e *env) varLogAudit(t testing.TB) events.Event {
	return events.Event{CgroupID: e.cg, BootNs: 1e9, PID: 301, TGID: 301, RuleID: uint32(e.ruleID(t, policy.ClassFile, "/var/log/")),
		SetID: e.setID, Class: policy.ClassFile, Action: policy.Audit, Comm: "logger", Resource: "/var/log/app.log", Write: true}
}
