package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

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
	srv := serve(t, cfg, tel)
	resp, err := http.Get(srv.stream + alert.StreamPath + "?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	testenv.WaitFor(t, "stream client", func() bool {
		return strings.Contains(get(t, srv.metrics+"/metrics"), "nri_armor_tracer_stream_clients 1")
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
	if m := get(t, srv.metrics+"/metrics"); !strings.Contains(m, `nri_armor_tracer_events_lost_total{source="telemetry"} 3`) {
		t.Fatalf("no telemetry losses in\n%s", m)
	}
}

// TestServeListeners: the stream and the metrics are on listeners of their
// own; neither serves the other's paths, so a metrics address open to
// Prometheus never carries an alert.
func TestServeListeners(t *testing.T) {
	dir, _ := tracertest.ShopState(t)
	cfg := testConfig()
	cfg.StateDir, cfg.BPFFS = dir.Root(), filepath.Join(t.TempDir(), "no-pins")
	srv := serve(t, cfg, nil)
	if srv.metrics == srv.stream {
		t.Fatalf("one listener for both: %s", srv.metrics)
	}
	for _, c := range []struct {
		url  string
		want int
	}{
		{srv.metrics + alert.StreamPath, http.StatusNotFound},
		{srv.metrics + "/metrics", http.StatusOK},
		{srv.stream + "/metrics", http.StatusNotFound},
		{srv.stream + "/readyz", http.StatusNotFound},
		{srv.stream + alert.StreamPath, http.StatusOK},
	} {
		if code := status(t, c.url, ""); code != c.want {
			t.Errorf("GET %s: %d, want %d", c.url, code, c.want)
		}
	}
}

// TestStreamToken: with streamTokenFile, a stream request without the
// token, with another, or in another scheme gets 401; with it, 200. The
// file is re-read at each request: a rotated token takes effect at once,
// and a file gone refuses everyone. A token file missing at start stops
// Serve.
func TestStreamToken(t *testing.T) {
	dir, _ := tracertest.ShopState(t)
	cfg := testConfig()
	cfg.StateDir, cfg.BPFFS = dir.Root(), filepath.Join(t.TempDir(), "no-pins")
	cfg.StreamTokenFile = testenv.WriteFile(t, t.TempDir(), "token", "s3cret-1\n")
	srv := serve(t, cfg, nil)
	logs := srv.stream + alert.StreamPath
	for auth, want := range map[string]int{
		"":                  http.StatusUnauthorized,
		"Bearer":            http.StatusUnauthorized,
		"Bearer ":           http.StatusUnauthorized,
		"Bearer s3cret":     http.StatusUnauthorized,
		"Bearer s3cret-10":  http.StatusUnauthorized,
		"Basic s3cret-1":    http.StatusUnauthorized,
		"Bearer s3cret-1":   http.StatusOK,
		"bearer  s3cret-1 ": http.StatusOK, // the scheme is case-insensitive
	} {
		if code := status(t, logs, auth); code != want {
			t.Errorf("Authorization %q: %d, want %d", auth, code, want)
		}
	}
	r, err := http.Get(logs)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
		t.Errorf("401 without WWW-Authenticate: Bearer (%q)", h)
	}
	testenv.WriteFile(t, filepath.Dir(cfg.StreamTokenFile), "token", "s3cret-2")
	if a, b := status(t, logs, "Bearer s3cret-1"), status(t, logs, "Bearer s3cret-2"); a != http.StatusUnauthorized || b != http.StatusOK {
		t.Errorf("after rotation: old token %d, new token %d; want 401 and 200", a, b)
	}
	if err := os.Remove(cfg.StreamTokenFile); err != nil {
		t.Fatal(err)
	}
	if code := status(t, logs, "Bearer s3cret-2"); code != http.StatusServiceUnavailable {
		t.Errorf("token file gone: %d, want 503", code)
	}
	if status(t, srv.metrics+"/metrics", "") != http.StatusOK {
		t.Error("the token guards the metrics too: only the stream was meant")
	}

	cfg.MetricsAddress, cfg.StreamAddress = "", testenv.FreeAddr(t)
	if err := Serve(context.Background(), cfg, logrus.New(), nil); err == nil || !strings.Contains(err.Error(), "streamTokenFile") {
		t.Fatalf("Serve with its token file missing: %v, want an error naming streamTokenFile", err)
	}
}

// TestStreamUnixSocket: streamAddress unix:PATH serves the stream on a
// socket only its owner may use (0600), replacing a stale one; peers are
// told apart by uid there (streamMaxClientsPerPeer: this test is one uid),
// and the socket is removed when the tracer stops. One that another server
// answers on is left alone.
func TestStreamUnixSocket(t *testing.T) {
	dir, _ := tracertest.ShopState(t)
	cfg := testConfig()
	cfg.StateDir, cfg.BPFFS = dir.Root(), filepath.Join(t.TempDir(), "no-pins")
	cfg.MetricsAddress, cfg.Stdout = "", false
	sock := filepath.Join(t.TempDir(), "stream.sock")
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close() // a socket file nobody answers on: an earlier run's
	cfg.StreamAddress, cfg.StreamMaxClientsPerPeer = "unix:"+sock, 1
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, cfg, logrus.New(), nil) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("the socket is left behind: %v", err)
		}
	}()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	var follower *http.Response
	testenv.WaitFor(t, "the stream's socket", func() bool {
		follower, err = client.Get("http://armor-tracer" + alert.StreamPath + "?follow=true")
		return err == nil
	})
	defer follower.Body.Close()
	if follower.StatusCode != http.StatusOK {
		t.Fatalf("first follower: %s", follower.Status)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v (%v), want 0600", fi.Mode(), err)
	}
	r, err := client.Get("http://armor-tracer" + alert.StreamPath + "?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second follower of the same uid: %s, want 429", r.Status)
	}
	if err := Serve(context.Background(), cfg, logrus.New(), nil); err == nil || !strings.Contains(err.Error(), "another server answers") {
		t.Fatalf("a second tracer on the same socket: %v", err)
	}
}

// status is the status of GET url with the Authorization header auth
// ("": none).
func status(t *testing.T, url, auth string) int {
	t.Helper()
	r, err := http.DefaultClient.Do(getRequest(t, url, auth))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode
}
