package tracer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.yaml.in/yaml/v3"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// TestStream: a following client gets what its filter selects, the
// backlog serves clients that do not follow, and a client that does not
// read loses messages that are counted — the pipeline never waits for it.
func TestStream(t *testing.T) {
	e := newEnv(t, testConfig())
	srv := httptest.NewServer(e.hub)
	defer srv.Close()

	resp, err := http.Get(srv.URL + StreamPath + "?follow=true&type=alert&namespace=shop")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// A stalled client: connected, never reads.
	stalled, err := http.Get(srv.URL + StreamPath + "?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Body.Close()
	testenv.WaitFor(t, "two clients", func() bool { return e.hub.Clients() == 2 })

	ev := e.rawSocketBlock(t)
	e.t.Enforcement(&ev)
	op := openEv(e.cg, 301, "/etc/hosts", 0) // a log: filtered out for the first client
	e.t.Telemetry(&op)
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var a Alert
	if err := json.Unmarshal(line, &a); err != nil || a.Type != TypeMatchedPolicy || a.PodName != "web-1" {
		t.Fatalf("streamed %s (%v)", line, err)
	}

	// Flood the stalled client far past its queue and the socket buffers:
	// Enforcement must return regardless.
	cfg := testConfig()
	cfg.RateBurst = 1 << 30
	e2 := newEnv(t, cfg)
	e2.hub = NewHub(10, 4, 4, func(n int) { e2.m.streamDrops.Add(float64(n)) })
	e2.t.hub = e2.hub
	srv2 := httptest.NewServer(e2.hub)
	defer srv2.Close()
	slow, err := http.Get(srv2.URL + StreamPath + "?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close()
	testenv.WaitFor(t, "slow client", func() bool { return e2.hub.Clients() == 1 })
	start := time.Now()
	ev2 := e2.rawSocketBlock(t)
	for i := 0; i < 20_000; i++ {
		e2.t.Enforcement(&ev2)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("20,000 alerts took %v with a stalled client", d)
	}
	dropped := counterValue(t, e2.m, "nri_armor_tracer_stream_dropped_total", "", "")
	if dropped == 0 {
		t.Fatal("no stream drops counted for a client that never read")
	}
	// Reading now: the client learns how many it lost.
	sc := bufio.NewScanner(slow.Body)
	found := false
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(`"Type":"StreamDropped"`)) {
			found = true
			break
		}
	}
	if !found {
		t.Fatal("no StreamDropped notice in the stream")
	}

	// Without follow: the backlog, filtered.
	r, err := http.Get(srv.URL + StreamPath + "?type=log")
	if err != nil {
		t.Fatal(err)
	}
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(r.Body)
	r.Body.Close()
	if n := bytes.Count(body.Bytes(), []byte("\n")); n != 1 || !bytes.Contains(body.Bytes(), []byte(`"ContainerLog"`)) {
		t.Fatalf("backlog of logs: %s", body.Bytes())
	}
	if r, _ := http.Get(srv.URL + StreamPath + "?type=bogus"); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad type: status %d", r.StatusCode)
	}
}

// allMetrics drives the tracer through every path that creates a series
// and returns the exposition text and the alerts emitted.
func allMetrics(t *testing.T) (string, []Alert, *env) {
	t.Helper()
	cfg := testConfig()
	cfg.RateBurst = 5
	e := newEnv(t, cfg)
	e.m = NewMetrics(true, e.t.ids.Watched, e.hub.Clients, fakeProgs{})
	e.t.m = e.m
	e.m.AddLost("telemetry", 2)
	e.m.decodeErrs.WithLabelValues("enforcement").Inc()
	e.m.streamDrops.Add(0)
	for _, tev := range []telemetry.Event{ // 2 monitor alerts, 1 log
		execEv(e.cg, 300, 1, "/bin/sh"), openEv(e.cg, 300, "/etc/shadow", 0), openEv(e.cg, 300, "/var/log/x", 1),
		openEv(999, 1, "/x", 0), {Kind: telemetry.KindExit, TGID: 300, PID: 300},
	} {
		e.t.Telemetry(&tev)
	}
	ev := e.rawSocketBlock(t)
	for i := 0; i < 5; i++ {
		e.t.Enforcement(&ev) // 3 alerts (the bucket's last tokens), 2 rate-limited
	}
	got := e.alerts(t)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(e.m.Registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String(), got, e
}

type fakeProgs struct{}

func (fakeProgs) ProgramStats() map[string]ebpf.ProgramStats {
	return map[string]ebpf.ProgramStats{"trace_exec": {RunCount: 10, Runtime: 2 * time.Microsecond}}
}

// TestMetrics: promtool accepts the real exposition, and the alert
// counters equal the alerts emitted.
func TestMetrics(t *testing.T) {
	text, got, e := allMetrics(t)
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus; hack/install-deps.sh installs it): %v", err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n%s", err, out, text)
	}
	alerts, logs := 0, 0
	for _, a := range got {
		switch {
		case a.Type == TypeContainerLog:
			logs++
		case a.Operation != OpAlertThreshold:
			alerts++
		}
	}
	if alerts != 5 || logs != 1 { // 3 kernel + 2 monitor alerts; one exec log
		t.Fatalf("%d alerts, %d logs: %+v", alerts, logs, got)
	}
	if v := counterValue(t, e.m, "nri_armor_tracer_alerts_total", "", ""); v != float64(alerts) {
		t.Fatalf("alerts_total %v, %d alerts emitted", v, alerts)
	}
	if v := counterValue(t, e.m, "nri_armor_tracer_logs_total", "", ""); v != float64(logs) {
		t.Fatalf("logs_total %v, %d logs emitted", v, logs)
	}
	if v := counterValue(t, e.m, "nri_armor_tracer_alerts_total", "pod", "web-1"); v != float64(alerts) {
		t.Fatalf("pod label: %v", v)
	}
	for _, want := range []string{
		`nri_armor_tracer_alerts_total{action="Block",container="nginx",namespace="shop",operation="Network",pod="web-1",policy="shop-guard",severity="7"} 3`,
		`nri_armor_tracer_rate_limited_total{kind="alert",namespace="shop"} 2`,
		`nri_armor_tracer_events_total{source="enforcement",type="network"} 5`,
		`nri_armor_tracer_events_lost_total{source="telemetry"} 2`,
		`nri_armor_tracer_bpf_program_runs_total{program="trace_exec"} 10`,
		`nri_armor_tracer_containers_watched 1`,
		`nri_armor_tracer_build_info{`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s in\n%s", want, text)
		}
	}
}

