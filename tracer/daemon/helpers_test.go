package daemon

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/nri-armor/nri-armor/internal/testenv"
)

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.NodeName = "node-1"
	cfg.ClusterName = "test"
	cfg.ProcRoot = "/nonexistent-proc" // unit tests: only the events name processes
	return cfg
}

// serve runs Serve with cfg (on a free loopback address, no stdout) until
// the test ends, checks that it is not ready before any pins are read, and
// returns its base URL.
func serve(t *testing.T, cfg Config, tel TelemetrySource) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MetricsAddress = ln.Addr().String()
	cfg.StreamAddress, cfg.Stdout = cfg.MetricsAddress, false
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, cfg, logrus.New(), tel) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	base := "http://" + cfg.MetricsAddress
	testenv.WaitFor(t, "the server", func() bool { _, err := http.Get(base + "/readyz"); return err == nil })
	if r, _ := http.Get(base + "/readyz"); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before nri-armor's ring buffer is read: %d", r.StatusCode)
	}
	return base
}

// get returns the body of url.
func get(t *testing.T, url string) string {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}
