//go:build vmtest

package apparmor

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/internal/vmtest"
	"github.com/nri-armor/nri-armor/policy"
)

func init() {
	// openloop PATH N: open and close PATH N times; the ns per open+close
	// of the fastest run of 1,000 (whatever else the emulator does only
	// ever adds time), as enforce/bpflsm's openClose.
	ops["openloop"] = func(arg string) error {
		path, n := loopArgs(arg)
		p, _ := syscall.BytePtrFromString(path)
		const chunk = 1000
		best := time.Duration(1<<63 - 1)
		start := time.Now()
		for i := 1; i <= n; i++ {
			fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(0xffffff9c), uintptr(unsafe.Pointer(p)), syscall.O_RDONLY, 0, 0, 0)
			if errno != 0 {
				return errno
			}
			syscall.Close(int(fd))
			if i%chunk == 0 {
				now := time.Now()
				best = min(best, now.Sub(start))
				start = now
			}
		}
		return opResult(fmt.Sprint(float64(best.Nanoseconds()) / chunk))
	}
	// execloop PATH N: fork and exec PATH (as true) N times; ns per run.
	ops["execloop"] = func(arg string) error {
		path, n := loopArgs(arg)
		start := time.Now()
		for i := 0; i < n; i++ {
			pid, err := syscall.ForkExec(path, []string{"true"}, &syscall.ProcAttr{})
			if err != nil {
				return err
			}
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
		}
		return opResult(fmt.Sprint(float64(time.Since(start).Nanoseconds()) / float64(n)))
	}
}

func loopArgs(arg string) (string, int) {
	path, ns, _ := strings.Cut(arg, " ")
	n, _ := strconv.Atoi(ns)
	return path, n
}

// BenchmarkAppArmorOverhead (make vmbench: one CPU, instruction counting,
// both LSMs active) measures open+close of a file five directories deep
// and fork+exec of a static /bin/true, in interleaved rounds, by a helper
// in a test cgroup:
//
//	A  unconfined, no BPF-LSM programs attached;
//	B  confined by the AppArmor profile of policytest.BenchRuleSet(1000)
//	   (1,000 file and 1,000 process Block rules, none matching);
//	B0 confined by the profile of an empty rule set (the base alone);
//	C  unconfined, enforced by BPF-LSM (enforce/bpflsm's engine in this
//	   boot) with the same rule set;
//
// and prints the medians over the rounds and their ratios to A.
func BenchmarkAppArmorOverhead(b *testing.B) {
	vmtest.RequireLSM(b, "apparmor", "bpf")
	f := newFixture(b)
	const dir = "/tmp/aab"
	target := dir + "/data/a/b/c/file"
	mkfile(b, target, nil)
	copyFile(b, "/bin/busybox", dir+"/bin/true") // static, as BPF-LSM's benchmark runs it
	rs := policytest.BenchRuleSet(b, 1000)
	p := compileSet(b, NamePrefix+"vmbench.rules.0000000000001000", rs)
	f.load(b, p)
	base := compileSet(b, NamePrefix+"vmbench.rules.0000000000000000", &policy.RuleSet{})
	f.load(b, base)
	root, err := cgroups.Mount()
	if err != nil {
		b.Fatal(err)
	}
	cg := testenv.NewCgroup(b)
	pin := fmt.Sprintf("/sys/fs/bpf/nri-armor-aabench-%d", os.Getpid())
	defer bpflsm.Unpin(pin)
	rounds, opens, execs := envInt("NRI_ARMOR_BENCH_ROUNDS", 6), envInt("NRI_ARMOR_BENCH_OPENS", 20000), envInt("NRI_ARMOR_BENCH_EXECS", 200)

	samples := map[string][]float64{}
	measure := func(key, profile string) {
		h := startHelper(b, profile, cg.Into)
		for _, m := range []struct{ op, arg string }{{"openloop", fmt.Sprintf("%s %d", target, opens)}, {"execloop", fmt.Sprintf("%s/bin/true %d", dir, execs)}} {
			res := h.do(m.op + " " + m.arg)
			v, err := strconv.ParseFloat(res, 64)
			if err != nil {
				b.Fatalf("%s %s under %q: %s", m.op, m.arg, profile, res)
			}
			samples[m.op+" "+key] = append(samples[m.op+" "+key], v)
		}
		h.stop()
	}
	for r := 0; r < rounds; r++ {
		measure("A", "")
		measure("B", p.Name)
		measure("B0", base.Name)
		e, err := bpflsm.OpenEngine(bpflsm.Config{PinPath: pin, MaxRuleEntries: 1 << 19}, bpflsm.HooksLSM, root)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Apply(cg.ID, rs); err != nil {
			b.Fatal(err)
		}
		measure("C", "")
		e.Remove(cg.ID)
		e.Close()
		bpflsm.Unpin(pin)
		time.Sleep(time.Second) // let the kernel free the programs outside the next loop
	}
	med := func(k string) float64 { return median(samples[k]) }
	fmt.Printf("\nAppArmor and BPF-LSM overhead, %d interleaved rounds, medians; profile %d bytes, %d file and %d process rules\n",
		rounds, len(p.Text), len(rs.File.Rules), len(rs.Process.Rules))
	for _, op := range []struct{ key, what string }{{"openloop", "open+close"}, {"execloop", "fork+exec /bin/true"}} {
		a := med(op.key + " A")
		fmt.Printf("  %-20s no profile, no programs   %9.0f ns\n", op.what, a)
		fmt.Printf("  %-20s AppArmor, 1,000 rules     %9.0f ns  %.3fx  (rounds: %s)\n", op.what, med(op.key+" B"), med(op.key+" B")/a, ratios(samples[op.key+" B"], samples[op.key+" A"]))
		fmt.Printf("  %-20s AppArmor, no rules (base) %9.0f ns  %.3fx  (rounds: %s)\n", op.what, med(op.key+" B0"), med(op.key+" B0")/a, ratios(samples[op.key+" B0"], samples[op.key+" A"]))
		fmt.Printf("  %-20s BPF-LSM, 1,000 rules      %9.0f ns  %.3fx  (rounds: %s)\n", op.what, med(op.key+" C"), med(op.key+" C")/a, ratios(samples[op.key+" C"], samples[op.key+" A"]))
	}
	b.ReportMetric(med("openloop B")/med("openloop A"), "aa-open-ratio")
	b.ReportMetric(med("execloop B")/med("execloop A"), "aa-exec-ratio")
	b.ReportMetric(med("openloop B0")/med("openloop A"), "aa-base-open-ratio")
	b.ReportMetric(med("openloop C")/med("openloop A"), "bpf-open-ratio")
	b.ReportMetric(med("execloop C")/med("execloop A"), "bpf-exec-ratio")
}

