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
