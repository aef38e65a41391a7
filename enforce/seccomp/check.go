package seccomp

import (
	"fmt"
	"slices"

	"github.com/containerd/nri/pkg/api"
)

// Carries checks that pol does what plan asks: every blocked call is
// refused whatever its arguments, no audited call is allowed without
// being logged, and with plan.LogRefusals refusals are logged. It is the one check behind the plugin's validation of the
// final adjustment (no other plugin replaced the policy), its check at
// Synchronize of what a running container has, and the start gate's
// check of the bundle's config.json. nil pol (no filter) carries nothing.
func Carries(pol *api.LinuxSeccomp, plan Plan) error {
	if plan.Empty() {
		return nil
	}
	if pol == nil {
		return fmt.Errorf("the container has no seccomp filter, and nri-armor's refuses %v and logs %v", plan.Blocked, plan.Logged)
	}
	rulesOf := map[string][]*api.LinuxSyscall{}
	for _, r := range pol.Syscalls {
		for _, n := range r.Names {
			rulesOf[n] = append(rulesOf[n], r)
		}
	}
	for _, n := range plan.Blocked {
		rs := rulesOf[n]
		if len(rs) == 0 {
			if !refuses(pol.DefaultAction) {
				return fmt.Errorf("its seccomp filter does not refuse %s (default action %s, no rule)", n, pol.DefaultAction)
			}
			continue
		}
		always := false
		for _, r := range rs {
			if !refuses(r.Action) {
				return fmt.Errorf("its seccomp filter lets %s through (%s)", n, r.Action)
			}
			always = always || len(r.Args) == 0
		}
		if !always && !refuses(pol.DefaultAction) {
			return fmt.Errorf("its seccomp filter refuses %s only for some arguments", n)
		}
	}
	for _, n := range plan.Logged {
		rs := rulesOf[n]
		if len(rs) == 0 && pol.DefaultAction == ActAllow {
			return fmt.Errorf("its seccomp filter allows %s without logging it", n)
		}
		for _, r := range rs {
			if r.Action == ActAllow {
				return fmt.Errorf("its seccomp filter allows %s without logging it", n)
			}
		}
	}
	if plan.LogRefusals && len(plan.Blocked) > 0 && !slices.Contains(pol.Flags, FlagLog) {
		return fmt.Errorf("its seccomp filter does not log refusals (%s): nri-armor's Block alerts would be lost", FlagLog)
	}
	return nil
}