// BenchmarkAppArmorLoad measures loading a profile (apparmor_parser's
// compile and the kernel's load: Loader.Load) and replacing it in place
// with one rule changed, for 10, 1,000 and 10,000 rules of each class
// (policytest.BenchRuleSet), and the size of the profile: its text and
// the compiled policy the kernel holds (its raw_data in securityfs).
func BenchmarkAppArmorLoad(b *testing.B) {
	f := newFixture(b)
	f.l.Parser.Timeout = 10 * time.Minute // 10,000 rules: seconds on a host, more in the VM
	fmt.Printf("\nAppArmor profile load (apparmor_parser -r: compile and load) and replace, fastest of the runs\n")
	fmt.Printf("  %7s %7s %10s %10s %10s %10s\n", "rules", "runs", "text", "binary", "load", "replace")
	for _, n := range []int{10, 1000, 10000} {
		rs := policytest.BenchRuleSet(b, n)
		p := compileSet(b, fmt.Sprintf("%svmbench.load.%016d", NamePrefix, n), rs)
		edited := p
		edited.Text = strings.Replace(p.Text, "/opt/tool0/bin/run", "/opt/tool0/bin/run2", 1)
		if edited.Text == p.Text {
			b.Fatal("no rule to edit")
		}
		runs := 3
		if n >= 10000 {
			runs = 1
		}
		var load, replace []time.Duration
		var bin int
		for i := 0; i < runs; i++ {
			start := time.Now()
			if loaded, err := f.l.Load(p); err != nil || !loaded {
				b.Fatalf("load: %t %v", loaded, err)
			}
			load = append(load, time.Since(start))
			start = time.Now()
			if loaded, err := f.l.Load(edited); err != nil || !loaded {
				b.Fatalf("replace: %t %v", loaded, err)
			}
			replace = append(replace, time.Since(start))
			if i == runs-1 {
				bin = loadedSize(b, p.Name)
			}
			if err := f.l.Unload(p.Name); err != nil {
				b.Fatal(err)
			}
		}
		fmt.Printf("  %7d %7d %9dB %9dB %10s %10s\n", len(rs.File.Rules)+len(rs.Process.Rules), runs, len(p.Text), bin,
			slices.Min(load).Round(time.Millisecond), slices.Min(replace).Round(time.Millisecond))
	}
}

// loadedSize is the size of the compiled policy the kernel holds for
// profile name (securityfs policy/profiles/*/raw_data), -1 when it does
// not show it.
func loadedSize(b *testing.B, name string) int {
	dirs, _ := filepath.Glob(SecurityFS + "/policy/profiles/*")
	for _, d := range dirs {
		if n, err := os.ReadFile(d + "/name"); err == nil && strings.TrimSpace(string(n)) == name {
			if raw, err := os.ReadFile(d + "/raw_data"); err == nil {
				return len(raw)
			}
		}
	}
	return -1
}

// ratios are each round's B/A.
func ratios(b, a []float64) string {
	var s []string
	for i := range b {
		s = append(s, fmt.Sprintf("%.3f", b[i]/a[i]))
	}
	return strings.Join(s, " ")
}

var median, envInt = testenv.Median, testenv.EnvInt
