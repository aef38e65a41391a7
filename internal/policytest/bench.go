package policytest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/policy"
)

// BenchRuleSet is the rule set of the enforcement benchmarks (BPF-LSM's and
// AppArmor's, so that their figures compare): n file rules (60% paths, 40%
// directories, every other one recursive) and n process rules, all Block,
// none of which match the benchmarks' file or program — the common case:
// most operations of an enforced container match no rule.
func BenchRuleSet(tb testing.TB, n int) *policy.RuleSet {
	tb.Helper()
	var y strings.Builder
	y.WriteString("apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: bench}\nspec:\n  selector: {matchLabels: {a: b}}\n")
	y.WriteString("  file:\n    matchPaths:\n")
	for i := 0; i < n*6/10; i++ {
		fmt.Fprintf(&y, "    - path: /srv/app%d/conf/file%d.yaml\n", i%997, i)
	}
	y.WriteString("    matchDirectories:\n")
	for i := 0; i < n-n*6/10; i++ {
		fmt.Fprintf(&y, "    - dir: /data/vol%d/part%d/\n      recursive: %t\n", i%991, i, i%2 == 0)
	}
	y.WriteString("  process:\n    matchPaths:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&y, "    - path: /opt/tool%d/bin/run\n", i)
	}
	y.WriteString("  action: Block\n")
	res := policy.LoadBytes("bench.yaml", []byte(y.String()))
	if err := res.Err(); err != nil {
		tb.Fatal(err)
	}
	return policy.Compile(res.Policies, policy.Options{Postures: policy.DefaultDefaults().Postures, Mode: policy.ModeEnforce})
}
