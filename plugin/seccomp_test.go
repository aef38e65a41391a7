package plugin

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"

	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/ocihook"
	"github.com/nri-armor/nri-armor/policy"
)

const syscallPolicies = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-getppid, namespace: shop}
spec:
  syscalls:
    matchSyscalls:
    - syscall: [getppid]
      action: Block
    - syscall: [fchmodat]
      action: Audit
---
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: old-names, namespace: shop}
spec:
  syscalls:
    matchSyscalls:
    - syscall: [open]
      action: Block
`

// defaultPolicy is what containerd 2.4 shows of a RuntimeDefault container.
func defaultPolicy() *api.LinuxSeccomp {
	return &api.LinuxSeccomp{DefaultAction: "SCMP_ACT_ERRNO", Architectures: seccomp.Arches("amd64"), Syscalls: []*api.LinuxSyscall{
		{Names: []string{"getppid", "getpid", "fchmodat", "read"}, Action: "SCMP_ACT_ALLOW"},
		{Names: []string{"clone3"}, Action: "SCMP_ACT_ERRNO", ErrnoRet: &api.OptionalUInt32{Value: 38}},
	}}
}

// seccompPlugin is a plugin over the policies docs, its config changed by
// set (nil: as is).
func seccompPlugin(t *testing.T, docs string, set func(*Config)) *Plugin {
	t.Helper()
	cfg := Config{Catalog: catalogOf(t, docs), Defaults: trusting("shop"), Backend: &recorder{}}
	if set != nil {
		set(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func createWith(t *testing.T, rt *runtime, sb *api.PodSandbox, id string, pol *api.LinuxSeccomp) (*api.CreateContainerResponse, error) {
	t.Helper()
	ctr := &api.Container{Id: id, PodSandboxId: sb.Id, Name: "app", State: api.ContainerState_CONTAINER_CREATED,
		Linux: &api.LinuxContainer{SeccompPolicy: pol}}
	return rt.NRI.CreateContainer(context.Background(), &api.CreateContainerRequest{Pod: sb, Container: ctr})
}

// Through the real NRI runtime side (containerd 2.4.2's route: merge): the
// filter is the runtime default with the rules merged in, it passes
// nri-armor's own validation of the final adjustment, and a container
// without syscall rules gets no seccomp adjustment at all.
func TestSeccompAdjustment(t *testing.T) {
	p := seccompPlugin(t, syscallPolicies+"---\n"+policies, func(c *Config) { c.SeccompLogRefusals = true })
	rt := newRuntime(t)
	rt.connect(p)
	if s := p.Runtime(); s.Route != seccomp.RouteMerge || s.Runtime.Name != "containerd" || s.Runtime.Version != "v2.4.2" {
		t.Fatalf("runtime %+v", s)
	}
	sb := rt.RunPod("pod-1", "shop", "web-0", nil, map[string]string{policy.AnnotationPolicies: "no-getppid"})
	resp, err := createWith(t, rt, sb, "ctr-1", defaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	pol := resp.GetAdjust().GetLinux().GetSeccompPolicy()
	if pol == nil || pol.DefaultAction != "SCMP_ACT_ERRNO" || !slices.Contains(pol.Flags, seccomp.FlagLog) {
		t.Fatalf("policy %v", pol)
	}
	plan, _ := seccomp.PlanFor(p.containers["ctr-1"].set, "amd64")
	plan.LogRefusals = true
	if err := seccomp.Carries(pol, plan); err != nil {
		t.Fatal(err)
	}
	// Unconfined: default-allow plus the rules.
	resp, err = createWith(t, rt, sb, "ctr-2", nil)
	if err != nil || resp.GetAdjust().GetLinux().GetSeccompPolicy().GetDefaultAction() != "SCMP_ACT_ALLOW" {
		t.Fatalf("unconfined: %v %v", err, resp.GetAdjust().GetLinux().GetSeccompPolicy())
	}
	// No syscall rules (a network policy only), and no policy at all.
	for _, ann := range []map[string]string{{policy.AnnotationPolicies: "no-raw"}, nil} {
		other := rt.RunPod("pod-"+ann[policy.AnnotationPolicies], "shop", "x", nil, ann)
		resp, err := createWith(t, rt, other, "ctr-"+ann[policy.AnnotationPolicies], defaultPolicy())
		if err != nil || resp.GetAdjust().GetLinux().GetSeccompPolicy() != nil {
			t.Fatalf("%v: %v, policy %v (want none)", ann, err, resp.GetAdjust().GetLinux().GetSeccompPolicy())
		}
	}
	// Enforcers: the syscalls class is Seccomp's, its rules not unenforced.
	c := p.containers["ctr-1"]
	c.cgroupID = 1
	if err := p.enforce(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if c.enforcers[policy.ClassSyscalls] != seccomp.Enforcer || len(c.unenforced) != 0 {
		t.Errorf("enforcers %v unenforced %v", c.enforcers, c.unenforced)
	}

	// The start gate: the bundle must carry the filter.
	if err := p.checkBundle(ocihook.Request{ContainerID: "ctr-1", SpecRead: true, Seccomp: []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ALLOW"}]}`)}); err == nil || !strings.Contains(err.Error(), "lets getppid through") {
		t.Errorf("bundle without the rule: %v", err)
	}
	if err := p.checkBundle(ocihook.Request{ContainerID: "ctr-1", SpecRead: true}); err == nil || !strings.Contains(err.Error(), "no seccomp filter") {
		t.Errorf("bundle without seccomp: %v", err)
	}
	if err := p.checkBundle(ocihook.Request{ContainerID: "ctr-1", SpecRead: true, Seccomp: []byte(`{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"},{"names":["fchmodat"],"action":"SCMP_ACT_LOG"}]}`)}); err != nil {
		t.Errorf("bundle with the filter: %v", err)
	}
}

