package tracer

import (
	"io"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/tracer/stream"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// benchEnv is newEnv with output to io.Discard, a stream backlog (one copy
// per message, as in production) and flood control out of the way, so
// that every event takes the whole path.
func benchEnv(b *testing.B) *env {
	cfg := testConfig()
	cfg.RateBurst = 1 << 62
	e := newEnv(b, cfg)
	e.t = New(Options{Config: cfg, State: e.dir, Digests: fakeDigests{e.setID: e.rs.Digest}, Sinks: []io.Writer{io.Discard},
		Metrics: e.m, Hub: stream.NewHub(1000, 1, 1, nil), Now: e.clock.now})
	return e
}

// threadCPU is the CPU time of the calling OS thread. The machines that
// run the benchmarks are shared (load above their core count is common),
// which inflates wall-clock ns/op; a thread's own CPU time is not.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs f b.N times on one locked thread and reports its CPU time per
// operation as cpu-ns/op, next to the wall-clock ns/op.
func loop(b *testing.B, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	start := threadCPU()
	for i := 0; i < b.N; i++ {
		f()
	}
	b.ReportMetric(float64(threadCPU()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkEnforcementEvent: user-space cost of one kernel Block decision,
// from the ring buffer's bytes to the encoded alert: decode, enrich
// (container, set id, rule, process), flood control, JSON encode, stream
// backlog, metrics.
func BenchmarkEnforcementEvent(b *testing.B) {
	e := benchEnv(b)
	rec := events.Encode(e.rawSocketBlock(b))
	loop(b, func() {
		ev, err := events.DecodeEvent(rec)
		if err != nil {
			b.Fatal(err)
		}
		e.t.Enforcement(&ev)
	})
	_ = e.t.out.Flush()
}

// BenchmarkTelemetryMatch: one telemetry open matched in user space (an
// audit-only class) into an "eBPF Monitor" alert.
func BenchmarkTelemetryMatch(b *testing.B) {
	e := benchEnv(b)
	ev := openEv(e.cg, 301, "/etc/shadow", syscall.O_RDONLY)
	loop(b, func() { e.t.Telemetry(&ev) })
}

// BenchmarkTelemetryNoMatch: the common case, an event of a container
// with rules and no visibility of its class: decided Allow, nothing out.
func BenchmarkTelemetryNoMatch(b *testing.B) {
	e := benchEnv(b)
	ev := telemetry.Event{Kind: telemetry.KindSocket, CgroupID: e.cg, PID: 301, TGID: 301, Family: syscall.AF_INET, SockType: syscall.SOCK_STREAM}
	loop(b, func() { e.t.Telemetry(&ev) })
}

// BenchmarkTelemetryMatchResolved: BenchmarkTelemetryMatch for a live
// process (this one, through the real /proc), whose path is resolved in
// its root: an open of /etc//shadow named /etc/shadow.
func BenchmarkTelemetryMatchResolved(b *testing.B) {
	e := benchEnv(b)
	e.t = New(Options{Config: withProcRoot(e.t.cfg, "/proc"), State: e.dir, Digests: fakeDigests{e.setID: e.rs.Digest},
		Sinks: []io.Writer{io.Discard}, Metrics: e.m, Hub: stream.NewHub(1000, 1, 1, nil), Now: e.clock.now})
	ev := openEv(e.cg, uint32(os.Getpid()), "/etc//shadow", syscall.O_RDONLY)
	loop(b, func() { e.t.Telemetry(&ev) })
}

func withProcRoot(cfg Config, root string) Config {
	cfg.ProcRoot = root
	return cfg
}
