package telemetry

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/nri-armor/nri-armor/internal/testenv"
)

func init() {
	childOps["openloop"] = openLoop
}

// openLoop opens and closes T_FILE (or, with T_OP=getppid, calls
// getppid(2), a syscall the telemetry does not report) on CPU T_CPU, T_N times or for
// T_SECONDS, at most T_RATE times a second (0: as fast as it can), and
// prints how many it did, the ns each took on average, and the ns each
// took in the fastest chunk of 10,000 (the machine's other work only ever
// adds time, so the fastest chunk is the steadiest measure).
func openLoop() error {
	cpu, _ := strconv.Atoi(os.Getenv("T_CPU"))
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return err
	}
	n, _ := strconv.Atoi(os.Getenv("T_N"))
	secs, _ := strconv.ParseFloat(os.Getenv("T_SECONDS"), 64)
	rate, _ := strconv.ParseFloat(os.Getenv("T_RATE"), 64)
	path, err := unix.BytePtrFromString(os.Getenv("T_FILE"))
	if err != nil {
		return err
	}
	cwd := unix.AT_FDCWD
	getppid := os.Getenv("T_OP") == "getppid"
	open := func() error {
		// Raw syscalls: the loop should cost what the kernel does.
		if getppid {
			unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
			return nil
		}
		fd, _, en := unix.Syscall6(unix.SYS_OPENAT, uintptr(cwd), uintptr(unsafe.Pointer(path)), unix.O_RDONLY, 0, 0, 0)
		if en != 0 {
			return en
		}
		unix.Syscall(unix.SYS_CLOSE, fd, 0, 0)
		return nil
	}
	start := time.Now()
	done := 0
	const chunk = 10000
	best, chunkStart := time.Duration(1<<62), start
	for n == 0 || done < n {
		if done > 0 && done%chunk == 0 && rate == 0 {
			now := time.Now()
			best = min(best, now.Sub(chunkStart))
			chunkStart = now
		}
		// Check the clock every 64 opens: often enough to pace, rarely
		// enough not to weigh.
		if done%64 == 0 && (secs > 0 || rate > 0) {
			el := time.Since(start).Seconds()
			if secs > 0 && el >= secs {
				break
			}
			if rate > 0 && float64(done) > el*rate {
				time.Sleep(200 * time.Microsecond)
				continue
			}
		}
		if err := open(); err != nil {
			return err
		}
		done++
	}
	if done%chunk == 0 && rate == 0 {
		best = min(best, time.Since(chunkStart))
	}
	fmt.Println(done, float64(time.Since(start).Nanoseconds())/float64(done), float64(best.Nanoseconds())/chunk)
	return nil
}

// runLoop runs openLoop in cg and returns the opens done, the average ns
// per open and that of the fastest chunk.
func runLoop(tb testing.TB, cg *testenv.Cgroup, env ...string) (n int, ns, best float64) {
	tb.Helper()
	cmd := child(tb, cg, "openloop", env...)
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("open loop: %v", err)
	}
	if _, err := fmt.Sscan(string(out), &n, &ns, &best); err != nil {
		tb.Fatalf("open loop said %q: %v", out, err)
	}
	return n, ns, best
}

