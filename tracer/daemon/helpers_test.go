package daemon

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
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

// served is a running Serve: the base URLs of its metrics and of its
// stream.
type served struct{ metrics, stream string }

// serve runs Serve with cfg (metrics and stream on free loopback ports;
// the stream on its unix socket when cfg says unix:PATH, stream then "";
// no stdout) until the test ends, checks that it is not ready before any
// pins are read, and returns its base URLs.
func serve(t *testing.T, cfg Config, tel TelemetrySource) served {
	t.Helper()
	cfg.MetricsAddress, cfg.Stdout = testenv.FreeAddr(t), false
	s := served{metrics: "http://" + cfg.MetricsAddress}
	if !strings.HasPrefix(cfg.StreamAddress, "unix:") {
		cfg.StreamAddress = testenv.FreeAddr(t)
		s.stream = "http://" + cfg.StreamAddress
	}
	runServe(t, cfg, tel)
	// Both listeners: Serve opens them one after the other.
	network, addr := "tcp", cfg.StreamAddress
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", path
	}
	testenv.WaitFor(t, "the server", func() bool {
		if _, err := http.Get(s.metrics + "/readyz"); err != nil {
			return false
		}
		c, err := net.Dial(network, addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if r, _ := http.Get(s.metrics + "/readyz"); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before nri-armor's ring buffer is read: %d", r.StatusCode)
	}
	return s
}

// runServe runs Serve with cfg until the test ends, failing it if Serve
// does.
func runServe(t *testing.T, cfg Config, tel TelemetrySource) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, cfg, logrus.New(), tel) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
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

// getRequest is GET url with the Authorization header auth ("": none).
func getRequest(t *testing.T, url, auth string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return req
}
