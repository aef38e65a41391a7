//go:build e2e && (vme2e || vmapparmor)

package e2e

import (
	"strings"
	"testing"
)

// What the VM's end-to-end tests share, on either boot (BPF-LSM,
// AppArmor).

// wantRefused asserts that crictl exec failed as the kernel's refusal
// looks to a user: exit status 1 and the messages.
func wantRefused(t *testing.T, r result, what string, messages ...string) {
	t.Helper()
	out := crictlSays(r) + r.stdout
	t.Logf("guarded: %s → exit %d: %s", what, r.code, strings.TrimSpace(out))
	for _, m := range messages {
		if r.code != 1 || !strings.Contains(out, m) {
			t.Errorf("%s in the guarded container: %v; want exit 1 and %q", what, r, m)
		}
	}
}

// policyAlerts is tr.alerts of pod without the flood summaries that
// count only dropped logs (AlertThreshold with droppedAlerts=0): a pod
// without rules has telemetry logs, whose summary the alert stream carries
// too, and no alert.
func (tr *tracer) policyAlerts(t *testing.T, pod string) []alert {
	t.Helper()
	var as []alert
	for _, a := range tr.alerts(t, pod) {
		if a.Operation == "AlertThreshold" && strings.Contains(" "+a.Data+" ", " droppedAlerts=0 ") {
			continue
		}
		as = append(as, a)
	}
	return as
}
