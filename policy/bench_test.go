package policy

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
)

// BenchmarkLoadCorpus: load, validate and compile the whole shared corpus.
// Target (issue 2): under 200 ms per op.
func BenchmarkLoadCorpus(b *testing.B) {
	dir := testenv.Corpus(b)
	for b.Loop() {
		results := LoadPaths(dir)
		for _, r := range results {
			if len(r.Policies) > 0 {
				Compile(r.Policies, Options{Postures: DefaultDefaults().Postures, Mode: ModeEnforce})
			}
		}
	}
}

// genPolicies makes n ksps spread over 10 namespaces, each selecting one of
// 100 app labels and carrying a few rules of each kind.
func genPolicies(tb testing.TB, n int) []*Policy {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, `---
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: p%d, namespace: ns%d}
spec:
  selector: {matchLabels: {app: app%d}}
  process:
    matchPaths:
    - path: /usr/bin/tool%d
  file:
    matchDirectories:
    - dir: /srv/p%d/
      recursive: true
      readOnly: true
    matchPaths:
    - path: /etc/secret%d
      action: Audit
  network:
    matchProtocols:
    - protocol: raw
  action: Block
`, i, i%10, i%100, i, i, i)
	}
	res := LoadBytes("gen.yaml", []byte(sb.String()))
	if err := res.Err(); err != nil {
		tb.Fatal(err)
	}
	return res.Policies
}

func genPods(n int) []Pod {
	pods := make([]Pod, n)
	for i := range pods {
		pods[i] = Pod{Namespace: fmt.Sprintf("ns%d", i%10), Name: fmt.Sprintf("pod%d", i),
			Labels: map[string]string{"app": fmt.Sprintf("app%d", (i*7)%100), "tier": "web"}}
	}
	return pods
}

// BenchmarkSelectCompile1000Pods: selection + compile for 1,000 pods against
// 1,000 policies, with a fresh compiler each op (so sets shared by pods are
// compiled once and then hit the cache). Target: under 1 s per op.
func BenchmarkSelectCompile1000Pods(b *testing.B) {
	cat, err := NewCatalog(genPolicies(b, 1000))
	if err != nil {
		b.Fatal(err)
	}
	pods := genPods(1000)
	defaults := DefaultDefaults()
	for b.Loop() {
		c := NewCompiler(0)
		for _, pod := range pods {
			t, err := cat.Resolve(pod, "main", defaults)
			if err != nil {
				b.Fatal(err)
			}
			c.Compile(t.Policies, t.Settings.Options())
		}
	}
}

// BenchmarkCompileCacheHit: compiling an identical set again.
func BenchmarkCompileCacheHit(b *testing.B) {
	policies := genPolicies(b, 100)
	c := NewCompiler(0)
	opts := Options{Postures: DefaultDefaults().Postures, Mode: ModeEnforce}
	c.Compile(policies, opts)
	for b.Loop() {
		c.Compile(policies, opts)
	}
}

// genFileRuleSet makes a set of n file rules: exact paths, directories
// (recursive and not), and patterns, over a tree 3–6 levels deep.
func genFileRuleSet(tb testing.TB, n int) *RuleSet {
	var sb strings.Builder
	sb.WriteString("apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: big}\nspec:\n  selector: {matchLabels: {a: b}}\n  file:\n")
	sb.WriteString("    matchPaths:\n")
	for i := 0; i < n*6/10; i++ {
		fmt.Fprintf(&sb, "    - path: /srv/app%d/conf/file%d.yaml\n", i%997, i)
	}
	sb.WriteString("    matchDirectories:\n")
	for i := 0; i < n*3/10; i++ {
		fmt.Fprintf(&sb, "    - dir: /data/vol%d/part%d/\n      recursive: %t\n", i%991, i, i%2 == 0)
	}
	sb.WriteString("    matchPatterns:\n")
	for i := 0; i < n-n*6/10-n*3/10; i++ {
		fmt.Fprintf(&sb, "    - pattern: /logs/svc%d/*.log\n", i)
	}
	sb.WriteString("  action: Block\n")
	res := LoadBytes("big.yaml", []byte(sb.String()))
	if err := res.Err(); err != nil {
		tb.Fatal(err)
	}
	rs := Compile(res.Policies, Options{Postures: Postures{File: Block}, Mode: ModeEnforce})
	Decide(rs, Event{Class: ClassFile, Path: "/"}) // build the index outside the timed loop
	return rs
}

// benchEvents hit rules that every generated size has (so each size does
// the same matching work) and miss at several depths.
var benchEvents = []Event{
	{Class: ClassFile, Path: "/srv/app3/conf/file3.yaml"},               // exact hit
	{Class: ClassFile, Path: "/srv/app3/conf/other.yaml"},               // miss at depth 4
	{Class: ClassFile, Path: "/data/vol0/part0/a/b/c.bin", Write: true}, // recursive dir hit
	{Class: ClassFile, Path: "/logs/svc0/today.log"},                    // pattern hit
	{Class: ClassFile, Path: "/usr/lib/x86_64-linux-gnu/libc.so.6"},     // miss, depth 4
	{Class: ClassFile, Path: "/etc/hostname"},                           // miss, depth 2
}

// BenchmarkDecide: one event against sets of 10 to 100,000 file rules.
// Target: under 1 µs per event, and flat (±20%) across sizes.
func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000, 100000} {
		rs := genFileRuleSet(b, n)
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				Decide(rs, benchEvents[i%len(benchEvents)])
				i++
			}
		})
	}
}

// TestCompilerCacheIgnoresOrder: the same policies under the same options, in any
// order, are one cache entry.
func TestCompilerCacheIgnoresOrder(t *testing.T) {
	ps := genPolicies(t, 20)
	c := NewCompiler(0)
	opts := Options{Postures: DefaultDefaults().Postures, Mode: ModeEnforce}
	a := c.Compile(ps, opts)
	rev := append([]*Policy(nil), ps...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	if b := c.Compile(rev, opts); b != a {
		t.Fatal("reordered policies missed the cache")
	}
	if hits, misses := c.Stats(); hits != 1 || misses != 1 {
		t.Fatalf("hits %d misses %d, want 1 and 1", hits, misses)
	}
	if c.Compile(ps, Options{Postures: Postures{File: Block}, Mode: ModeEnforce}) == a {
		t.Fatal("other options hit the same entry")
	}
}

// TestGeneratedSetsDecideLikeScan cross-checks the index against a plain scan
// on the benchmark's large sets.
func TestGeneratedSetsDecideLikeScan(t *testing.T) {
	rs := genFileRuleSet(t, 2000)
	paths := []string{"/", "/srv", "/srv/app3/conf/file3.yaml", "/data/vol4/part4", "/data/vol4/part4/x", "/data/vol5/part5/x/y",
		"/data/vol5/part5/x", "/logs/svc5/a.log", "/logs/svc5/a/b.log", filepath.Join("/logs", "svc1999", "z.log")}
	for _, p := range paths {
		for _, w := range []bool{false, true} {
			ev := Event{Class: ClassFile, Path: p, Write: w}
			if got, want := Decide(rs, ev), decideByScan(rs, ev); got != want {
				t.Errorf("%s write=%t: index %+v, scan %+v", p, w, got, want)
			}
		}
	}
}
