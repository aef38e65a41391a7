package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/internal/tracertest"
	"github.com/nri-armor/nri-armor/tracer/alert"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// The addresses of the veth pair between the test's two network
// namespaces: link-local, and only ever inside those namespaces.
const (
	podIP   = "169.254.83.1"
	otherIP = "169.254.83.2"
)

// TestStreamFromAnotherNetns (root): armor-tracer in a network namespace
// of its own, as in its pod, and another namespace joined to it by a veth
// pair, as another pod on the network. With the default addresses the other
// pod reaches the metrics on the pod IP (as Prometheus does) but not the
// alert stream: not on the pod IP, not on the metrics port, not on its own
// loopback; the pod's own loopback (where kubectl port-forward connects)
// has it. Configured beyond loopback with a token, the stream answers the
// other pod 401 without the token or with another, and streams with it.
func TestStreamFromAnotherNetns(t *testing.T) {
	testenv.RequireRoot(t)
	pod, other := netnsPair(t)
	dir, _ := tracertest.ShopState(t)
	shadow := telemetry.Event{Kind: telemetry.KindOpen, CgroupID: tracertest.ShopCgroup, PID: 5, TGID: 5, Path: "/etc/shadow", Ret: 3}

	cfg := testConfig() // the default addresses: metrics :9482, stream 127.0.0.1:9483
	cfg.StateDir, cfg.BPFFS, cfg.Stdout = dir.Root(), filepath.Join(t.TempDir(), "no-pins"), false
	serveIn(t, pod, cfg, shadow)
	metrics := "http://" + podIP + ":9482"
	waitIn(t, other, "the metrics on the pod IP", metrics+"/metrics", "", http.StatusOK, "nri_armor_tracer_")
	waitIn(t, pod, "the alert on the pod's loopback", "http://127.0.0.1:9483"+alert.StreamPath, "", http.StatusOK, "/etc/shadow")
	if code, body, err := getIn(t, other, metrics+alert.StreamPath, ""); err != nil || code != http.StatusNotFound {
		t.Errorf("the stream's path on the metrics listener, from another pod: %d %q (%v), want 404", code, body, err)
	}
	for _, addr := range []string{podIP + ":9483", "127.0.0.1:9483"} {
		if _, _, err := getIn(t, other, "http://"+addr+alert.StreamPath, ""); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("the stream at %s from another pod: %v, want connection refused", addr, err)
		}
	}

	// Beyond loopback, behind a token.
	cfg.MetricsAddress, cfg.StreamAddress = "", ":9484"
	cfg.StreamTokenFile = testenv.WriteFile(t, t.TempDir(), "token", "pod-secret\n")
	serveIn(t, pod, cfg, shadow)
	logs := "http://" + podIP + ":9484" + alert.StreamPath
	waitIn(t, other, "the stream with its token", logs, "Bearer pod-secret", http.StatusOK, "/etc/shadow")
	for _, auth := range []string{"", "Bearer pod-secret2", "Bearer pod-secre", "Basic pod-secret"} {
		if code, body, err := getIn(t, other, logs, auth); err != nil || code != http.StatusUnauthorized || strings.Contains(body, "shadow") {
			t.Errorf("Authorization %q from another pod: %d %q (%v), want 401", auth, code, body, err)
		}
	}
}

// netnsPair creates two network namespaces, each with its loopback up,
// joined by a veth pair (podIP in pod, otherIP in other), and deletes them
// when the test ends; the veth pair goes with them. Nothing is added to
// the test's own namespace.
func netnsPair(t *testing.T) (pod, other string) {
	t.Helper()
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	prefix := fmt.Sprintf("nri-armor-test-%d-", os.Getpid())
	pod, other = prefix+"pod", prefix+"other"
	for _, ns := range []string{pod, other} {
		_ = exec.Command("ip", "netns", "delete", ns).Run() // left by a killed run of the same pid
		ip("netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns delete %s: %v\n%s", ns, err, out)
			}
		})
		ip("-n", ns, "link", "set", "lo", "up")
	}
	ip("-n", pod, "link", "add", "vpod", "type", "veth", "peer", "name", "vother", "netns", other)
	for ns, dev := range map[string]string{pod: "vpod", other: "vother"} {
		addr := map[string]string{pod: podIP, other: otherIP}[ns]
		ip("-n", ns, "addr", "add", addr+"/30", "dev", dev)
		ip("-n", ns, "link", "set", dev, "up")
	}
	return pod, other
}

// inNetns runs fn on a thread that has joined the network namespace ns:
// the sockets fn creates are that namespace's. The thread is never handed
// back (no UnlockOSThread): it ends with the goroutine.
func inNetns(ns string, fn func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		fn()
		errc <- nil
	}()
	return <-errc
}

// serveIn runs Serve in the network namespace ns until the test ends: it
// listens there. The telemetry source gives it ev, so that its stream has
// an alert to show.
func serveIn(t *testing.T, ns string, cfg Config, ev telemetry.Event) {
	t.Helper()
	tel := &fakeTelemetry{ch: make(chan telemetry.Event, 1)}
	tel.ch <- ev
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		if err := inNetns(ns, func() { served <- Serve(ctx, cfg, logrus.New(), tel) }); err != nil {
			served <- err
		}
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve in %s: %v", ns, err)
		}
	})
}

// getIn sends GET url, with the Authorization header auth ("": none), from
// the network namespace ns, and returns the status and the body.
func getIn(t *testing.T, ns, url, auth string) (code int, body string, err error) {
	t.Helper()
	req := getRequest(t, url, auth)
	req.Close = true
	if nerr := inNetns(ns, func() {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", req.URL.Host, 5*time.Second); err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if err = req.Write(c); err != nil {
			return
		}
		var resp *http.Response
		if resp, err = http.ReadResponse(bufio.NewReader(c), req); err != nil {
			return
		}
		defer resp.Body.Close()
		b, rerr := io.ReadAll(resp.Body)
		code, body, err = resp.StatusCode, string(b), rerr
	}); nerr != nil {
		t.Fatal(nerr)
	}
	return code, body, err
}

// waitIn waits until GET url from ns answers want with a body holding has.
func waitIn(t *testing.T, ns, what, url, auth string, want int, has string) {
	t.Helper()
	var code int
	var body string
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, body, err = getIn(t, ns, url, auth); err == nil && code == want && strings.Contains(body, has) {
			return
		}
	}
	t.Fatalf("%s: GET %s from %s: %d %q (%v), want %d with %q", what, url, ns, code, body, err, want, has)
}