// A plugin after nri-armor that replaces the seccomp policy: NRI refuses
// the second owner, and the container is not created.
func TestSeccompReplacedByAnotherPlugin(t *testing.T) {
	p := seccompPlugin(t, syscallPolicies, nil)
	rt := newRuntime(t)
	rt.connect(p)
	other, err := stub.New(&replacer{}, stub.WithPluginName("replacer"), stub.WithPluginIdx("20"), stub.WithSocketPath(rt.Sock))
	if err != nil {
		t.Fatal(err)
	}
	rt.Connect(other)
	sb := rt.RunPod("pod-1", "shop", "web-0", nil, map[string]string{policy.AnnotationPolicies: "no-getppid"})
	if _, err := createWith(t, rt, sb, "ctr-1", defaultPolicy()); err == nil {
		t.Fatal("created with another plugin's seccomp policy")
	}
}

type replacer struct{}

func (replacer) CreateContainer(context.Context, *api.PodSandbox, *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	a := &api.ContainerAdjustment{}
	a.SetLinuxSeccompPolicy(&api.LinuxSeccomp{DefaultAction: "SCMP_ACT_ALLOW"})
	return a, nil, nil
}

// Rules naming calls the node's architecture lacks refuse the container
// at creation, naming the policy.
func TestSeccompArchRefuses(t *testing.T) {
	p := seccompPlugin(t, syscallPolicies, func(c *Config) { c.Arch = "arm64" })
	rt := newRuntime(t)
	rt.connect(p)
	sb := rt.RunPod("pod-1", "shop", "web-0", nil, map[string]string{policy.AnnotationPolicies: "old-names"})
	_, err := createWith(t, rt, sb, "ctr-1", defaultPolicy())
	if err == nil || !strings.Contains(err.Error(), `KubeArmorPolicy/shop/old-names (spec.syscalls.matchSyscalls[0]): system call "open" does not exist on arm64`) {
		t.Fatalf("got %v", err)
	}
	if _, ok := p.containerState("ctr-1"); ok {
		t.Error("refused container still tracked")
	}
}

// After a restart, Synchronize finds what each running container's filter
// really is: one whose policy (as the runtime shows it) carries the rules
// counts as enforced by Seccomp, one created without them (nri-armor was
// down, the pod tolerated it) has its syscall rules unenforced.
func TestSeccompSynchronize(t *testing.T) {
	p := seccompPlugin(t, syscallPolicies, nil)
	p.runtime = seccomp.Table(seccomp.Runtime{Name: "containerd", Version: "v2.4.2", NRIVersion: "v0.12.3"})
	sb := &api.PodSandbox{Id: "pod-1", Namespace: "shop", Name: "web-0", Annotations: map[string]string{policy.AnnotationPolicies: "no-getppid"}}
	plan := seccomp.Plan{Blocked: []string{"getppid"}, Logged: []string{"fchmodat"}}
	with := &api.Container{Id: "with", PodSandboxId: "pod-1", Name: "a", State: api.ContainerState_CONTAINER_CREATED,
		Linux: &api.LinuxContainer{SeccompPolicy: seccomp.Build(plan, "amd64", defaultPolicy())}}
	without := &api.Container{Id: "without", PodSandboxId: "pod-1", Name: "b", State: api.ContainerState_CONTAINER_CREATED,
		Linux: &api.LinuxContainer{SeccompPolicy: defaultPolicy()}}
	if _, err := p.Synchronize(context.Background(), []*api.PodSandbox{sb}, []*api.Container{with, without}); err != nil {
		t.Fatal(err)
	}
	for id, installed := range map[string]bool{"with": true, "without": false} {
		c := p.containers[id]
		if c == nil || c.filter == nil || c.filter.installed != installed {
			t.Fatalf("%s: filter %+v, want installed %v", id, c.filter, installed)
		}
		enf, un := withFilter(c.filter, c.set, nil, nil)
		if (enf[policy.ClassSyscalls] == seccomp.Enforcer) != installed || (len(un) == 0) != installed {
			t.Errorf("%s: enforcers %v unenforced %v", id, enf, un)
		}
	}
}

