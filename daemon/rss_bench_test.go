package daemon

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/internal/nritest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/state"
)

// procStatus reads the kB figures of keys from /proc/<pid>/status, in MiB.
func procStatus(tb testing.TB, pid int, keys ...string) map[string]float64 {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for _, want := range keys {
			if k == want {
				kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				if err != nil {
					tb.Fatalf("%s: %q: %v", k, v, err)
				}
				out[k] = kb / 1024
			}
		}
	}
	return out
}

// BenchmarkDaemonRSS: the resident memory of the real nri-armor binary
// (built from cmd/nri-armor, with the backend its probe chooses and real
// pinned BPF maps of the default capacity) holding 1,000 policies and 500
// running containers, each a real process in a cgroup of its own, driven
// over a real socket by NRI's runtime side (adaptation), then after a
// policy edit that changes all 500 sets. Target (issue 4): under 64 MiB.
// hack/bench-rss.sh runs it.
func BenchmarkDaemonRSS(b *testing.B) {
	testenv.RequireRoot(b)
	const policies, containers = 1000, 500
	dir := b.TempDir()
	bin := filepath.Join(dir, "nri-armor")
	build := exec.Command("go", "build", "-o", bin, "./cmd/nri-armor")
	build.Dir = testenv.RepoRoot(b)
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	polFile := testenv.WriteFile(b, dir, "policies/bench.yaml", testenv.BenchPolicies(policies, 0))
	rtDir := filepath.Join(dir, "runtime")
	if err := os.Mkdir(rtDir, 0o755); err != nil {
		b.Fatal(err)
	}
	rt := nritest.NewAt(b, rtDir)
	pin := fmt.Sprintf("/sys/fs/bpf/nri-armor-rss-bench-%d", os.Getpid())
	b.Cleanup(func() { _ = bpflsm.Unpin(pin) })
	stateDir := filepath.Join(dir, "state")
	logFile, err := os.Create(filepath.Join(dir, "nri-armor.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	d := exec.Command(bin, "-socket", rt.Sock, "-policyDirs", filepath.Dir(polFile), "-bpffs", pin,
		"-stateDir", stateDir, "-metricsAddress", "127.0.0.1:0", "-logLevel", "warn")
	d.Stdout, d.Stderr = logFile, logFile
	if err := d.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Process.Kill(); d.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rt.WaitSynced(ctx)
	idle := procStatus(b, d.Process.Pid, "VmRSS")["VmRSS"]

	for i := 0; i < containers; i++ {
		cg := testenv.NewCgroup(b)
		sleep := exec.Command("sleep", "3600")
		cg.Into(sleep)
		if err := sleep.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
		ns, labels := testenv.BenchPod(i)
		sb := rt.RunPod(fmt.Sprintf("pod-%d", i), ns, fmt.Sprintf("web-%d", i), labels, nil)
		ctr, _, err := rt.Create(sb, fmt.Sprintf("ctr-%d", i), "main")
		if err != nil {
			b.Fatal(err)
		}
		if err := rt.Start(sb, ctr, sleep.Process.Pid); err != nil {
			b.Fatal(err)
		}
	}
	loaded := procStatus(b, d.Process.Pid, "VmRSS")["VmRSS"]

	// Every container is enforced and published.
	sd, err := state.Open(stateDir, false)
	if err != nil {
		b.Fatal(err)
	}
	sets := func() map[uint64]string {
		recs, err := sd.Containers()
		if err != nil {
			b.Fatal(err)
		}
		out := map[uint64]string{}
		for _, r := range recs {
			if len(r.Enforcers) > 0 {
				out[r.CgroupID] = r.PolicySet
			}
		}
		return out
	}
	before := sets()
	if len(before) != containers {
		b.Fatalf("%d containers enforced and published, want %d", len(before), containers)
	}
	// A policy edit that changes every container's set: done when every
	// record names another set.
	tmp := polFile + ".new"
	if err := os.WriteFile(tmp, []byte(testenv.BenchPolicies(policies, 1)), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, polFile); err != nil {
		b.Fatal(err)
	}
	for i := 0; ; i++ {
		changed := 0
		for cg, set := range sets() {
			if set != before[cg] {
				changed++
			}
		}
		if changed == containers {
			break
		}
		if i == 1500 {
			b.Fatalf("the policy edit reached %d of %d containers", changed, containers)
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := procStatus(b, d.Process.Pid, "VmRSS", "VmHWM")

	for b.Loop() {
		// The figures are of one daemon; nothing to repeat.
	}
	b.ReportMetric(idle, "idle-rss-MiB")
	b.ReportMetric(loaded, "rss-MiB")
	b.ReportMetric(after["VmRSS"], "rss-after-edit-MiB")
	b.ReportMetric(after["VmHWM"], "peak-rss-MiB")
	b.Logf("nri-armor pid %d, %d policies, %d containers: VmRSS %.1f MiB idle, %.1f MiB loaded, %.1f MiB after an edit of every set; VmHWM %.1f MiB",
		d.Process.Pid, policies, containers, idle, loaded, after["VmRSS"], after["VmHWM"])
}
