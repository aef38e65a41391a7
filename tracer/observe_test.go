package tracer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/tracer/alert"
	"github.com/nri-armor/nri-armor/tracer/stream"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// TestStream: a following client gets what its filter selects, the
// backlog serves clients that do not follow, and a client that does not
// read loses messages that are counted — the pipeline never waits for it.
func TestStream(t *testing.T) {
	e := newEnv(t, testConfig())
	srv := httptest.NewServer(e.hub)
	defer srv.Close()

	resp, err := http.Get(srv.URL + alert.StreamPath + "?follow=true&type=alert&namespace=shop")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// A stalled client: connected, never reads.
	stalled, err := http.Get(srv.URL + alert.StreamPath + "?follow=true")
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
	var a alert.Alert
	if err := json.Unmarshal(line, &a); err != nil || a.Type != alert.TypeMatchedPolicy || a.PodName != "web-1" {
		t.Fatalf("streamed %s (%v)", line, err)
	}

	// Flood the stalled client far past its queue and the socket buffers:
	// Enforcement must return regardless.
	cfg := testConfig()
	cfg.RateBurst = 1 << 30
	e2 := newEnv(t, cfg)
	e2.hub = stream.NewHub(10, 4, 4, e2.m.AddStreamDrops)
	e2.t.hub = e2.hub
	srv2 := httptest.NewServer(e2.hub)
	defer srv2.Close()
	slow, err := http.Get(srv2.URL + alert.StreamPath + "?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close()
	testenv.WaitFor(t, "slow client", func() bool { return e2.hub.Clients() == 1 })
	// Blocking on the client would block for good: the bound only catches
	// that (it is no speed test; -race on a loaded machine is slow).
	done := make(chan struct{})
	go func() {
		ev2 := e2.rawSocketBlock(t)
		for i := 0; i < 20_000; i++ {
			e2.t.Enforcement(&ev2)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("20,000 alerts did not go through with a stalled client: the pipeline waits for it")
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
	r, err := http.Get(srv.URL + alert.StreamPath + "?type=log")
	if err != nil {
		t.Fatal(err)
	}
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(r.Body)
	r.Body.Close()
	if n := bytes.Count(body.Bytes(), []byte("\n")); n != 1 || !bytes.Contains(body.Bytes(), []byte(`"ContainerLog"`)) {
		t.Fatalf("backlog of logs: %s", body.Bytes())
	}
	if r, _ := http.Get(srv.URL + alert.StreamPath + "?type=bogus"); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad type: status %d", r.StatusCode)
	}
}

// allMetrics drives the tracer through every path that creates a series
// and returns the exposition text and the alerts emitted.
func allMetrics(t *testing.T) (string, []alert.Alert, *env) {
	t.Helper()
	cfg := testConfig()
	cfg.RateBurst = 1
	cfg.RateExemptSeverity = 0 // the /var/log/ Audit rule (severity 7) is rate-limited
	e := newEnv(t, cfg)
	e.m = NewMetrics(true, e.t.ids.Watched, e.hub.Clients, fakeProgs{})
	e.t.m = e.m
	e.m.AddLost("telemetry", 2)
	e.m.decodeErrs.WithLabelValues("enforcement").Inc()
	e.m.streamDrops.Add(0)
	for _, tev := range []telemetry.Event{ // 2 monitor alerts (and 2 rate-limited), 1 log
		execEv(e.cg, 300, 1, "/bin/sh"), openEv(e.cg, 300, "/etc/shadow", 0),
		openEv(e.cg, 300, "/var/log/x", 1), openEv(e.cg, 300, "/var/log/x", 1), openEv(e.cg, 300, "/var/log/x", 1),
		openEv(999, 1, "/x", 0), {Kind: telemetry.KindExit, TGID: 300, PID: 300},
	} {
		e.t.Telemetry(&tev)
	}
	ev := e.rawSocketBlock(t)
	for i := 0; i < 5; i++ {
		e.t.Enforcement(&ev) // Block: never rate-limited
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
		case a.Type == alert.TypeContainerLog:
			logs++
		case a.Operation != alert.OpAlertThreshold:
			alerts++
		}
	}
	if alerts != 7 || logs != 1 { // 5 kernel + 2 monitor alerts; one exec log
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
		`nri_armor_tracer_alerts_total{action="Block",container="nginx",namespace="shop",operation="Network",pod="web-1",policy="shop-guard",severity="7"} 5`,
		`nri_armor_tracer_rate_limited_total{kind="alert",namespace="shop",policy="shop-guard",severity="7"} 2`,
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
