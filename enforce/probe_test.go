package enforce

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

// TestProbeHost probes the machine the tests run on, by loading programs,
// and checks that every class's verdict follows from what loaded.
func TestProbeHost(t *testing.T) {
	testenv.RequireRoot(t)
	p := RunProbe()
	if p.Kernel == "" || p.Cgroup2 == "" {
		t.Fatalf("kernel %q cgroup2 %q", p.Kernel, p.Cgroup2)
	}
	if _, err := os.Stat(p.Cgroup2 + "/cgroup.procs"); err != nil {
		t.Fatalf("cgroup2 mount %s: %v", p.Cgroup2, err)
	}
	for _, c := range policy.Classes {
		if _, ok := p.Classes[c]; !ok {
			t.Fatalf("no verdict for class %s", c)
		}
	}
	lsm := p.Loads[loadLSM]
	lsmUsable := lsm.OK && contains(p.LSMs, "bpf")
	for _, c := range []policy.Class{policy.ClassProcess, policy.ClassFile, policy.ClassCapabilities} {
		s := p.Classes[c]
		if lsmUsable {
			if s.Backend != BackendBPFLSM || !s.Enforcing {
				t.Errorf("%s: LSM loads, but backend %+v", c, s)
			}
			continue
		}
		// Where LSM programs do not load (the CI machine's kernel refuses
		// every trampoline program), the class is audit only, and the
		// reason carries the loader's own error.
		if s.Backend != BackendAuditOnly || s.Enforcing || !strings.Contains(s.Reason, "BPF-LSM unavailable") {
			t.Errorf("%s: LSM unusable (%+v), but verdict %+v", c, lsm, s)
		}
		if !lsm.OK && !strings.Contains(s.Reason, lsm.Error) {
			t.Errorf("%s: reason %q lacks the load error %q", c, s.Reason, lsm.Error)
		}
		// What the telemetry that audits the class instead does not see.
		if c == policy.ClassFile && !strings.Contains(strings.Join(s.Unseen, ";"), "io_uring") {
			t.Errorf("file: audit only, but the telemetry's blind spots are not listed: %+v", s)
		}
	}
	if !lsmUsable {
		// cgroup-BPF works on every kernel nri-armor supports.
		if s := p.Classes[policy.ClassNetwork]; s.Backend != BackendCgroupBPF || !s.Enforcing {
			t.Errorf("network: %+v (loads %+v)", s, p.Loads)
		}
	}
	// Syscall rules are seccomp filters, on every kernel nri-armor
	// supports (this one has seccomp).
	if s := p.Classes[policy.ClassSyscalls]; s.Backend != BackendSeccomp || !s.Enforcing || !strings.Contains(s.Note, "containerd >= 2.3.0") {
		t.Errorf("syscalls: %+v", s)
	}
	if !contains(p.Seccomp.ActionsLogged, "log") || p.Seccomp.Advice == "" {
		t.Errorf("seccomp logs: %+v", p.Seccomp)
	}
	var out bytes.Buffer
	if err := p.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	want := []string{"kernel:", "cgroup2:", "lsm/file_open", "network", "syscalls      Seccomp     enforced: seccomp filters merged into the runtime default", "kernel.seccomp.actions_logged:"}
	if !lsmUsable {
		want = append(want, "telemetry does not see: 32-bit system calls")
	}
	for _, want := range want {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}
