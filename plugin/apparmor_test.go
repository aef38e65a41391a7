package plugin

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"

	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/ocihook"
	"github.com/nri-armor/nri-armor/policy"
)

const shadowPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-shadow, namespace: shop}
spec:
  file:
    matchPaths:
    - path: /etc/shadow
  action: Block
`

// fakeLoader is an apparmor.Loader whose apparmor_parser is a script that
// adds the profile it is given to a securityfs of files: what the plugin
// decides is tested here, the kernel's side in the VM (make
// vmtest-apparmor).
func fakeLoader(t *testing.T) (*apparmor.Loader, string) {
	t.Helper()
	dir := t.TempDir()
	fs := filepath.Join(dir, "securityfs")
	if err := os.MkdirAll(fs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fs, "profiles"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	parser := filepath.Join(dir, "apparmor_parser")
	script := "#!/bin/sh\nfor f; do :; done\nsed -n 's/^profile \"\\([^\"]*\\)\".*/\\1 (enforce)/p' \"$f\" >>" + filepath.Join(fs, "profiles") + "\n"
	if err := os.WriteFile(parser, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := apparmor.NewLoader(filepath.Join(dir, "profiles"), apparmor.Parser{Path: parser})
	if err != nil {
		t.Fatal(err)
	}
	l.FS = fs
	return l, fs
}

// The AppArmor backend's decisions, through the real NRI runtime side:
// the profiles a pod's annotations name are loaded at RunPodSandbox (and a
// name that is not the pod's refuses it); a container whose rules need
// AppArmor gets its profile; the runtime hook refuses a spec naming
// another profile; StartContainer refuses a container the hook did not
// check; the profile goes when its pod and containers do; the container's
// file class is AppArmor's.
func TestAppArmorProfiles(t *testing.T) {
	loader, fs := fakeLoader(t)
	p := seccompPlugin(t, shadowPolicy, func(c *Config) { c.AppArmor = loader })
	rt := newRuntime(t)
	rt.connect(p)
	ann := map[string]string{policy.AnnotationPolicies: "no-shadow"}
	name := apparmor.ProfileName(policy.Pod{Namespace: "shop", Annotations: ann}, "app")
	loaded := func() string {
		b, err := os.ReadFile(filepath.Join(fs, "profiles"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	withAnn := map[string]string{appArmorAnnotation + "app": "localhost/" + name}
	for k, v := range ann {
		withAnn[k] = v
	}
	sb := rt.RunPod("pod-1", "shop", "web-0", nil, withAnn)
	if !strings.Contains(loaded(), name+" (enforce)") {
		t.Fatalf("after RunPodSandbox the kernel holds %q; want %s", loaded(), name)
	}

	// An annotation naming a profile the pod's identity does not give.
	wrong := map[string]string{policy.AnnotationPolicies: "no-shadow", appArmorAnnotation + "app": "localhost/" + apparmor.ProfileName(policy.Pod{Namespace: "shop"}, "app")}
	err := rt.NRI.RunPodSandbox(context.Background(), &api.RunPodSandboxRequest{Pod: &api.PodSandbox{Id: "pod-2", Name: "web-1", Namespace: "shop", Annotations: wrong}})
	if err == nil || !strings.Contains(err.Error(), "names AppArmor profile") {
		t.Errorf("RunPodSandbox with another identity's profile: %v", err)
	}

	ctr, _, err := rt.Create(sb, "ctr-1", "app")
	if err != nil {
		t.Fatal(err)
	}
	c := p.containers["ctr-1"]
	if c.profile != name || c.apparmor == nil {
		t.Fatalf("container profile %q (%v); want %s", c.profile, c.apparmor != nil, name)
	}
	for _, tc := range []struct {
		named, err string
		read       bool
	}{
		{"cri-containerd.apparmor.d", "its spec names cri-containerd.apparmor.d", true},
		// CRI-O sets privileged containers no profile at all.
		{"", "its spec names none", true},
		{name, "could not read the container's config.json", false},
	} {
		err := p.checkBundle(ocihook.Request{ContainerID: "ctr-1", SpecRead: tc.read, AppArmorProfile: tc.named})
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("the hook, spec naming %q (read %v): %v; want %q", tc.named, tc.read, err, tc.err)
		}
	}
	// The right profile, but what lets a process step around it: no
	// seccomp filter, one that lets a detached mount tree be made,
	// CAP_SYS_ADMIN.
	runtimeDefault := []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","openat"],"action":"SCMP_ACT_ALLOW"}]}`)
	for _, tc := range []struct {
		what, err string
		req       ocihook.Request
	}{
		{"Unconfined", "without a seccomp filter", ocihook.Request{}},
		{"open_tree allowed", "lets open_tree through", ocihook.Request{Seccomp: []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","open_tree"],"action":"SCMP_ACT_ALLOW"}]}`)}},
		{"fsopen allowed", "does not refuse fsopen", ocihook.Request{Seccomp: []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["open_tree","fsmount","move_mount"],"action":"SCMP_ACT_ERRNO"}]}`)}},
		{"CAP_SYS_ADMIN", "may hold CAP_SYS_ADMIN", ocihook.Request{Seccomp: runtimeDefault, Bounding: []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}}},
	} {
		tc.req.ContainerID, tc.req.SpecRead, tc.req.AppArmorProfile = "ctr-1", true, name
		if err := p.checkBundle(tc.req); err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "detached mount trees") {
			t.Errorf("the hook, %s: %v; want %q", tc.what, err, tc.err)
		}
	}
	// Not checked by the hook: StartContainer refuses.
	if err := rt.Start(sb, ctr, os.Getpid()); err == nil || !strings.Contains(err.Error(), "no runtime hook of nri-armor's checked") {
		t.Errorf("StartContainer unchecked: %v", err)
	}
	if err := p.checkBundle(ocihook.Request{ContainerID: "ctr-1", SpecRead: true, AppArmorProfile: name, Seccomp: runtimeDefault, Bounding: []string{"CAP_CHOWN"}}); err != nil {
		t.Fatalf("the hook, spec naming the container's profile: %v", err)
	}
	c.cgroupID = 1
	if err := p.enforce(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if c.enforcers[policy.ClassFile] != "AppArmor" || len(c.unenforced) != 0 {
		t.Errorf("enforcers %v, unenforced %v; want file by AppArmor, none unenforced", c.enforcers, c.unenforced)
	}

	// The profile stays while the pod names it or the container runs.
	if err := rt.Remove(sb, ctr); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(fs, ".remove")); len(b) != 0 {
		t.Errorf("removed %q while the pod still names it", b)
	}
	if err := rt.NRI.RemovePodSandbox(context.Background(), &api.RemovePodSandboxRequest{Pod: sb}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(fs, ".remove")); string(b) != name {
		t.Errorf("after the pod went, .remove holds %q; want %s", b, name)
	}
}
