package seccomp_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"

	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/policy"
)

// node is an x86_64 node whose runtime takes seccomp flags.
var node = seccomp.Node{Arch: "amd64", LogRefusals: true}

func rules(t *testing.T, syscalls string) *policy.RuleSet {
	t.Helper()
	return policytest.Compile(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: sc, namespace: ns}
spec:
  selector: {matchLabels: {app: a}}
  syscalls:
`+syscalls)
}

// runtimeDefault has the shape of containerd's default profile: refuse by
// default, one long allow list, calls allowed under conditions on their
// arguments, clone3 refused with ENOSYS so that the C library falls back
// to clone.
func runtimeDefault() *api.LinuxSeccomp {
	return &api.LinuxSeccomp{
		DefaultAction: "SCMP_ACT_ERRNO",
		DefaultErrno:  &api.OptionalUInt32{Value: 1},
		Architectures: []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"},
		Syscalls: []*api.LinuxSyscall{
			{Names: []string{"getppid", "getpid", "read", "write", "mkdir", "chmod"}, Action: "SCMP_ACT_ALLOW"},
			{Names: []string{"personality"}, Action: "SCMP_ACT_ALLOW", Args: []*api.LinuxSeccompArg{{Index: 0, Value: 0, Op: "SCMP_CMP_EQ"}}},
			{Names: []string{"clone3"}, Action: "SCMP_ACT_ERRNO", ErrnoRet: &api.OptionalUInt32{Value: 38}},
		},
	}
}

// ruleFor returns the rules of pol that name n.
func ruleFor(pol *api.LinuxSeccomp, n string) []*api.LinuxSyscall {
	var out []*api.LinuxSyscall
	for _, r := range pol.Syscalls {
		if slices.Contains(r.Names, n) {
			out = append(out, r)
		}
	}
	return out
}

func only(t *testing.T, pol *api.LinuxSeccomp, n, action string, args int) {
	t.Helper()
	rs := ruleFor(pol, n)
	if len(rs) != 1 || rs[0].Action != action || len(rs[0].Args) != args {
		b, _ := json.Marshal(rs)
		t.Errorf("%s: %s, want one %s rule with %d args", n, b, action, args)
	}
}

func TestPlan(t *testing.T) {
	rs := rules(t, `    matchSyscalls:
    - syscall: [mkdir, getppid]
      action: Block
    - syscall: [chmod]
      action: Audit
    - syscall: [getpid]
    - syscall: [read]
      action: Allow
    - syscall: [unlink]
      fromSource: [{path: /bin/rm}]
      action: Block
    matchPaths:
    - path: /etc/
      syscall: [chmod]
      action: Block
`)
	p, err := seccomp.PlanFor(rs, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	// getpid has no action anywhere: syscall rules audit by default.
	if got := strings.Join(p.Blocked, ","); got != "getppid,mkdir" {
		t.Errorf("blocked %s", got)
	}
	if got := strings.Join(p.Logged, ","); got != "chmod,getpid,unlink" {
		t.Errorf("logged %s", got)
	}
	if len(p.Unenforced) != 2 {
		t.Fatalf("unenforced %v", p.Unenforced)
	}
	for _, u := range p.Unenforced {
		if u.Reason != seccomp.Unexpressible {
			t.Errorf("reason %q", u.Reason)
		}
	}
	if len(p.Enforced) != 4 {
		t.Errorf("enforced %v", p.Enforced)
	}

	// On a node whose BPF-LSM enforces the fromSource rule in the kernel,
	// the filter leaves it out: not logged, not unenforced.
	var fromSource int
	for _, r := range rs.Syscalls.Rules {
		if len(r.FromSource) > 0 {
			fromSource = r.ID
		}
	}
	n := seccomp.Node{Arch: "amd64", KernelSyscalls: func(*policy.RuleSet) []int { return []int{fromSource} }}
	k, err := seccomp.PlanOn(rs, n)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(k.Logged, ","); got != "chmod,getpid" {
		t.Errorf("logged with BPF-LSM %s", got)
	}
	if len(k.Unenforced) != 1 || k.Unenforced[0].Rule.Match.Path == "" || len(k.Kernel) != 1 || k.Kernel[0] != fromSource {
		t.Errorf("with BPF-LSM: unenforced %v, kernel %v", k.Unenforced, k.Kernel)
	}
	// Where no filter can be set, the kernel's rules still do not refuse
	// the container.
	d := seccomp.Decide(seccomp.Support{Reason: "no route"}, rules(t, `    matchSyscalls:
    - syscall: [unlink]
      fromSource: [{path: /bin/rm}]
      action: Block
`), seccomp.Node{Arch: "amd64", KernelSyscalls: func(rs *policy.RuleSet) []int { return []int{rs.Syscalls.Rules[0].ID} }}, nil)
	if d.Refuse != nil || len(d.Unenforced) != 0 || d.Policy != nil {
		t.Errorf("kernel-enforced Block, no filter: %+v", d)
	}
}

// Merged into the runtime default: what it refused stays refused, with
// its errno; blocked calls are refused outright, audited ones logged
// under the same conditions they were allowed under.
func TestBuildMerge(t *testing.T) {
	rs := rules(t, `    matchSyscalls:
    - syscall: [getppid, personality, clone3, unshare]
      action: Block
    - syscall: [chmod, mount]
      action: Audit
`)
	p, err := seccomp.PlanFor(rs, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	p.LogRefusals = true
	base := runtimeDefault()
	before, _ := json.Marshal(base)
	pol := seccomp.Build(p, "amd64", base)
	if after, _ := json.Marshal(base); string(after) != string(before) {
		t.Error("Build changed its base")
	}
	if pol.DefaultAction != "SCMP_ACT_ERRNO" || len(pol.Architectures) != 3 {
		t.Errorf("default %s %v", pol.DefaultAction, pol.Architectures)
	}
	only(t, pol, "getppid", "SCMP_ACT_ERRNO", 0)
	only(t, pol, "personality", "SCMP_ACT_ERRNO", 0) // its conditional allow is gone
	only(t, pol, "chmod", "SCMP_ACT_LOG", 0)
	only(t, pol, "getpid", "SCMP_ACT_ALLOW", 0)
	// Refused by the base already: its rule (clone3 → ENOSYS) stays, and
	// nothing is added for a call it refuses by default (unshare, mount).
	if r := ruleFor(pol, "clone3"); len(r) != 1 || r[0].ErrnoRet.GetValue() != 38 {
		t.Errorf("clone3 %v", r)
	}
	for _, n := range []string{"unshare", "mount"} {
		if r := ruleFor(pol, n); len(r) != 0 {
			t.Errorf("%s: %v", n, r)
		}
	}
	if !slices.Contains(pol.Flags, seccomp.FlagLog) {
		t.Errorf("flags %v", pol.Flags)
	}
	if pol.DefaultErrno != nil {
		t.Error("DefaultErrno is never carried by NRI")
	}
	for _, r := range ruleFor(pol, "getppid") {
		if r.ErrnoRet != nil {
			t.Error("Block is a plain SCMP_ACT_ERRNO (EPERM)")
		}
	}
}

// An audited call the base allows only under conditions is logged under
// those conditions, never allowed without them.
func TestBuildAuditKeepsConditions(t *testing.T) {
	p, err := seccomp.PlanFor(rules(t, "    matchSyscalls:\n    - syscall: [personality]\n      action: Audit\n"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	only(t, seccomp.Build(p, "amd64", runtimeDefault()), "personality", "SCMP_ACT_LOG", 1)
}

// Unconfined: a default-allow policy for the node's architectures.
func TestBuildUnconfined(t *testing.T) {
	p, err := seccomp.PlanFor(rules(t, "    matchSyscalls:\n    - syscall: [getppid]\n      action: Block\n    - syscall: [fchmodat]\n      action: Audit\n"), "arm64")
	if err != nil {
		t.Fatal(err)
	}
	pol := seccomp.Build(p, "arm64", nil)
	if pol.DefaultAction != "SCMP_ACT_ALLOW" || strings.Join(pol.Architectures, ",") != "SCMP_ARCH_AARCH64,SCMP_ARCH_ARM" {
		t.Errorf("%s %v", pol.DefaultAction, pol.Architectures)
	}
	only(t, pol, "getppid", "SCMP_ACT_ERRNO", 0)
	only(t, pol, "fchmodat", "SCMP_ACT_LOG", 0)
	if len(pol.Syscalls) != 2 {
		t.Errorf("rules %v", pol.Syscalls)
	}
}

func TestTable(t *testing.T) {
	for _, c := range []struct {
		rt    seccomp.Runtime
		route seccomp.Route
		crash bool
	}{
		{seccomp.Runtime{"containerd", "v2.4.2", "v0.12.3"}, seccomp.RouteMerge, false},
		{seccomp.Runtime{"containerd", "2.3.0", "v0.12.0"}, seccomp.RouteMerge, false},
		{seccomp.Runtime{"containerd", "v2.5.0", "v0.11.0"}, seccomp.RouteMerge, false}, // NRI's stub infers v0.11.0 past its table
		{seccomp.Runtime{"containerd", "v2.2.7", "v0.11.0"}, seccomp.RouteLocalhost, true},
		{seccomp.Runtime{"containerd", "v2.2.1", ""}, seccomp.RouteLocalhost, true}, // NRI inferred
		{seccomp.Runtime{"containerd", "v2.2.0", "v0.10.0"}, seccomp.RouteLocalhost, false},
		{seccomp.Runtime{"containerd", "v2.1.4", "unknown"}, seccomp.RouteLocalhost, false},
		{seccomp.Runtime{"containerd", "v1.7.30", "v0.8.0"}, seccomp.RouteLocalhost, false},
		{seccomp.Runtime{"cri-o", "1.36.3", "v0.11.0"}, seccomp.RouteLocalhost, true},
		{seccomp.Runtime{"cri-o", "1.37.0", "v0.12.2"}, seccomp.RouteLocalhost, false},
		{seccomp.Runtime{"podman", "5.0.0", ""}, seccomp.RouteNone, true},
	} {
		s := seccomp.Table(c.rt)
		if s.Route != c.route || s.ErrnoRetCrash != c.crash {
			t.Errorf("%s: route %s crash %v, want %s %v (%s)", c.rt, s.Route, s.ErrnoRetCrash, c.route, c.crash, s.Reason)
		}
		// Each runtime's file format; NRI used only by containerd 2.2.1 and
		// later for Unconfined containers (none with NRI < v0.10).
		wantFormat := map[string]seccomp.Format{"containerd": seccomp.FormatOCI, "cri-o": seccomp.FormatContainers}[c.rt.Name]
		if s.Format != wantFormat {
			t.Errorf("%s: format %q, want %q", c.rt, s.Format, wantFormat)
		}
		if want := c.rt.Name == "containerd" && (c.rt.Version == "v2.2.7" || c.rt.Version == "v2.2.1"); s.UnconfinedNRI != want {
			t.Errorf("%s: UnconfinedNRI %v", c.rt, s.UnconfinedNRI)
		}
		if s.Route != seccomp.RouteMerge && s.Reason == "" {
			t.Errorf("%s: no reason", c.rt)
		}
	}
}

// The requirement: a policy built for a runtime whose NRI crashes
// on ErrnoRet (v0.11.x) carries none. EPERM errnos are dropped (what a
// plain SCMP_ACT_ERRNO returns); another errno cannot be sent at all.
func TestNoErrnoRetForCrashingNRI(t *testing.T) {
	crashing := seccomp.Table(seccomp.Runtime{"containerd", "v2.2.5", "v0.11.0"})
	p, err := seccomp.PlanFor(rules(t, "    matchSyscalls:\n    - syscall: [getppid]\n      action: Block\n"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	eperm := seccomp.Build(p, "amd64", &api.LinuxSeccomp{DefaultAction: "SCMP_ACT_ALLOW", Syscalls: []*api.LinuxSyscall{
		{Names: []string{"mkdir"}, Action: "SCMP_ACT_ERRNO", ErrnoRet: &api.OptionalUInt32{Value: 1}},
	}})
	pol, err := seccomp.ForRuntime(crashing, eperm)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pol.Syscalls {
		if r.ErrnoRet != nil {
			t.Errorf("rule %v carries ErrnoRet %d", r.Names, r.ErrnoRet.Value)
		}
	}
	if pol.DefaultErrno != nil {
		t.Error("DefaultErrno set")
	}
	// The runtime default's clone3 → ENOSYS cannot be sent to it.
	if _, err := seccomp.ForRuntime(crashing, seccomp.Build(p, "amd64", runtimeDefault())); err == nil || !strings.Contains(err.Error(), "errno 38") {
		t.Errorf("ENOSYS rule: %v", err)
	}
	// Every route through Decide on such a runtime: no ErrnoRet.
	rs := rules(t, "    matchSyscalls:\n    - syscall: [getppid]\n      action: Block\n")
	for _, prof := range []api.SecurityProfile_ProfileType{api.SecurityProfile_UNCONFINED, api.SecurityProfile_RUNTIME_DEFAULT} {
		ctr := &api.Container{Linux: &api.LinuxContainer{SeccompProfile: &api.SecurityProfile{ProfileType: prof}, SeccompPolicy: runtimeDefault()}}
		d := seccomp.Decide(crashing, rs, node, ctr)
		if prof == api.SecurityProfile_UNCONFINED {
			// The Localhost route's fallback for an Unconfined container
			// whose pod names no profile: through NRI.
			d = seccomp.DecideLocalhost(crashing, rs, node, ctr, "")
			if d.Policy == nil {
				t.Errorf("containerd 2.2.5, Unconfined: no policy through NRI: %+v", d)
			}
		}
		if d.Policy == nil {
			if d.Refuse == nil {
				t.Errorf("%s: neither a policy nor a refusal", prof)
			}
			continue
		}
		for _, r := range d.Policy.Syscalls {
			if r.ErrnoRet != nil {
				t.Errorf("%s: rule %v carries ErrnoRet", prof, r.Names)
			}
		}
	}
	// A runtime with a fixed NRI keeps the errno.
	pol, err = seccomp.ForRuntime(seccomp.Table(seccomp.Runtime{"containerd", "v2.4.2", "v0.12.3"}), seccomp.Build(p, "amd64", runtimeDefault()))
	if err != nil || ruleFor(pol, "clone3")[0].ErrnoRet.GetValue() != 38 {
		t.Errorf("fixed NRI: %v", err)
	}
}

func TestDecide(t *testing.T) {
	block := rules(t, "    matchSyscalls:\n    - syscall: [getppid]\n      action: Block\n")
	audit := rules(t, "    matchSyscalls:\n    - syscall: [getppid]\n      action: Audit\n")
	merge := seccomp.Table(seccomp.Runtime{"containerd", "v2.4.2", "v0.12.3"})
	unconfOnly := seccomp.Table(seccomp.Runtime{"containerd", "v2.2.7", "v0.11.0"})
	crio := seccomp.Table(seccomp.Runtime{"cri-o", "1.36.3", "v0.11.0"})
	withDefault := &api.Container{Linux: &api.LinuxContainer{SeccompPolicy: runtimeDefault(),
		SeccompProfile: &api.SecurityProfile{ProfileType: api.SecurityProfile_RUNTIME_DEFAULT}}}
	unconfined := &api.Container{Linux: &api.LinuxContainer{SeccompProfile: &api.SecurityProfile{ProfileType: api.SecurityProfile_UNCONFINED}}}

	if d := seccomp.Decide(merge, block, node, withDefault); d.Policy == nil || d.Refuse != nil || d.Policy.DefaultAction != "SCMP_ACT_ERRNO" {
		t.Errorf("merge: %+v", d)
	}
	if d := seccomp.Decide(merge, block, node, unconfined); d.Policy == nil || d.Policy.DefaultAction != "SCMP_ACT_ALLOW" {
		t.Errorf("merge, unconfined: %+v", d)
	}
	const want = "/var/lib/kubelet/seccomp/nri-armor/x.json"
	// containerd 2.2.x: an Unconfined container whose pod names no profile
	// still takes default-allow + the rules through NRI (no ErrnoRet).
	if d := seccomp.DecideLocalhost(unconfOnly, block, node, unconfined, ""); d.Policy == nil || d.Refuse != nil || d.Localhost != "" {
		t.Errorf("2.2.x unconfined: %+v", d)
	}
	// With the runtime default and no profile named: refused, saying what to set.
	if d := seccomp.DecideLocalhost(unconfOnly, block, node, withDefault, ""); d.Policy != nil || d.Refuse == nil || !strings.Contains(d.Refuse.Error(), "names no Localhost seccomp profile") {
		t.Errorf("2.2.x runtime default: %+v", d)
	}
	localhost := &api.Container{Linux: &api.LinuxContainer{SeccompProfile: &api.SecurityProfile{ProfileType: api.SecurityProfile_LOCALHOST, LocalhostRef: want}}}
	if d := seccomp.DecideLocalhost(unconfOnly, block, node, localhost, want); d.Policy != nil || d.Refuse != nil || d.Localhost != want || len(d.Plan.Blocked) != 1 {
		t.Errorf("2.2.x localhost: %+v", d)
	}
	// The runtime shows another profile than the pod's annotation names.
	other := &api.Container{Linux: &api.LinuxContainer{SeccompProfile: &api.SecurityProfile{ProfileType: api.SecurityProfile_LOCALHOST, LocalhostRef: "/var/lib/kubelet/seccomp/mine.json"}}}
	for _, ctr := range []*api.Container{other, withDefault, unconfined} {
		if d := seccomp.DecideLocalhost(unconfOnly, block, node, ctr, want); d.Refuse == nil || d.Localhost != "" || !strings.Contains(d.Refuse.Error(), "not nri-armor's Localhost profile") {
			t.Errorf("2.2.x, the pod names %s, the runtime shows %v: %+v", want, ctr.Linux.SeccompProfile, d)
		}
	}
	// CRI-O shows nothing: the start gate checks the bundle.
	if d := seccomp.DecideLocalhost(crio, block, node, &api.Container{}, want); d.Policy != nil || d.Refuse != nil || d.Localhost != want {
		t.Errorf("cri-o localhost: %+v", d)
	}
	d := seccomp.DecideLocalhost(crio, block, node, withDefault, "")
	if d.Policy != nil || d.Refuse == nil || !strings.Contains(d.Refuse.Error(), "CRI-O never shows") || len(d.Unenforced) != 1 {
		t.Errorf("cri-o block: %+v", d)
	}
	// Audit rules that no filter can carry: started, reported unenforced.
	if d := seccomp.DecideLocalhost(crio, audit, node, withDefault, ""); d.Policy != nil || d.Refuse != nil || len(d.Unenforced) != 1 {
		t.Errorf("cri-o audit: %+v", d)
	}
	// A runtime not in the table.
	if d := seccomp.Decide(seccomp.Table(seccomp.Runtime{Name: "podman", Version: "5.0.0"}), block, node, withDefault); d.Refuse == nil {
		t.Errorf("podman: %+v", d)
	}
	// No syscall rules: nothing set, the container untouched.
	if d := seccomp.Decide(merge, rules(t, "    matchSyscalls:\n    - syscall: [read]\n      action: Allow\n"), node, withDefault); d.Policy != nil || d.Refuse != nil {
		t.Errorf("allow only: %+v", d)
	}
	// A call the node's architecture lacks refuses the container, naming the policy.
	old := rules(t, "    matchSyscalls:\n    - syscall: [open]\n      action: Block\n")
	if d := seccomp.Decide(merge, old, seccomp.Node{Arch: "arm64"}, withDefault); d.Refuse == nil || !strings.Contains(d.Refuse.Error(), `KubeArmorPolicy/ns/sc (spec.syscalls.matchSyscalls[0]): system call "open" does not exist on arm64`) {
		t.Errorf("arm64 open: %v", d.Refuse)
	}
}

// What Build makes carries the plan; what another plugin or the runtime
// put in its place does not.
func TestCarries(t *testing.T) {
	p, err := seccomp.PlanFor(rules(t, "    matchSyscalls:\n    - syscall: [getppid, unshare]\n      action: Block\n    - syscall: [chmod]\n      action: Audit\n"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	p.LogRefusals = true
	for _, base := range []*api.LinuxSeccomp{nil, runtimeDefault()} {
		if err := seccomp.Carries(seccomp.Build(p, "amd64", base), p); err != nil {
			t.Errorf("built: %v", err)
		}
	}
	if err := seccomp.Carries(runtimeDefault(), p); err == nil || !strings.Contains(err.Error(), "getppid") {
		t.Errorf("runtime default alone: %v", err)
	}
	if err := seccomp.Carries(nil, p); err == nil {
		t.Error("no filter carries nothing")
	}
	conditional := seccomp.Build(p, "amd64", nil)
	for _, r := range conditional.Syscalls {
		if slices.Contains(r.Names, "getppid") {
			r.Args = []*api.LinuxSeccompArg{{Index: 0, Value: 1, Op: "SCMP_CMP_EQ"}}
		}
	}
	if err := seccomp.Carries(conditional, p); err == nil || !strings.Contains(err.Error(), "only for some arguments") {
		t.Errorf("conditional: %v", err)
	}
	unlogged := seccomp.Build(p, "amd64", nil)
	unlogged.Flags = nil
	if err := seccomp.Carries(unlogged, p); err == nil {
		t.Error("no FLAG_LOG")
	}
	// Where the runtime takes no seccomp flags (runc < 1.2), none is set
	// nor asked for.
	p.LogRefusals = false
	if pol := seccomp.Build(p, "amd64", runtimeDefault()); len(pol.Flags) != 0 || seccomp.Carries(pol, p) != nil {
		t.Errorf("without LogRefusals: flags %v, %v", pol.Flags, seccomp.Carries(pol, p))
	}
	if err := seccomp.Carries(nil, seccomp.Plan{}); err != nil {
		t.Errorf("empty plan: %v", err)
	}
}