// drain reads events on CPU 1 until stop is closed, counting those of cg.
func drain(tl *Telemetry, cg uint64, got *atomic.Int64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(1)
		_ = unix.SchedSetaffinity(0, &set)
		for {
			ev, err := tl.Read(ctx)
			if err != nil {
				return
			}
			if ev.CgroupID == cg {
				got.Add(1)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// BenchmarkReaderThroughput: an open+close loop in a watched cgroup on CPU
// 0 for 10 s, the reader on CPU 1, a 4 MiB ring (NRI_ARMOR_BENCH_RING_MIB). First at full speed; if events are lost,
// again paced at 80% of the rate the reader kept up with (up to four
// times) until it loses none. Prints events/s received and lost.
func BenchmarkReaderThroughput(b *testing.B) {
	testenv.RequireRoot(b)
	secs := envFloat("NRI_ARMOR_BENCH_SECONDS", 10)
	ringMiB := int(envFloat("NRI_ARMOR_BENCH_RING_MIB", 4))
	tl, err := Open(Config{RingBytes: ringMiB << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer tl.Close()
	cg := testenv.NewCgroup(b)
	if err := tl.Watch(cg.ID, VisFile); err != nil {
		b.Fatal(err)
	}
	file := testenv.WriteFile(b, b.TempDir(), "f", "x")
	run := func(rate float64) (float64, float64, uint64) {
		var got atomic.Int64
		lost0 := tl.Lost()
		stop := drain(tl, cg.ID, &got)
		start := time.Now()
		n, _, _ := runLoop(b, cg, "T_CPU=0", "T_FILE="+file, fmt.Sprint("T_SECONDS=", secs), fmt.Sprint("T_RATE=", rate))
		el := time.Since(start).Seconds()
		// Let the reader finish what is in the ring.
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if uint64(got.Load())+tl.Lost()-lost0 >= uint64(n) {
				break
			}
		}
		stop()
		lost := tl.Lost() - lost0
		fmt.Printf("  %-28s opens %9d (%8.0f/s)  received %9d (%8.0f/s)  lost %d\n",
			map[bool]string{true: "full speed", false: fmt.Sprintf("paced at %.0f/s", rate)}[rate == 0],
			n, float64(n)/el, got.Load(), float64(got.Load())/el, lost)
		return float64(n) / el, float64(got.Load()) / el, lost
	}
	fmt.Printf("\nreader throughput: open+close loop on CPU 0 in a watched cgroup, reader on CPU 1, %.0f s, %d MiB ring\n", secs, ringMiB)
	_, recv, lost := run(0)
	// Losses: pace the loop below what the reader kept up with, a few
	// times at most (each run takes the full time).
	rate := recv
	for i := 0; lost > 0 && i < 4; i++ {
		rate *= 0.8
		_, recv, lost = run(rate)
	}
	b.ReportMetric(recv, "events/s")
	b.ReportMetric(float64(lost), "lost")
}

// BenchmarkOverhead: interleaved A/B rounds of an open+close loop on CPU 0,
// the median ratio to A over the rounds:
//
//	A  no programs attached;
//	B  the telemetry attached, the process's cgroup watched for everything,
//	   the reader draining on CPU 1;
//	C  attached, the process in an unwatched cgroup, 1,000 other cgroups
//	   watched;
//	E  attached, no cgroup watched at all: C's floor, what the programs cost
//	   before the cgroup lookup can say no;
//	F  empty programs on raw_syscalls' sys_enter and sys_exit raw
//	   tracepoints (an alternative measured and not taken: they run for
//	   every syscall);
//	G  empty programs on syscalls/sys_enter_openat and sys_exit_openat (the
//	   pair the telemetry used before: syscalls/ tracepoints format their
//	   record into a perf buffer before the program runs);
//	H  an empty program on syscalls/sys_enter_getppid, a syscall the loop
//	   never makes: a syscall tracepoint anywhere sends every task's
//	   syscalls through the kernel's slow path;
//	I  an empty program on syscalls/sys_exit_openat alone: the floor of
//	   what the telemetry attaches now (each syscall at its exit only).
//
// Then the kernel's statistics (run time ÷ run count) for B and C. Each
// figure is a loop's fastest chunk (see openLoop): the two cores are shared
// with other work, which makes averages swing widely (docs/benchmarks.md).
func BenchmarkOverhead(b *testing.B) {
	testenv.RequireRoot(b)
	rounds := int(envFloat("NRI_ARMOR_BENCH_ROUNDS", 7))
	opens := int(envFloat("NRI_ARMOR_BENCH_OPENS", 200000))
	watched, unwatched := testenv.NewCgroup(b), testenv.NewCgroup(b)
	file := testenv.WriteFile(b, b.TempDir(), "f", "x")
	env := []string{"T_CPU=0", "T_FILE=" + file, fmt.Sprint("T_N=", opens)}
	open := func(watch bool) *Telemetry {
		tl, err := Open(Config{})
		if err != nil {
			b.Fatal(err)
		}
		if !watch {
			return tl
		}
		for i := uint64(1); i <= 1000; i++ {
			if err := tl.Watch(1<<40+i, VisAll); err != nil {
				b.Fatal(err)
			}
		}
		if err := tl.Watch(watched.ID, VisAll); err != nil {
			b.Fatal(err)
		}
		return tl
	}
	measure := func(tl *Telemetry, cg *testenv.Cgroup) float64 {
		var got atomic.Int64
		stop := drain(tl, watched.ID, &got)
		defer stop()
		_, _, best := runLoop(b, cg, env...)
		return best
	}
	emptyProg := func(typ ebpf.ProgramType) *ebpf.Program {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: typ, License: "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close() })
		return p
	}
	emptyTP, emptyRaw := emptyProg(ebpf.TracePoint), emptyProg(ebpf.RawTracepoint)
	// floor runs the loop with empty programs attached by attach.
	floor := func(attach func() []link.Link) float64 {
		for _, l := range attach() {
			defer l.Close()
		}
		_, _, best := runLoop(b, unwatched, env...)
		return best
	}
	tracepoints := func(names ...string) func() []link.Link {
		return func() []link.Link {
			var ls []link.Link
			for _, tp := range names {
				l, err := link.Tracepoint("syscalls", tp, emptyTP, nil)
				if err != nil {
					b.Fatal(err)
				}
				ls = append(ls, l)
			}
			return ls
		}
	}
	raw := func() []link.Link {
		var ls []link.Link
		for _, tp := range []string{"sys_enter", "sys_exit"} {
			l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp, Program: emptyRaw})
			if err != nil {
				b.Fatal(err)
			}
			ls = append(ls, l)
		}
		return ls
	}
	rows := []struct {
		name string
		run  func() float64
	}{
		{"B watched process", func() float64 { tl := open(true); defer tl.Close(); return measure(tl, watched) }},
		{"C unwatched process", func() float64 { tl := open(true); defer tl.Close(); return measure(tl, unwatched) }},
		{"E attached, nothing watched", func() float64 { tl := open(false); defer tl.Close(); return measure(tl, unwatched) }},
		{"F empty raw sys_enter+exit", func() float64 { return floor(raw) }},
		{"G empty sys_enter/exit_openat", func() float64 { return floor(tracepoints("sys_enter_openat", "sys_exit_openat")) }},
		{"H empty sys_enter_getppid", func() float64 { return floor(tracepoints("sys_enter_getppid")) }},
		{"I empty sys_exit_openat", func() float64 { return floor(tracepoints("sys_exit_openat")) }},
	}
	var a []float64
	ns := make([][]float64, len(rows))
	ratios := make([][]float64, len(rows))
	for r := 0; r < rounds; r++ {
		for i, row := range rows {
			// A before each row: its ratio compares neighbours in time.
			_, _, nsA := runLoop(b, watched, env...)
			x := row.run()
			a = append(a, nsA)
			ns[i] = append(ns[i], x)
			ratios[i] = append(ratios[i], x/nsA)
		}
	}
	fmt.Printf("\noverhead on open+close (CPU 0), %d interleaved rounds of %d opens, medians\n", rounds, opens)
	fmt.Printf("  %-31s %7.0f ns\n", "A no programs", median(a))
	for i, row := range rows {
		fmt.Printf("  %-31s %7.0f ns  ratio %.3fx (rounds: %s)\n", row.name, median(ns[i]), median(ratios[i]), fmtRatios(ratios[i]))
	}

	// The kernel's own statistics: each program's run time per open+close,
	// for a watched
	// and an unwatched process (they cost two clock reads per run, so the
	// ratios above are taken without them).
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatal(err)
	}
	defer stats.Close()
	tl := open(true)
	defer tl.Close()
	fmt.Printf("\nkernel statistics per open+close\n")
	for _, c := range []struct {
		name string
		cg   *testenv.Cgroup
	}{{"watched", watched}, {"unwatched", unwatched}} {
		before := tl.Stats()
		measure(tl, c.cg)
		after := tl.Stats()
		var names []string
		for name := range after {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			d := after[name].RunCount - before[name].RunCount
			if d < uint64(opens)/2 {
				continue // not a program of this loop
			}
			per := float64(after[name].Runtime-before[name].Runtime) / float64(opens)
			fmt.Printf("  %-9s %-14s %.2f runs  %6.1f ns  (%.2f%% of A's open+close)\n", c.name, name, float64(d)/float64(opens), per, 100*per/median(a))
		}
	}
	for i, metric := range []string{"watched-ratio", "unwatched-ratio", "nothing-watched-ratio", "empty-raw-ratio", "empty-perf-tp-ratio", "slow-path-ratio", "empty-exit-tp-ratio"} {
		b.ReportMetric(median(ratios[i]), metric)
	}
}

// BenchmarkOtherSyscalls: what the telemetry costs a syscall it does not
// report (getppid(2), CPU 0, a process in an unwatched cgroup, 1,000 other
// cgroups watched), in interleaved rounds against no programs at all: the
// tax on every other syscall of every process on the node.
func BenchmarkOtherSyscalls(b *testing.B) {
	testenv.RequireRoot(b)
	rounds := int(envFloat("NRI_ARMOR_BENCH_ROUNDS", 7))
	calls := int(envFloat("NRI_ARMOR_BENCH_OPENS", 200000))
	cg := testenv.NewCgroup(b)
	env := []string{"T_CPU=0", "T_OP=getppid", fmt.Sprint("T_N=", calls)}
	var a, t, ratios []float64
	for r := 0; r < rounds; r++ {
		_, _, nsA := runLoop(b, cg, env...)
		tl, err := Open(Config{})
		if err != nil {
			b.Fatal(err)
		}
		for i := uint64(1); i <= 1000; i++ {
			if err := tl.Watch(1<<40+i, VisAll); err != nil {
				b.Fatal(err)
			}
		}
		_, _, nsT := runLoop(b, cg, env...)
		tl.Close()
		a, t, ratios = append(a, nsA), append(t, nsT), append(ratios, nsT/nsA)
	}
	fmt.Printf("\ngetppid(2) (CPU 0), %d interleaved rounds of %d calls, medians\n", rounds, calls)
	fmt.Printf("  no programs:           %7.1f ns\n", median(a))
	fmt.Printf("  telemetry attached:    %7.1f ns  ratio %.3fx (rounds: %s)\n", median(t), median(ratios), fmtRatios(ratios))
	b.ReportMetric(median(ratios), "getppid-ratio")
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRatios(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.3f", x))
	}
	return strings.Join(parts, " ")
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkDecode: what the reader spends per event besides the ring.
func BenchmarkDecode(b *testing.B) {
	rec := make([]byte, evHdr+32)
	rec[offKind] = byte(KindOpen)
	rec[offPathLen] = 32
	copy(rec[offComm:], "app")
	var d decoder
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.decode(rec); err != nil {
			b.Fatal(err)
		}
	}
}
