package seccomp_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	pcseccomp "go.podman.io/common/pkg/seccomp"
	"google.golang.org/protobuf/proto"

	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/policy"
)

const blockAudit = "    matchSyscalls:\n    - syscall: [getcpu]\n      action: Block\n    - syscall: [getpgid]\n      action: Audit\n"

func plan(t *testing.T, syscalls string) seccomp.Plan {
	t.Helper()
	p, err := seccomp.PlanOn(rules(t, syscalls), node)
	if err != nil {
		t.Fatal(err)
	}
	p.LogRefusals = node.LogRefusals
	return p
}

func TestProfileName(t *testing.T) {
	pod := policy.Pod{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}}
	a := seccomp.ProfileName(pod, "main", seccomp.BaseDefault)
	if !strings.HasPrefix(a, "nri-armor/nri-armor.shop.main.") || !strings.HasSuffix(a, ".json") || strings.HasSuffix(a, ".unconfined.json") {
		t.Errorf("name %s", a)
	}
	// The pod's name is no part of it (replicas share it); its labels are.
	if b := seccomp.ProfileName(policy.Pod{Namespace: "shop", Name: "web-2", Labels: map[string]string{"app": "web"}}, "main", seccomp.BaseDefault); b != a {
		t.Errorf("replica: %s != %s", b, a)
	}
	if b := seccomp.ProfileName(policy.Pod{Namespace: "shop", Labels: map[string]string{"app": "db"}}, "main", seccomp.BaseDefault); b == a {
		t.Errorf("other labels, same name %s", b)
	}
	u := seccomp.ProfileName(pod, "main", seccomp.BaseUnconfined)
	for name, want := range map[string]seccomp.Base{a: seccomp.BaseDefault, u: seccomp.BaseUnconfined} {
		if b, ok := seccomp.ParseProfileName(name); !ok || b != want {
			t.Errorf("parse %s: %s %v", name, b, ok)
		}
	}
	for _, bad := range []string{"other/x.json", "nri-armor/other.json", "nri-armor/nri-armor.a/../b.json", "nri-armor/nri-armor.a"} {
		if _, ok := seccomp.ParseProfileName(bad); ok {
			t.Errorf("%s parsed as nri-armor's", bad)
		}
	}
}

// containerd's Localhost profile is its default (the real one, from
// contrib/seccomp) with the rules merged: what it refused stays refused
// (clone3 → ENOSYS), getcpu is refused, getpgid logged.
func TestProfileOCI(t *testing.T) {
	p := plan(t, blockAudit)
	b, err := seccomp.Profile(seccomp.FormatOCI, p, "amd64", seccomp.BaseDefault)
	if err != nil {
		t.Fatal(err)
	}
	var o rspec.LinuxSeccomp
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	pol := api.FromOCILinuxSeccomp(&o)
	if pol.DefaultAction != "SCMP_ACT_ERRNO" || !slices.Equal(pol.Architectures, seccomp.Arches("amd64")) || !slices.Contains(pol.Flags, seccomp.FlagLog) {
		t.Errorf("default %s arches %v flags %v", pol.DefaultAction, pol.Architectures, pol.Flags)
	}
	only(t, pol, "getcpu", "SCMP_ACT_ERRNO", 0)
	only(t, pol, "getpgid", "SCMP_ACT_LOG", 0)
	if r := ruleFor(pol, "clone3"); len(r) != 1 || r[0].ErrnoRet.GetValue() != 38 {
		t.Errorf("clone3: %v", r)
	}
	if err := seccomp.Carries(pol, p); err != nil {
		t.Error(err)
	}
	// containerd >= 2.3 merges through NRI into the profile a pod names:
	// into nri-armor's own, which changes nothing the filter decides.
	again := seccomp.Build(p, "amd64", pol)
	if err := seccomp.Carries(again, p); err != nil || len(again.Syscalls) != len(pol.Syscalls) {
		t.Errorf("merged into its own profile: %v, %d rules from %d", err, len(again.Syscalls), len(pol.Syscalls))
	}
	// Every call containerd's default allows is still allowed (or logged).
	def := seccomp.ContainerdDefault()
	for _, r := range def.Syscalls {
		for _, n := range r.Names {
			if r.Action == "SCMP_ACT_ALLOW" && n != "getcpu" && n != "getpgid" && len(ruleFor(pol, n)) == 0 {
				t.Errorf("%s lost", n)
			}
		}
	}
	u, err := seccomp.Profile(seccomp.FormatOCI, p, "amd64", seccomp.BaseUnconfined)
	if err != nil || !strings.Contains(string(u), `"defaultAction": "SCMP_ACT_ALLOW"`) {
		t.Errorf("unconfined: %v %s", err, u)
	}
}

