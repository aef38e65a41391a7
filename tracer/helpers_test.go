package tracer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/internal/tracertest"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer/alert"
	"github.com/nri-armor/nri-armor/tracer/stream"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// clock is a frozen, settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeDigests is a kernel's set names (only for unit tests; the host test
// uses the real pins).
type fakeDigests map[uint32]string

func (f fakeDigests) SetDigest(id uint32) string { return f[id] }

type env struct {
	t      *Tracer
	dir    *state.Dir
	out    *bytes.Buffer
	m      *Metrics
	hub    *stream.Hub
	clock  *clock
	rs     *policy.RuleSet
	cg     uint64
	setID  uint32
	lineNo int
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.NodeName = "node-1"
	cfg.ClusterName = "test"
	cfg.ProcRoot = "/nonexistent-proc" // unit tests: only the events name processes
	return cfg
}

// newEnv publishes one container (cgroup 4242, pod shop/web-1, container
// nginx) with tracertest.ShopPolicy, network enforced by CgroupBPF, the rest
// audit-only (tracertest.ShopState).
func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	dir, rs := tracertest.ShopState(t)
	return envOf(cfg, dir, rs, tracertest.ShopCgroup)
}

// envOf is a tracer over the state dir, whose container of interest is
// cgroup cg with rule set rs (kernel set id 5), writing to a buffer, with
// a frozen clock.
func envOf(cfg Config, dir *state.Dir, rs *policy.RuleSet, cg uint64) *env {
	e := &env{dir: dir, out: &bytes.Buffer{}, clock: &clock{t: time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)}, rs: rs, cg: cg, setID: 5}
	e.hub = stream.NewHub(100, 100, 4, nil)
	e.m = NewMetrics(false, func() int { return e.t.ids.Watched() }, e.hub.Clients)
	e.t = New(Options{Config: cfg, State: dir, Digests: fakeDigests{e.setID: rs.Digest}, Sinks: []io.Writer{e.out}, Metrics: e.m, Hub: e.hub, Now: e.clock.now})
	return e
}

// alerts flushes the tracer and returns the lines written since the last call.
func (e *env) alerts(t testing.TB) []alert.Alert {
	t.Helper()
	e.t.Flush()
	var out []alert.Alert
	sc := bufio.NewScanner(bytes.NewReader(e.out.Bytes()))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if n <= e.lineNo {
			continue
		}
		var a alert.Alert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("line %d: %v: %s", n, err, sc.Bytes())
		}
		out = append(out, a)
	}
	e.lineNo = n
	return out
}

func (e *env) ruleID(t testing.TB, class policy.Class, value string) int {
	t.Helper()
	return ruleIn(t, e.rs, class, value)
}

// ruleIn is the id of rs's rule of class on value.
func ruleIn(t testing.TB, rs *policy.RuleSet, class policy.Class, value string) int {
	t.Helper()
	for _, r := range rs.Class(class).Rules {
		if r.Match.Value == value {
			return r.ID
		}
	}
	t.Fatalf("no %s rule %s", class, value)
	return 0
}

// rawSocketBlock is the kernel's record of a denied raw socket in e's container.
func (e *env) rawSocketBlock(t testing.TB) events.Event {
	return events.Event{CgroupID: e.cg, BootNs: 1e9, PID: 301, TGID: 301, UID: 0, RuleID: uint32(e.ruleID(t, policy.ClassNetwork, "raw")),
		SetID: e.setID, Retval: -int32(syscall.EPERM), Class: policy.ClassNetwork, Action: policy.Block, Comm: "ping",
		Family: syscall.AF_INET, SockType: syscall.SOCK_RAW, Protocol: syscall.IPPROTO_ICMP}
}

func execEv(cg uint64, tgid, ppid uint32, path string) telemetry.Event {
	return telemetry.Event{Kind: telemetry.KindExec, CgroupID: cg, PID: tgid, TGID: tgid, PPID: ppid, Comm: path[strings.LastIndexByte(path, '/')+1:], Path: path}
}

func openEv(cg uint64, tgid uint32, path string, flags uint32) telemetry.Event {
	return telemetry.Event{Kind: telemetry.KindOpen, CgroupID: cg, PID: tgid, TGID: tgid, Path: path, Flags: flags, Ret: 3}
}

func contextWithCancel(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// counterValue sums the samples of metric name whose label key is val
// ("" key: all samples).
func counterValue(t testing.TB, m *Metrics, name, key, val string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			ok := key == ""
			for _, l := range s.GetLabel() {
				if l.GetName() == key && l.GetValue() == val {
					ok = true
				}
			}
			if !ok {
				continue
			}
			switch {
			case s.Counter != nil:
				sum += s.Counter.GetValue()
			case s.Gauge != nil:
				sum += s.Gauge.GetValue()
			}
		}
	}
	return sum
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func readRepoFile(t testing.TB, rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(testenv.RepoRoot(t), rel))
}
