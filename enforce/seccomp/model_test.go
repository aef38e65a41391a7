package seccomp_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/containerd/nri/pkg/api"

	"github.com/nri-armor/nri-armor/enforce/seccomp"
)

// eval is what a filter does with a call of name whose arguments match
// the policy's conditions (argsMatch) or not, in the shape of policy the
// runtimes' defaults have: per name at most one rule without conditions
// and rules with conditions, which apply only when they match.
func eval(pol *api.LinuxSeccomp, name string, argsMatch bool) string {
	for _, r := range pol.Syscalls {
		for _, n := range r.Names {
			if n == name && (len(r.Args) == 0 || argsMatch) {
				return r.Action
			}
		}
	}
	return pol.DefaultAction
}

func refused(action string) bool { return action != seccomp.ActAllow && action != seccomp.ActLog }

// TestBuildModel: random bases (refusing or allowing by default; per call
// no rule, an allow, an allow under conditions, a refusal with an errno, a
// log) and random plans. What the base refuses stays refused; a blocked
// call is refused whatever its arguments; an audited call the base allows
// is logged, under the same conditions; every other call is decided as
// the base decides it; and the result carries the plan.
func TestBuildModel(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		base := &api.LinuxSeccomp{DefaultAction: []string{seccomp.ActErrno, seccomp.ActAllow}[rng.IntN(2)]}
		cond := []*api.LinuxSeccompArg{{Index: 0, Value: 1, Op: "SCMP_CMP_EQ"}}
		for _, n := range names {
			switch rng.IntN(5) {
			case 1:
				base.Syscalls = append(base.Syscalls, &api.LinuxSyscall{Names: []string{n}, Action: seccomp.ActAllow})
			case 2:
				base.Syscalls = append(base.Syscalls, &api.LinuxSyscall{Names: []string{n}, Action: seccomp.ActAllow, Args: cond})
			case 3:
				base.Syscalls = append(base.Syscalls, &api.LinuxSyscall{Names: []string{n}, Action: seccomp.ActErrno, ErrnoRet: &api.OptionalUInt32{Value: 38}})
			case 4:
				base.Syscalls = append(base.Syscalls, &api.LinuxSyscall{Names: []string{n}, Action: seccomp.ActLog})
			}
		}
		var plan seccomp.Plan
		blocked, logged := map[string]bool{}, map[string]bool{}
		for _, n := range names {
			switch rng.IntN(3) {
			case 1:
				plan.Blocked, blocked[n] = append(plan.Blocked, n), true
			case 2:
				plan.Logged, logged[n] = append(plan.Logged, n), true
			}
		}
		plan.LogRefusals = rng.IntN(2) == 0
		out := seccomp.Build(plan, "amd64", base)
		for _, n := range names {
			for _, match := range []bool{true, false} {
				was, is := eval(base, n, match), eval(out, n, match)
				what := fmt.Sprintf("case %d: %s (args match %v): base %s, merged %s; base %v", i, n, match, was, is, base.Syscalls)
				switch {
				case refused(was) && !refused(is):
					t.Fatalf("%s: a refusal of the base was loosened", what)
				case blocked[n] && !refused(is):
					t.Fatalf("%s: blocked, not refused", what)
				case logged[n] && was == seccomp.ActAllow && is != seccomp.ActLog:
					t.Fatalf("%s: audited, not logged", what)
				case !blocked[n] && !logged[n] && was != is:
					t.Fatalf("%s: a call no rule names changed", what)
				}
			}
		}
		if err := seccomp.Carries(out, plan); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
	}
}