// CRI-O's is containers/common's default as CRI-O changes it, with the
// rules; each rule keeps its includes and excludes, which CRI-O resolves.
func TestProfileContainers(t *testing.T) {
	p := plan(t, "    matchSyscalls:\n    - syscall: [getcpu, clone]\n      action: Block\n    - syscall: [getpgid, unshare]\n      action: Audit\n")
	b, err := seccomp.Profile(seccomp.FormatContainers, p, "amd64", seccomp.BaseDefault)
	if err != nil {
		t.Fatal(err)
	}
	var prof pcseccomp.Seccomp
	if err := json.Unmarshal(b, &prof); err != nil {
		t.Fatal(err)
	}
	if prof.DefaultAction != pcseccomp.ActErrno || len(prof.ArchMap) == 0 || !slices.Contains(prof.Flags, seccomp.FlagLog) {
		t.Errorf("default %s archMap %v flags %v", prof.DefaultAction, prof.ArchMap, prof.Flags)
	}
	var blockRule, unshareLog, unshareAllow int
	for _, s := range prof.Syscalls {
		names := append([]string{s.Name}, s.Names...)
		for _, n := range []string{"getcpu", "clone"} {
			if slices.Contains(names, n) {
				if s.Action != pcseccomp.ActErrno || len(s.Args) > 0 || len(s.Includes.Caps)+len(s.Excludes.Caps)+len(s.Includes.Arches)+len(s.Excludes.Arches) > 0 {
					t.Errorf("blocked %s in %+v", n, s)
				}
				blockRule++
			}
		}
		if slices.Contains(names, "getpgid") && s.Action != pcseccomp.ActLog {
			t.Errorf("getpgid in %+v", s)
		}
		if slices.Contains(names, "unshare") {
			switch s.Action {
			case pcseccomp.ActLog:
				unshareLog++
				if !slices.Equal(s.Includes.Caps, []string{"CAP_SYS_ADMIN"}) {
					t.Errorf("unshare logged without CRI-O's condition: %+v", s)
				}
			case pcseccomp.ActAllow:
				unshareAllow++
			}
		}
	}
	if blockRule != 2 || unshareLog != 1 || unshareAllow != 0 {
		t.Errorf("block rules %d, unshare log %d allow %d", blockRule, unshareLog, unshareAllow)
	}
	// CRI-O's own changes are there: clone3 refused ENOSYS without CAP_SYS_ADMIN.
	if !strings.Contains(string(b), `"ENOSYS"`) {
		t.Error("clone3's ENOSYS lost")
	}
	if _, err := seccomp.CRIODefault(); err != nil {
		t.Error(err)
	}
	u, err := seccomp.Profile(seccomp.FormatContainers, p, "amd64", seccomp.BaseUnconfined)
	if err != nil || !strings.Contains(string(u), `"defaultAction": "SCMP_ACT_ALLOW"`) || !strings.Contains(string(u), `"SCMP_ARCH_X32"`) {
		t.Errorf("unconfined: %v %s", err, u)
	}
	if _, err := seccomp.Profile(seccomp.FormatContainers, p, "riscv64", seccomp.BaseDefault); err == nil {
		t.Error("riscv64: no error")
	}
}

