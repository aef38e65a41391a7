package plugin

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/ocihook"
	"github.com/nri-armor/nri-armor/policy"
)

// bundleSeccomp is pol as a bundle's config.json holds it.
func bundleSeccomp(t *testing.T, pol *api.LinuxSeccomp) json.RawMessage {
	t.Helper()
	if pol == nil {
		return json.RawMessage("null")
	}
	o := rspec.LinuxSeccomp{DefaultAction: rspec.LinuxSeccompAction(pol.DefaultAction), Syscalls: api.ToOCILinuxSyscalls(pol.Syscalls)}
	for _, a := range pol.Architectures {
		o.Architectures = append(o.Architectures, rspec.Arch(a))
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSeccompLocalhostCRIO: on CRI-O (no seccomp policy shown, NRI v0.11's
// ErrnoRet crash) a container with syscall Block rules gets them through
// the Localhost profile its pod names: written at RunPodSandbox, nothing
// sent through NRI, the bundle checked at the start gate (attacks: another
// profile, Unconfined, a rule missing or weaker), rewritten on a policy
// edit, removed with the pod; a pod that names none, or another pod's, is
// refused.
func TestSeccompLocalhostCRIO(t *testing.T) {
	ctx := context.Background()
	p, root := localhostPlugin(t, "cri-o", "1.36.3")
	if s := p.Runtime(); s.Route != seccomp.RouteLocalhost || s.Format != seccomp.FormatContainers {
		t.Fatalf("runtime %+v", s)
	}
	labels := map[string]string{"app": "web"}
	ann := map[string]string{policy.AnnotationPolicies: "no-getppid"}
	name := seccomp.ProfileName(policy.Pod{Namespace: "shop", Labels: labels, Annotations: ann}, "app", seccomp.BaseDefault)
	ann[seccomp.ProfileAnnotation+"app"] = name
	sb := &api.PodSandbox{Id: "pod-1", Name: "web-0", Namespace: "shop", Uid: "uid-1", Labels: labels, Annotations: ann}
	if err := p.RunPodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, name)
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("profile not written at RunPodSandbox: %v", err)
	}
	if !strings.Contains(string(body), `"getppid"`) || !strings.Contains(string(body), "nri-armor: syscall Block rules") {
		t.Errorf("profile %s: %.300s", file, body)
	}

	create := func(id string, pod *api.PodSandbox) (*api.ContainerAdjustment, error) {
		adj, _, err := p.CreateContainer(ctx, pod, &api.Container{Id: id, PodSandboxId: pod.Id, Name: "app"})
		return adj, err
	}
	adj, err := create("ctr-1", sb)
	if err != nil {
		t.Fatal(err)
	}
	if adj.GetLinux().GetSeccompPolicy() != nil {
		t.Error("a seccomp policy sent through NRI on CRI-O")
	}
	plan, err := seccomp.PlanOn(p.containers["ctr-1"].set, p.sc)
	if err != nil {
		t.Fatal(err)
	}
	good := seccomp.Build(plan, "amd64", defaultPolicy()) // as CRI-O resolves the file
	missing := defaultPolicy()                            // allows getppid
	weaker := seccomp.Build(plan, "amd64", defaultPolicy())
	for _, r := range weaker.Syscalls {
		for i, n := range r.Names {
			if n == "getppid" {
				r.Names[i] = "getpid"
			}
		}
	}
	weaker.Syscalls = append(weaker.Syscalls, &api.LinuxSyscall{Names: []string{"getppid"}, Action: "SCMP_ACT_LOG"})
	other := filepath.Join(root, seccomp.ProfileName(policy.Pod{Namespace: "shop", Labels: map[string]string{"app": "db"}}, "app", seccomp.BaseDefault))
	for what, c := range map[string]struct {
		pol *api.LinuxSeccomp
		ref string
	}{
		"another pod's profile": {good, other},
		"a profile of its own":  {good, filepath.Join(root, "mine.json")},
		"unconfined":            {nil, "Unconfined"},
		"runtime default":       {defaultPolicy(), "RuntimeDefault"},
		"a rule missing":        {missing, file},
		"a weaker action":       {weaker, file},
	} {
		err := p.Gate(ctx, ocihook.Request{ContainerID: "ctr-1", PID: 1, SpecRead: true, Seccomp: bundleSeccomp(t, c.pol), SeccompRef: c.ref})
		if err == nil || !strings.Contains(err.Error(), "refusing to start it") || !strings.Contains(err.Error(), "pod shop/web-0 container app") {
			t.Errorf("bundle with %s: %v; want it refused, naming the pod and container", what, err)
		}
	}
	if err := p.checkBundle(ocihook.Request{ContainerID: "ctr-1", PID: 1}); err == nil {
		t.Error("a spec the hook could not read: not refused")
	}
	// StartContainer refuses one whose bundle no hook checked.
	if _, err := create("ctr-2", sb); err != nil {
		t.Fatal(err)
	}
	if err := p.StartContainer(ctx, sb, &api.Container{Id: "ctr-2", PodSandboxId: sb.Id, Name: "app", Pid: 1}); err == nil || !strings.Contains(err.Error(), "no runtime hook") {
		t.Errorf("unchecked start: %v", err)
	}
	if err := p.checkBundle(ocihook.Request{ContainerID: "ctr-1", PID: 1, SpecRead: true, Seccomp: bundleSeccomp(t, good), SeccompRef: file}); err != nil {
		t.Errorf("its own profile: %v", err)
	}
	if !p.containers["ctr-1"].filter.checked {
		t.Error("not marked checked")
	}
	// Another plugin setting a seccomp policy replaces the profile.
	req := &api.ValidateContainerAdjustmentRequest{Container: &api.Container{Id: "ctr-1"}, Adjust: &api.ContainerAdjustment{Linux: &api.LinuxContainerAdjustment{SeccompPolicy: defaultPolicy()}}}
	if err := p.ValidateContainerAdjustment(ctx, req); err == nil || !strings.Contains(err.Error(), "replace nri-armor's Localhost profile") {
		t.Errorf("policy set by another plugin: %v", err)
	}

	// A pod that names no profile: refused at create, saying what to set.
	plain := &api.PodSandbox{Id: "pod-2", Name: "web-1", Namespace: "shop", Uid: "uid-2", Labels: labels, Annotations: map[string]string{policy.AnnotationPolicies: "no-getppid"}}
	if err := p.RunPodSandbox(ctx, plain); err != nil {
		t.Fatal(err)
	}
	if _, err := create("ctr-3", plain); err == nil || !strings.Contains(err.Error(), "names no Localhost seccomp profile") || !strings.Contains(err.Error(), "web-1") {
		t.Errorf("no profile named: %v", err)
	}
	// A pod naming another's profile (labels changed): the pod fails.
	stolen := &api.PodSandbox{Id: "pod-3", Name: "db-0", Namespace: "shop", Uid: "uid-3", Labels: map[string]string{"app": "db"},
		Annotations: map[string]string{policy.AnnotationPolicies: "no-getppid", seccomp.ProfileAnnotation + "app": name}}
	if err := p.RunPodSandbox(ctx, stolen); err == nil || !strings.Contains(err.Error(), "changed since admission") {
		t.Errorf("another pod's profile: %v", err)
	}

	// A policy edit rewrites the file; the pod's removal removes it.
	edited := strings.Replace(syscallPolicies, "syscall: [getppid]", "syscall: [getppid, getcpu]", 1)
	if err := p.Reapply(ctx, catalogOf(t, edited)); err != nil {
		t.Logf("reapply: %v", err)
	}
	if b, _ := os.ReadFile(file); !strings.Contains(string(b), `"getcpu"`) {
		t.Errorf("not rewritten on a policy edit: %.300s", b)
	}
	// The container created before the edit keeps the profile it was
	// created with (its filter cannot change): the gate still checks it.
	if f := p.containers["ctr-1"].filter; f == nil || f.localhost == nil || f.localhost.Path != file || !f.checked {
		t.Errorf("filter after the edit: %+v", f)
	}
	if err := p.RemovePodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("profile kept after its pod: %v", err)
	}
}