// TestDashboard: the shipped Grafana dashboard parses and queries only
// metrics that the tracer exports.
func TestDashboard(t *testing.T) {
	text, _, _ := allMetrics(t)
	b, err := readRepoFile(t, "config/armor-tracer-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("config/armor-tracer-dashboard.json: %v", err)
	}
	exprs := []string{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if s, ok := v.Query.(string); ok {
			exprs = append(exprs, s)
		}
	}
	name := regexp.MustCompile(`nri_armor_[a-z_]+`)
	n := 0
	for _, e := range exprs {
		for _, m := range name.FindAllString(e, -1) {
			n++
			if !regexp.MustCompile(`(?m)^` + m + `[{ ]`).MatchString(text) {
				t.Errorf("dashboard queries %s, which the tracer does not export", m)
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d metric references in the dashboard", n)
	}
}

// TestConfig: the shipped file is the defaults, unknown keys and bad
// values are errors naming the file and the key, flags override.
func TestConfig(t *testing.T) {
	path := filepath.Join(testenv.RepoRoot(t), "config", "armor-tracer.yaml")
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, DefaultConfig()) {
		t.Fatalf("config/armor-tracer.yaml differs from DefaultConfig():\n%+v\n%+v", c, DefaultConfig())
	}
	dir := t.TempDir()
	for content, want := range map[string]string{
		"rateBurst: 5\nratebursts: 6\n": "field ratebursts not found",
		"format: xml\n":                 "format must be kubearmor or falco",
		"ratePerSecond: 0\n":            "ratePerSecond must be above 0",
		"thresholdWindow: soon\n":       "line 1: cannot unmarshal",
	} {
		p := testenv.WriteFile(t, dir, "c.yaml", content)
		_, err := LoadConfig(p)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%q: error %v, want one naming %s and %q", content, err, p, want)
		}
	}
	c = DefaultConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.BindFlags(fs)
	if err := fs.Parse([]string{"-rateBurst", "7", "-format", "falco", "-metricsPodLabel"}); err != nil {
		t.Fatal(err)
	}
	if c.RateBurst != 7 || c.Format != "falco" || !c.MetricsPodLabel {
		t.Fatalf("flags not applied: %+v", c)
	}
	// Every key is a flag.
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if keys := reflect.TypeOf(c).NumField(); n != keys {
		t.Fatalf("%d flags for %d config keys", n, keys)
	}
}

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
	e := newEnv(t, testConfig())
	cfg := testConfig()
	cfg.StateDir, cfg.BPFFS = e.dir.Root(), filepath.Join(t.TempDir(), "no-pins")
	cfg.RetryInterval = 20 * time.Millisecond
	tel := &fakeTelemetry{ch: make(chan telemetry.Event, 4)}
	tel.lost.Store(3)
	base := serve(t, cfg, tel)
	resp, err := http.Get(base + StreamPath + "?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	testenv.WaitFor(t, "stream client", func() bool {
		return strings.Contains(get(t, base+"/metrics"), "nri_armor_tracer_stream_clients 1")
	})
	tel.ch <- openEv(e.cg, 5, "/etc/shadow", 0)
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var a Alert
	if err := json.Unmarshal(line, &a); err != nil || a.Enforcer != EnforcerMonitor || a.Action != "Block" || a.PodName != "web-1" {
		t.Fatalf("streamed %s (%v)", line, err)
	}
	if m := get(t, base+"/metrics"); !strings.Contains(m, `nri_armor_tracer_events_lost_total{source="telemetry"} 3`) {
		t.Fatalf("no telemetry losses in\n%s", m)
	}
}

// TestDaemonSetConfig: the armor-tracer.yaml that config/daemonset.yaml
// ships loads (strictly), and agrees with nri-armor's on where the state
// and the pins are.
func TestDaemonSetConfig(t *testing.T) {
	b, err := readRepoFile(t, "config/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var tracerYAML, daemonYAML string
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if doc.Kind == "ConfigMap" && doc.Data["armor-tracer.yaml"] != "" {
			tracerYAML, daemonYAML = doc.Data["armor-tracer.yaml"], doc.Data["nri-armor.yaml"]
		}
	}
	if tracerYAML == "" {
		t.Fatal("no armor-tracer.yaml in a ConfigMap of config/daemonset.yaml")
	}
	c, err := LoadConfig(testenv.WriteFile(t, t.TempDir(), "armor-tracer.yaml", tracerYAML))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		StateDir string `yaml:"stateDir"`
		BPFFS    string `yaml:"bpffs"`
	}
	if err := yaml.Unmarshal([]byte(daemonYAML), &d); err != nil {
		t.Fatal(err)
	}
	if c.StateDir != d.StateDir || c.BPFFS != d.BPFFS {
		t.Fatalf("tracer reads %s and %s, nri-armor writes %s and %s", c.StateDir, c.BPFFS, d.StateDir, d.BPFFS)
	}
}
