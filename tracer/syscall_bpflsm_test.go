package tracer

import (
	"strings"
	"syscall"
	"testing"

	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer/alert"
)

// TestSyscallFromSourceByBPFLSM: a fromSource syscall rule that BPF-LSM
// enforces (not in the container's unenforced list) is alerted once, from
// the kernel's event — Operation Syscall, Enforcer BPFLSM, the policy
// named, a 32-bit call named by its rule — and a seccomp log record of the
// same call (another rule's Audit logged it) is not decided again; where
// the rule is unenforced (no BPF-LSM), the record is decided as before.
func TestSyscallFromSourceByBPFLSM(t *testing.T) {
	rs := policytest.Compile(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-chmod, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  syscalls:
    matchSyscalls:
    - syscall: [fchmod]
      fromSource: [{path: /bin/busybox}]
      action: Block
    - syscall: [fchmod]
      action: Audit
`)
	var blockID int
	for _, r := range rs.Syscalls.Rules {
		if len(r.FromSource) > 0 {
			blockID = r.ID
		}
	}
	publish := func(unenforced []int) *env {
		dir, err := state.Open(t.TempDir(), true)
		if err != nil {
			t.Fatal(err)
		}
		if err := dir.PutSet(rs); err != nil {
			t.Fatal(err)
		}
		if err := dir.PutContainer(state.Container{CgroupID: 77, ContainerID: "c1", ContainerName: "web", PodName: "web-1", PodNamespace: "shop",
			PolicySet: rs.Digest, Mode: policy.ModeEnforce, Unenforced: unenforced,
			Enforcers: map[policy.Class]string{policy.ClassSyscalls: "Seccomp"}}); err != nil {
			t.Fatal(err)
		}
		return envOf(testConfig(), dir, rs, 77)
	}
	e := publish(nil)
	for _, is32 := range []bool{false, true} {
		nr := syscall.SYS_FCHMOD
		if is32 {
			nr = 94
		}
		ev := events.Event{CgroupID: 77, BootNs: 1e9, PID: 40, TGID: 40, RuleID: uint32(blockID), SetID: e.setID, Retval: -int32(syscall.EPERM),
			Class: policy.ClassSyscalls, Action: policy.Block, Comm: "busybox", Syscall: nr, Syscall32: is32}
		// Through the ring buffer's encoding.
		dec, err := events.DecodeEvent(events.Encode(ev))
		if err != nil || dec.Class != policy.ClassSyscalls || dec.Syscall != nr || dec.Syscall32 != is32 {
			t.Fatalf("decoded %+v (%v)", dec, err)
		}
		e.t.Enforcement(&dec)
		got := e.alerts(t)
		if len(got) != 1 {
			t.Fatalf("%d alerts: %+v", len(got), got)
		}
		a := got[0]
		if a.Operation != alert.OpSyscall || a.Resource != "SYS_FCHMOD" || a.Enforcer != "BPFLSM" || a.PolicyName != "no-chmod" ||
			a.Action != "Block" || a.Result != alert.ResultPermissionDenied || !strings.Contains(a.Data, "syscall=SYS_FCHMOD") ||
			strings.Contains(a.Data, "abi=ia32") != is32 {
			t.Errorf("alert of the kernel's refusal (32-bit %t): %+v", is32, a)
		}
	}
	// The Audit rule's log record of the same call by the same executable:
	// BPF-LSM's rule decides it, and reported it already.
	rec := &SeccompRecord{PID: 40, Comm: "busybox", Exe: "/bin/busybox", Arch: 0xc000003e, Syscall: syscall.SYS_FCHMOD, Code: seccompRetLog}
	e.t.Seccomp(rec, 77)
	if got := e.alerts(t); len(got) != 0 {
		t.Errorf("a seccomp record of a call BPF-LSM decided: %+v", got)
	}
	// Another executable: the Audit rule, as before.
	rec.Exe = "/bin/sh"
	e.t.Seccomp(rec, 77)
	if got := e.alerts(t); len(got) != 1 || got[0].Action != "Audit" || got[0].Enforcer != "Seccomp" {
		t.Errorf("the Audit rule's record: %+v", got)
	}
	// No BPF-LSM: the rule is unenforced, decided from the record.
	e = publish([]int{blockID})
	rec.Exe = "/bin/busybox"
	e.t.Seccomp(rec, 77)
	if got := e.alerts(t); len(got) != 1 || got[0].Action != "Block" || got[0].Result != alert.ResultPassed || !strings.Contains(got[0].Data, "unenforced=true") {
		t.Errorf("the unenforced rule's record: %+v", got)
	}
}