// A policy edit cannot change a running container's filter: the same
// syscall rules stay enforced, changed ones are unenforced (with why)
// until the container is created again.
func TestSeccompPolicyEdit(t *testing.T) {
	p := seccompPlugin(t, syscallPolicies, nil)
	rt := newRuntime(t)
	rt.connect(p)
	sb := rt.RunPod("pod-1", "shop", "web-0", nil, map[string]string{policy.AnnotationPolicies: "no-getppid"})
	if _, err := createWith(t, rt, sb, "ctr-1", defaultPolicy()); err != nil {
		t.Fatal(err)
	}
	// The same rules, another severity: still enforced.
	same := strings.Replace(syscallPolicies, "spec:\n  syscalls:", "spec:\n  severity: 9\n  syscalls:", 1)
	if err := p.Reapply(context.Background(), catalogOf(t, same)); err != nil {
		t.Fatal(err)
	}
	c := p.containers["ctr-1"]
	if enf, un := withFilter(c.filter, c.set, nil, nil); enf[policy.ClassSyscalls] != seccomp.Enforcer || len(un) != 0 {
		t.Errorf("same rules: enforcers %v unenforced %v", enf, un)
	}
	changed := strings.Replace(syscallPolicies, "[getppid]", "[getpid]", 1)
	if err := p.Reapply(context.Background(), catalogOf(t, changed)); err != nil {
		t.Fatal(err)
	}
	c = p.containers["ctr-1"]
	enf, un := withFilter(c.filter, c.set, nil, nil)
	if enf[policy.ClassSyscalls] != "" || len(un) != 2 || !strings.Contains(c.filter.unenforced[0].Reason, "cannot change") {
		t.Errorf("changed rules: enforcers %v unenforced %v (%+v)", enf, un, c.filter.unenforced)
	}
}

// kernelBackend is a backend whose BPF-LSM enforces syscall rules with
// fromSource in the kernel (enforce.SyscallEnforcer).
type kernelBackend struct{ recorder }

func (*kernelBackend) KernelSyscalls(rs *policy.RuleSet) []int {
	var ids []int
	for _, r := range rs.Syscalls.Rules {
		if len(r.FromSource) > 0 {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// Where the backend enforces a fromSource syscall rule in the kernel, the
// filter does not log its call and the rule is not published unenforced;
// with a backend that does not, it is logged and unenforced, as before.
func TestSeccompFromSourceByBPFLSM(t *testing.T) {
	const docs = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-chmod, namespace: shop}
spec:
  syscalls:
    matchSyscalls:
    - syscall: [getppid]
      action: Block
    - syscall: [fchmodat]
      fromSource: [{path: /bin/busybox}]
      action: Block
`
	for _, kernel := range []bool{true, false} {
		p := seccompPlugin(t, docs, func(c *Config) {
			if kernel {
				c.Backend = &kernelBackend{}
			}
		})
		rt := newRuntime(t)
		rt.connect(p)
		sb := rt.RunPod("pod-1", "shop", "web-0", nil, map[string]string{policy.AnnotationPolicies: "no-chmod"})
		resp, err := createWith(t, rt, sb, "ctr-1", defaultPolicy())
		if err != nil {
			t.Fatal(err)
		}
		logged := false
		for _, s := range resp.GetAdjust().GetLinux().GetSeccompPolicy().GetSyscalls() {
			if s.Action == seccomp.ActLog && slices.Contains(s.Names, "fchmodat") {
				logged = true
			}
		}
		c := p.containers["ctr-1"]
		c.cgroupID = 1
		if err := p.enforce(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		if logged == kernel || (len(c.unenforced) == 0) != kernel || c.enforcers[policy.ClassSyscalls] != seccomp.Enforcer {
			t.Errorf("BPF-LSM enforcing fromSource %t: fchmodat logged %t, unenforced %v, enforcers %v", kernel, logged, c.unenforced, c.enforcers)
		}
	}
}
