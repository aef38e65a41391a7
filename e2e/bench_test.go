//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// benchPolicy has n rules: n-1 file paths and raw sockets. Every rule is
// compiled and written to the kernel maps; on a node without BPF-LSM only
// the network rule is enforced, the file rules are audit-only there.
func benchPolicy(n int) string {
	var b strings.Builder
	b.WriteString("apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  name: e2e-bench-1000\n  namespace: e2e\nspec:\n  file:\n    matchPaths:\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "    - path: /opt/bench/file-%04d\n", i)
	}
	b.WriteString("  network:\n    matchProtocols:\n    - protocol: raw\n  action: Block\n")
	return b.String()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// startSample is one container start: crictl runp, create and start, and
// the time until the container's own command has run (it creates a file
// in a directory mounted from the host, seen with inotify).
type startSample struct{ runp, create, start, total time.Duration }

// running, when not nil, is called while the container runs (untimed).
func sampleStart(b *testing.B, ns string, annotations map[string]string, dir string, w *fsnotify.Watcher, running func()) startSample {
	b.Helper()
	var s startSample
	marker := "started-" + randomSuffix()
	t0 := time.Now()
	p := runPodIn(b, ns, "bench", annotations)
	s.runp = time.Since(t0)
	cfg := containerConfig("main", []string{"sh", "-c", "touch /out/" + marker + "; exec sleep 3600"})
	cfg["mounts"] = []map[string]any{{"container_path": "/out", "host_path": dir}}
	t1 := time.Now()
	id, r := createContainerWith(b, p, cfg)
	if id == "" {
		b.Fatalf("crictl create: %v", r)
	}
	s.create = time.Since(t1)
	t2 := time.Now()
	mustCrictl(b, "start", id)
	s.start = time.Since(t2)
	deadline := time.After(30 * time.Second)
	for seen := false; !seen; {
		select {
		case ev := <-w.Events:
			seen = filepath.Base(ev.Name) == marker
		case err := <-w.Errors:
			b.Fatal(err)
		case <-deadline:
			b.Fatal("the container's command did not run within 30 s")
		}
	}
	s.total = time.Since(t0)
	if running != nil {
		running()
	}
	// Outside the timing: removing the pod keeps every sample on a node
	// with the same number of pods.
	crictl(b, "rmp", "-f", p.id)
	return s
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkStartLatency prints container start latency through crictl
// with nri-armor (a pod naming a 1,000-rule policy, and, alternating with
// it, a pod naming none: what NRI's round trips alone cost) and without it
// (nri-armor stopped; the pod carries the fail-closed toleration), in
// interleaved rounds: E2E_BENCH_ROUNDS rounds (default 6) of
// E2E_BENCH_PER_ROUND starts per variant (default 5), the side going first
// alternating. hack/e2e/bench-start.sh runs it; run with -benchtime 1x.
// E2E_BENCH_RUNTIME=crio runs it against the private CRI-O.
func BenchmarkStartLatency(b *testing.B) {
	if os.Getenv("E2E_BENCH_RUNTIME") == "crio" {
		runtimeTests.Store(b.Name(), crioRuntime)
	}
	need(b)
	fmt.Printf("runtime: %s\n", runtimeOf(b).name)
	rounds, per := envInt("E2E_BENCH_ROUNDS", 6), envInt("E2E_BENCH_PER_ROUND", 5)
	writePolicy(b, "bench.yaml", benchPolicy(1000))
	b.Cleanup(func() { os.Remove(filepath.Join(env.policies, "bench.yaml")) })
	dir := b.TempDir()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		b.Fatal(err)
	}
	with := map[string]string{policiesKey: "e2e-bench-1000"}
	// The toleration, in nri-armor's own namespace (the guard trusts no
	// other here), is the only way to start a container while the
	// fail-closed containerd has no nri-armor.
	without := map[string]string{tolerateKey: "true"}
	samples := map[string][]startSample{}
	var entries float64
	// What nri-armor itself spent handling each 1,000-rule container's
	// CreateContainer and StartContainer (its histogram's sum, before and
	// after the sample): the part of the difference that is nri-armor's.
	handled := map[string][]time.Duration{}
	handlingSums := func(a *armor) map[string]float64 {
		out := map[string]float64{}
		for _, ev := range []string{"CreateContainer", "StartContainer"} {
			out[ev] = a.metric(b, fmt.Sprintf(`nri_armor_nri_event_duration_seconds_sum{event=%q}`, ev))
		}
		return out
	}
	side := func(name string) {
		switch name {
		case "with":
			a := startArmor(b)
			// The set really is in the kernel while the container runs.
			var before map[string]float64
			loaded := func() {
				if entries = a.metric(b, "nri_armor_kernel_rule_entries"); entries == 0 {
					b.Fatal("nri-armor holds no rule entries while a container naming the policy runs")
				}
				for ev, sum := range handlingSums(a) {
					handled[ev] = append(handled[ev], time.Duration((sum-before[ev])*float64(time.Second)))
				}
			}
			for range per {
				before = handlingSums(a)
				samples[name] = append(samples[name], sampleStart(b, podNamespace, with, dir, w, loaded))
				samples["nopolicy"] = append(samples["nopolicy"], sampleStart(b, podNamespace, nil, dir, w, nil))
			}
			a.stop()
		case "without":
			for range per {
				samples[name] = append(samples[name], sampleStart(b, ownNamespace, without, dir, w, nil))
			}
		}
	}
	for i := 0; i < b.N; i++ {
		for r := range rounds {
			if r%2 == 0 {
				side("with")
				side("without")
			} else {
				side("without")
				side("with")
			}
		}
	}
	b.StopTimer()
	pick := func(ss []startSample, f func(startSample) time.Duration) []time.Duration {
		out := make([]time.Duration, len(ss))
		for i, s := range ss {
			out[i] = f(s)
		}
		return out
	}
	parts := []struct {
		name string
		f    func(startSample) time.Duration
	}{
		{"runp", func(s startSample) time.Duration { return s.runp }},
		{"create", func(s startSample) time.Duration { return s.create }},
		{"start", func(s startSample) time.Duration { return s.start }},
		{"total, until the command runs", func(s startSample) time.Duration { return s.total }},
	}
	fmt.Printf("container start latency, %d rounds x %d starts per variant (interleaved), medians; policy: 1,000 rules (%v kernel rule entries)\n", rounds, per, entries)
	fmt.Printf("%-32s %12s %8s %12s %8s %12s\n", "step", "1,000 rules", "ratio", "no policy", "ratio", "no nri-armor")
	for _, p := range parts {
		mw, mn, mo := median(pick(samples["with"], p.f)), median(pick(samples["nopolicy"], p.f)), median(pick(samples["without"], p.f))
		r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
		fmt.Printf("%-32s %12s %7.2fx %12s %7.2fx %12s\n", p.name, r(mw), float64(mw)/float64(mo), r(mn), float64(mn)/float64(mo), r(mo))
	}
	fmt.Printf("nri-armor's own handling of a 1,000-rule container (median): CreateContainer %s, StartContainer %s\n",
		median(handled["CreateContainer"]).Round(time.Microsecond), median(handled["StartContainer"]).Round(time.Microsecond))
	b.ReportMetric(float64(median(pick(samples["with"], parts[3].f)).Microseconds()), "us/start-with")
	b.ReportMetric(float64(median(pick(samples["without"], parts[3].f)).Microseconds()), "us/start-without")
}
