package plugin

import (
	"context"
	"fmt"
	"os/exec"
	goruntime "runtime"
	"sort"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

// benchCatalog is testenv.BenchPolicies loaded.
func benchCatalog(tb testing.TB, n, variant int) *policy.Catalog {
	return catalogOf(tb, testenv.BenchPolicies(n, variant))
}

// benchPlugin is a plugin with 1,000 policies and 500 running containers,
// all of whose processes share one real cgroup (the backend records).
func benchPlugin(b *testing.B) (*Plugin, int) {
	testenv.RequireRoot(b)
	cg := testenv.NewCgroup(b)
	sleep := exec.Command("sleep", "600")
	cg.Into(sleep)
	if err := sleep.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	p, err := New(Config{Catalog: benchCatalog(b, 1000, 0), Defaults: policy.DefaultDefaults(), Backend: &recorder{}})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		createStart(b, p, i, sleep.Process.Pid)
	}
	return p, sleep.Process.Pid
}

func createStart(tb testing.TB, p *Plugin, i, pid int) {
	ctx := context.Background()
	ns, labels := testenv.BenchPod(i)
	sb := &api.PodSandbox{Id: fmt.Sprintf("pod-%d", i), Name: fmt.Sprintf("web-%d", i), Namespace: ns, Labels: labels}
	ctr := &api.Container{Id: fmt.Sprintf("ctr-%d", i), PodSandboxId: sb.Id, Name: "main"}
	if err := p.RunPodSandbox(ctx, sb); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := p.CreateContainer(ctx, sb, ctr); err != nil {
		tb.Fatal(err)
	}
	ctr.Pid = uint32(pid)
	if err := p.StartContainer(ctx, sb, ctr); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkCreateStart: CreateContainer + StartContainer handling in the
// plugin (the backend only records) with 1,000 policies and 500 running
// containers. Target (issue 4): p99 under 1 ms.
func BenchmarkCreateStart(b *testing.B) {
	p, pid := benchPlugin(b)
	var durs []time.Duration
	i := 1000
	for b.Loop() {
		start := time.Now()
		createStart(b, p, i, pid)
		durs = append(durs, time.Since(start))
		// Keep 500 running: remove the new one again.
		_ = p.RemoveContainer(context.Background(), nil, &api.Container{Id: fmt.Sprintf("ctr-%d", i)})
		_ = p.RemovePodSandbox(context.Background(), &api.PodSandbox{Id: fmt.Sprintf("pod-%d", i)})
		i++
	}
	sort.Slice(durs, func(a, c int) bool { return durs[a] < durs[c] })
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkPolicyEdit500: a policy change that changes the set of all 500
// running containers; every set is swapped before Reapply returns. Target
// (issue 4): within 100 ms.
func BenchmarkPolicyEdit500(b *testing.B) {
	p, _ := benchPlugin(b)
	cats := []*policy.Catalog{benchCatalog(b, 1000, 1), benchCatalog(b, 1000, 2)}
	// The daemon's memory for 1,000 policies and 500 containers (target
	// under 64 MiB resident): the Go heap in use, with two catalogs held.
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	defer b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	n := 0
	for b.Loop() {
		if err := p.Reapply(context.Background(), cats[n%2]); err != nil {
			b.Fatal(err)
		}
		n++
	}
}