// TestSeccompLocalhostContainerd22: containerd 2.2.x shows the profile: a
// container whose runtime shows another than its pod's annotation names is
// refused at create; its bundle must be the file exactly.
func TestSeccompLocalhostContainerd22(t *testing.T) {
	ctx := context.Background()
	p, root := localhostPlugin(t, "containerd", "v2.2.7")
	labels := map[string]string{"app": "web"}
	ann := map[string]string{policy.AnnotationPolicies: "no-getppid"}
	name := seccomp.ProfileName(policy.Pod{Namespace: "shop", Labels: labels, Annotations: ann}, "app", seccomp.BaseDefault)
	ann[seccomp.ProfileAnnotation+"app"] = name
	sb := &api.PodSandbox{Id: "pod-1", Name: "web-0", Namespace: "shop", Uid: "uid-1", Labels: labels, Annotations: ann}
	if err := p.RunPodSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, name)
	var o rspec.LinuxSeccomp
	if b, err := os.ReadFile(file); err != nil || json.Unmarshal(b, &o) != nil || o.DefaultAction != "SCMP_ACT_ERRNO" {
		t.Fatalf("profile: %v %+v", err, o.DefaultAction)
	}
	shown := func(typ api.SecurityProfile_ProfileType, ref string) *api.Container {
		return &api.Container{Id: "ctr-1", PodSandboxId: sb.Id, Name: "app", Linux: &api.LinuxContainer{SeccompProfile: &api.SecurityProfile{ProfileType: typ, LocalhostRef: ref}}}
	}
	for _, ctr := range []*api.Container{shown(api.SecurityProfile_RUNTIME_DEFAULT, ""), shown(api.SecurityProfile_LOCALHOST, filepath.Join(root, "mine.json")), shown(api.SecurityProfile_UNCONFINED, "")} {
		if _, _, err := p.CreateContainer(ctx, sb, ctr); err == nil || !strings.Contains(err.Error(), "not nri-armor's Localhost profile") {
			t.Errorf("shown %v: %v", ctr.Linux.SeccompProfile, err)
		}
	}
	adj, _, err := p.CreateContainer(ctx, sb, shown(api.SecurityProfile_LOCALHOST, file))
	if err != nil || adj.GetLinux().GetSeccompPolicy() != nil {
		t.Fatalf("its own profile: %v %v", err, adj)
	}
	if err := p.checkBundle(ocihook.Request{ContainerID: "ctr-1", PID: 1, SpecRead: true, Seccomp: mustJSON(t, o)}); err != nil {
		t.Errorf("the file as containerd copies it: %v", err)
	}
	// The rules alone on a default-allow filter: not the runtime default.
	plan := p.containers["ctr-1"].filter.plan
	if err := p.checkBundle(ocihook.Request{ContainerID: "ctr-1", PID: 1, SpecRead: true, Seccomp: bundleSeccomp(t, seccomp.Build(plan, "amd64", nil))}); err == nil {
		t.Error("default-allow with the rules: passed")
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// localhostPlugin is a plugin with the start gate on x86_64, connected to
// runtime version, writing its Localhost profiles under root.
func localhostPlugin(t *testing.T, runtime, version string) (p *Plugin, root string) {
	t.Helper()
	root = t.TempDir()
	p = seccompPlugin(t, syscallPolicies, func(c *Config) {
		c.SeccompProfileRoot = root
		c.Arch = "amd64"
		c.Hook = ocihook.Spec{Binary: "/opt/nri-armor/bin/nri-armor-hook", Socket: "/run/nri-armor/gate.sock"}
	})
	if _, err := p.Configure(context.Background(), "", runtime, version); err != nil {
		t.Fatal(err)
	}
	return p, root
}