// The start gate's check of a bundle on the Localhost route, and the
// attacks on it.
func TestCheckBundle(t *testing.T) {
	p := plan(t, blockAudit)
	const path = "/var/lib/kubelet/seccomp/nri-armor/x.json"
	oci := seccomp.Expected{Path: path, Format: seccomp.FormatOCI, Arch: "amd64", Base: seccomp.BaseDefault, Plan: p}
	good, err := seccomp.LocalhostPolicy(p, "amd64", seccomp.BaseDefault)
	if err != nil {
		t.Fatal(err)
	}
	if err := seccomp.CheckBundle(oci, good, ""); err != nil {
		t.Errorf("containerd, its own profile: %v", err)
	}
	weaker := proto.Clone(good).(*api.LinuxSeccomp)
	for _, r := range weaker.Syscalls {
		if slices.Contains(r.Names, "getcpu") {
			r.Action = "SCMP_ACT_LOG"
		}
	}
	missing := proto.Clone(good).(*api.LinuxSeccomp)
	missing.Syscalls = slices.DeleteFunc(missing.Syscalls, func(r *api.LinuxSyscall) bool { return slices.Contains(r.Names, "getcpu") })
	allowAll := seccomp.Build(p, "amd64", nil) // another profile: the rules, but not the runtime default
	for what, pol := range map[string]*api.LinuxSeccomp{
		"unconfined":      nil,
		"runtime default": seccomp.ContainerdDefault(),
		"weaker action":   weaker,
		"missing rule":    missing,
		"default-allow":   allowAll,
		"other base errno": func() *api.LinuxSeccomp {
			x := proto.Clone(good).(*api.LinuxSeccomp)
			x.DefaultAction = "SCMP_ACT_LOG"
			return x
		}(),
		"flag log dropped": func() *api.LinuxSeccomp { x := proto.Clone(good).(*api.LinuxSeccomp); x.Flags = nil; return x }(),
		"extra allow added": func() *api.LinuxSeccomp {
			x := proto.Clone(good).(*api.LinuxSeccomp)
			x.Syscalls = append(x.Syscalls, &api.LinuxSyscall{Names: []string{"kexec_load"}, Action: "SCMP_ACT_ALLOW"})
			return x
		}(),
	} {
		if err := seccomp.CheckBundle(oci, pol, ""); err == nil {
			t.Errorf("containerd, %s: passed", what)
		}
	}

	crio := oci
	crio.Format = seccomp.FormatContainers
	resolved := seccomp.Build(p, "amd64", runtimeDefault()) // as CRI-O resolves the file
	if err := seccomp.CheckBundle(crio, resolved, path); err != nil {
		t.Errorf("cri-o, its own profile: %v", err)
	}
	narrow := proto.Clone(resolved).(*api.LinuxSeccomp)
	narrow.Architectures = []string{"SCMP_ARCH_X86_64"}
	weakerC := proto.Clone(resolved).(*api.LinuxSeccomp)
	weakerC.Syscalls = append(weakerC.Syscalls, &api.LinuxSyscall{Names: []string{"getcpu"}, Action: "SCMP_ACT_ALLOW"})
	unlogged := proto.Clone(resolved).(*api.LinuxSeccomp)
	unlogged.Syscalls = append(unlogged.Syscalls, &api.LinuxSyscall{Names: []string{"getpgid"}, Action: "SCMP_ACT_ALLOW"})
	for what, c := range map[string]struct {
		pol *api.LinuxSeccomp
		ref string
	}{
		"unconfined":            {nil, "Unconfined"},
		"another profile":       {resolved, "/var/lib/kubelet/seccomp/mine.json"},
		"another pod's":         {resolved, "/var/lib/kubelet/seccomp/nri-armor/y.json"},
		"runtime default":       {runtimeDefault(), "RuntimeDefault"},
		"OCI artifact":          {resolved, ""},
		"missing rule":          {runtimeDefault(), path},
		"weaker action":         {weakerC, path},
		"audit not logged":      {unlogged, path},
		"an architecture short": {narrow, path},
	} {
		if err := seccomp.CheckBundle(crio, c.pol, c.ref); err == nil {
			t.Errorf("cri-o, %s: passed", what)
		}
	}
}
