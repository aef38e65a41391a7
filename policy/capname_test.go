package policy

import "testing"

func TestCapabilityName(t *testing.T) {
	for n, want := range map[int]string{0: "chown", 12: "net_admin", 13: "net_raw", 21: "sys_admin", 40: "checkpoint_restore", -1: "", 41: "", 1 << 20: ""} {
		if got := CapabilityName(n); got != want {
			t.Errorf("CapabilityName(%d) = %q, want %q", n, got, want)
		}
	}
	for name, n := range capabilityNumbers {
		if got := CapabilityName(n); got != name {
			t.Errorf("CapabilityName(%d) = %q, want %q", n, got, name)
		}
	}
}
