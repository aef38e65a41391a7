package tracer

import (
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
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

// batchPolicy is the policies of the batch container: a noisy Audit rule of
// severity 2 (/tmp/) and another of severity 3 (/var/cache/), and a policy
// of severity 9 that audits reads of /etc/shadow and blocks curl with
// severity 1.
const batchPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: batch-audit, namespace: shop}
spec:
  selector: {matchLabels: {app: batch}}
  file:
    matchDirectories:
    - dir: /tmp/
      recursive: true
      severity: 2
    - dir: /var/cache/
      recursive: true
      severity: 3
  action: Audit
---
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: batch-secrets, namespace: shop}
spec:
  selector: {matchLabels: {app: batch}}
  severity: 9
  message: shadow read
  file:
    matchPaths:
    - path: /etc/shadow
  process:
    matchPaths:
    - path: /usr/bin/curl
      action: Block
      severity: 1
  action: Audit
`

// batchEnv is newEnv with rateBurst burst and rateExemptSeverity exempt
// that publishes, beside e's container, the container shop/batch-1/worker
// using batchPolicy with no class enforced in the kernel (every rule is
// matched in user space); it returns that container's cgroup id and rule set.
func batchEnv(t testing.TB, burst, exempt int) (*env, uint64, *policy.RuleSet) {
	t.Helper()
	cfg := testConfig()
	cfg.RateBurst, cfg.RateExemptSeverity = burst, exempt
	e := newEnv(t, cfg)
	rs := policytest.Compile(t, batchPolicy)
	if err := e.dir.PutSet(rs); err != nil {
		t.Fatal(err)
	}
	const cg = 4343
	err := e.dir.PutContainer(state.Container{
		CgroupID: cg, ContainerID: "ba7c4", ContainerName: "worker", PodName: "batch-1", PodNamespace: "shop",
		PodLabels: map[string]string{"app": "batch"}, Image: "busybox", PolicySet: rs.Digest, Mode: policy.ModeEnforce,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e, cg, rs
}

// batchRule is the id of batchPolicy's rule of class on value, as Data says it.
func batchRule(t testing.TB, rs *policy.RuleSet, class policy.Class, value string) string {
	t.Helper()
	return itoa(ruleIn(t, rs, class, value))
}

// opens sends n telemetry reads of path by process 501 of cgroup cg.
func (e *env) opens(cg uint64, path string, n int) {
	for i := 0; i < n; i++ {
		ev := openEv(cg, 501, path, syscall.O_RDONLY)
		e.t.Telemetry(&ev)
	}
}

// summaries splits records into the alerts and the AlertThreshold summaries.
func summaries(got []alert.Alert) (alerts, sums []alert.Alert) {
	for _, a := range got {
		if a.Operation == alert.OpAlertThreshold {
			sums = append(sums, a)
		} else {
			alerts = append(alerts, a)
		}
	}
	return alerts, sums
}

// TestFloodKeepsSevereAlert is issue 12's case: 50 cheap alerts of a
// container (a severity-2 Audit rule) exhaust that rule's bucket, and the
// container's severity-9 read of /etc/shadow that follows is emitted; the
// summary names the dropped rule, its policy and severity, with the count.
func TestFloodKeepsSevereAlert(t *testing.T) {
	e, cg, rs := batchEnv(t, 10, DefaultConfig().RateExemptSeverity)
	e.opens(cg, "/tmp/cache", 50)
	e.opens(cg, "/etc/shadow", 1)
	alerts, sums := summaries(e.alerts(t))
	if len(alerts) != 11 || len(sums) != 1 {
		t.Fatalf("%d alerts and %d summaries, want 10 + the shadow read, and 1: %+v %+v", len(alerts), len(sums), alerts, sums)
	}
	if a := alerts[10]; a.Resource != "/etc/shadow" || a.Severity != "9" || a.PolicyName != "batch-secrets" || a.Action != "Audit" {
		t.Fatalf("last alert %+v, want the severity-9 read of /etc/shadow", a)
	}
	tmp := batchRule(t, rs, policy.ClassFile, "/tmp/")
	s := sums[0]
	if want := "droppedAlerts=40 droppedLogs=0 burst=10 ratePerSecond=10 dropped[policy=batch-audit,rule=" + tmp + ",severity=2]=40"; s.Data != want ||
		s.PodName != "batch-1" || s.ContainerName != "worker" {
		t.Fatalf("summary %+v, want Data %q", s, want)
	}
	if want := ": 40 of policy batch-audit rule " + tmp + " severity 2"; !strings.HasSuffix(s.Message, want) {
		t.Fatalf("summary message %q, want it to end with %q", s.Message, want)
	}
	if v := counterValue(t, e.m, "nri_armor_tracer_rate_limited_total", "severity", "2"); v != 40 {
		t.Fatalf("rate_limited_total{severity=2} %v, want 40", v)
	}
}

// TestFloodExemptSeverity: alerts of at least rateExemptSeverity are never
// dropped, however many one rule raises, and take no bucket; below it the
// same rule is limited like any other and its summary says severity 9.
func TestFloodExemptSeverity(t *testing.T) {
	for _, exempt := range []int{7, 10} {
		e, cg, rs := batchEnv(t, 10, exempt)
		e.opens(cg, "/etc/shadow", 1000)
		alerts, sums := summaries(e.alerts(t))
		if exempt == 7 {
			if len(alerts) != 1000 || len(sums) != 0 || e.t.limiter.m.Len() != 0 {
				t.Fatalf("exempt from severity 7: %d alerts, %d summaries, %d buckets; want 1000, 0, 0", len(alerts), len(sums), e.t.limiter.m.Len())
			}
			continue
		}
		want := "dropped[policy=batch-secrets,rule=" + batchRule(t, rs, policy.ClassFile, "/etc/shadow") + ",severity=9]=990"
		if len(alerts) != 10 || len(sums) != 1 || !strings.HasSuffix(sums[0].Data, " "+want) {
			t.Fatalf("exempt from severity 10: %d alerts, summaries %+v; want 10 and one ending %s", len(alerts), sums, want)
		}
	}
}

// TestFloodNeverDropsBlock: Block alerts are never dropped — the kernel's
// and those of a Block rule matched in user space (severity 1) — even with
// no severity exempt; they take no bucket and nothing is counted dropped.
func TestFloodNeverDropsBlock(t *testing.T) {
	e, cg, _ := batchEnv(t, 2, 0)
	const n = 1000
	ev := e.rawSocketBlock(t)
	for i := 0; i < n; i++ {
		e.t.Enforcement(&ev)
		tev := execEv(cg, uint32(600+i), 1, "/usr/bin/curl")
		e.t.Telemetry(&tev)
	}
	alerts, sums := summaries(e.alerts(t))
	kernel, monitor := 0, 0
	for _, a := range alerts {
		switch {
		case a.Action != "Block":
			t.Fatalf("alert %+v", a)
		case a.Enforcer == alert.EnforcerMonitor && a.Severity == "1":
			monitor++
		case a.Enforcer == "CgroupBPF":
			kernel++
		}
	}
	if kernel != n || monitor != n || len(sums) != 0 {
		t.Fatalf("%d kernel and %d unenforced Block alerts, summaries %+v; want %d each and none", kernel, monitor, sums, n)
	}
	if v := counterValue(t, e.m, "nri_armor_tracer_rate_limited_total", "", ""); v != 0 || e.t.limiter.m.Len() != 0 {
		t.Fatalf("rate_limited_total %v, %d buckets; want 0 and 0", v, e.t.limiter.m.Len())
	}
}

// TestFloodRulesDoNotStarve: one rule's flood does not starve another rule
// of the same container: each has its own bucket, and the summary names
// both, the most severe first.
func TestFloodRulesDoNotStarve(t *testing.T) {
	e, cg, rs := batchEnv(t, 3, DefaultConfig().RateExemptSeverity)
	e.opens(cg, "/tmp/x", 1000)
	e.opens(cg, "/var/cache/y", 5)
	alerts, sums := summaries(e.alerts(t))
	per := map[string]int{}
	for _, a := range alerts {
		per[a.Resource]++
	}
	if per["/tmp/x"] != 3 || per["/var/cache/y"] != 3 || len(sums) != 1 {
		t.Fatalf("alerts per resource %v, summaries %+v; want 3 of each and 1 summary", per, sums)
	}
	want := "droppedAlerts=999 droppedLogs=0 burst=3 ratePerSecond=10" +
		" dropped[policy=batch-audit,rule=" + batchRule(t, rs, policy.ClassFile, "/var/cache/") + ",severity=3]=2" +
		" dropped[policy=batch-audit,rule=" + batchRule(t, rs, policy.ClassFile, "/tmp/") + ",severity=2]=997"
	if sums[0].Data != want {
		t.Fatalf("summary Data\n%s\nwant\n%s", sums[0].Data, want)
	}
}

// TestLimiterSummary: a summary names at most maxSummaryRules rules (most
// severe, then most dropped, first) and sums the others; a rule id that
// names another rule after a set changed keeps its pending count apart;
// drops of buckets pushed out past the bound are summed by severity; a full
// bucket with nothing to report is freed at the summary.
func TestLimiterSummary(t *testing.T) {
	l := newLimiter(1, 1, 0, 100)
	l.counter = func(*alert.Alert) prometheus.Counter { return prometheus.NewCounter(prometheus.CounterOpts{Name: "x"}) }
	now := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	drop := func(cg uint64, rule int, pol string, sev, n int) {
		a := &alert.Alert{Type: alert.TypeMatchedPolicy, Action: "Audit", Cgroup: cg, RuleID: rule, PolicyName: pol, Severity: severityString(sev)}
		for i := 0; i < n; i++ {
			l.allow(a, now)
		}
	}
	for r := 1; r <= maxSummaryRules+4; r++ {
		drop(1, r, "p", 1+r%5, 1+r) // r dropped (one token)
	}
	drop(2, 7, "old", 3, 3) // 2 dropped
	drop(2, 7, "new", 4, 2) // the set changed: 2 dropped of another rule
	got := l.flush(now)
	if len(got) != 2 || got[0].who.Cgroup != 2 { // the retired count of cgroup 2 first
		t.Fatalf("%d summaries, want 2 (cgroup 2's first): %+v", len(got), got)
	}
	s := got[1]
	if len(s.rules) != maxSummaryRules || s.otherRules != 4 || s.alerts != 20*21/2 {
		t.Fatalf("cgroup 1: %d rules named, %d others, %d alerts", len(s.rules), s.otherRules, s.alerts)
	}
	for i := 1; i < len(s.rules); i++ {
		a, b := s.rules[i-1], s.rules[i]
		if severityOf(a.severity) < severityOf(b.severity) || (a.severity == b.severity && a.n < b.n) {
			t.Fatalf("rules out of order: %+v before %+v", a, b)
		}
	}
	if d := got[0].data(1, 1); d != "droppedAlerts=4 droppedLogs=0 burst=1 ratePerSecond=1 dropped[policy=new,rule=7,severity=4]=2 dropped[policy=old,rule=7,severity=3]=2" {
		t.Fatalf("cgroup 2: %s", d)
	}
	// Every bucket is empty (no refill: the clock stands still) and stays;
	// a second later they are full and go.
	if l.m.Len() != maxSummaryRules+5 {
		t.Fatalf("%d buckets after the summary, want %d", l.m.Len(), maxSummaryRules+5)
	}
	if got := l.flush(now.Add(time.Second)); len(got) != 0 || l.m.Len() != 0 {
		t.Fatalf("a second later: %d summaries, %d buckets; want none", len(got), l.m.Len())
	}

	// A bound of 2 buckets, 50 flooding containers: 2 evicted buckets wait
	// for the summary, the rest is summed by severity.
	l = newLimiter(1, 1, 0, 2)
	l.counter = func(*alert.Alert) prometheus.Counter { return prometheus.NewCounter(prometheus.CounterOpts{Name: "x"}) }
	for cg := uint64(1); cg <= 50; cg++ {
		drop(cg, 1, "p", 3, 2)
	}
	got = l.flush(now)
	total := uint64(0)
	for _, s := range got {
		total += s.alerts
	}
	last := got[len(got)-1]
	if total != 50 || len(got) != 5 || !last.untracked() || last.data(1, 1) != "droppedAlerts=46 droppedLogs=0 burst=1 ratePerSecond=1 dropped[severity=3]=46" {
		t.Fatalf("%d summaries of %d drops, the last %+v", len(got), total, last)
	}
}
