package testenv

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// BenchPolicies is the policy load of the benchmarks: n KubeArmorPolicies
// over 10 namespaces (ns0..ns9), each selecting one of 100 app labels
// (app0..app99) with a file and a network rule. variant changes every
// policy's file rule: the same names with another variant is a policy
// edit that changes every selected container's set.
func BenchPolicies(n, variant int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "---\napiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: p%d, namespace: ns%d}\nspec:\n  selector: {matchLabels: {app: app%d}}\n  file:\n    matchPaths:\n    - path: /etc/secret%d-%d\n  network:\n    matchProtocols:\n    - protocol: raw\n  action: Block\n", i, i%10, i%100, i, variant)
	}
	return sb.String()
}

// BenchPod is the namespace and labels of the benchmarks' pod i: every
// pod is selected, by the 10 policies of BenchPolicies (of 1,000) for its
// app label, which live in its namespace; pods i and i+100 share a set.
func BenchPod(i int) (namespace string, labels map[string]string) {
	app := (i * 7) % 100
	return fmt.Sprintf("ns%d", app%10), map[string]string{"app": fmt.Sprintf("app%d", app)}
}

// Median is the median of xs (0 for none); xs is left as it is.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// EnvInt is the positive integer in environment variable name, else def:
// the benchmarks' sizes, which a run may change.
func EnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
