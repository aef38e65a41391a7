package apparmor

import (
	"maps"
	"regexp"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/policy"
)

// TestProfileName: the name depends on what chooses the container's rule
// set and on nothing else, and is a valid profile name.
func TestProfileName(t *testing.T) {
	base := policy.Pod{
		Namespace:   "shop",
		Name:        "web-7d9f8c6b5-x2x4z",
		Labels:      map[string]string{"app": "web", "pod-template-hash": "7d9f8c6b5"},
		Annotations: map[string]string{policy.AnnotationPolicies: "harden-web"},
	}
	name := ProfileName(base, "nginx")
	// A fixed value: the admission webhook computes the same (a change of
	// scheme must be deliberate, and both sides changed together).
	if name != "nri-armor.shop.nginx.f34492104b350f5c" {
		t.Errorf("name %s", name)
	}
	if !regexp.MustCompile(`^nri-armor\.[a-z0-9-]+\.[a-z0-9-]+\.[0-9a-f]{16}$`).MatchString(name) || checkName(name) != nil {
		t.Errorf("not a valid name: %s", name)
	}
	with := func(f func(p *policy.Pod)) string {
		p := base
		p.Labels, p.Annotations = maps.Clone(base.Labels), maps.Clone(base.Annotations)
		f(&p)
		return ProfileName(p, "nginx")
	}
	same := map[string]string{
		"another replica (name)": with(func(p *policy.Pod) { p.Name = "web-7d9f8c6b5-abcde" }),
		"the kubelet's labels": with(func(p *policy.Pod) {
			p.Labels["io.kubernetes.pod.uid"] = "1234"
			p.Labels["io.kubernetes.pod.name"] = p.Name
		}),
		"the runtimes' labels": with(func(p *policy.Pod) {
			p.Labels["io.cri-containerd.kind"] = "sandbox"
			p.Labels["oci_runtime_type"] = "io.containerd.runc.v2"
			p.Labels["io.cri-o.ContainerType"] = "sandbox"
		}),
		"the kubelet's annotation": with(func(p *policy.Pod) { p.Annotations["kubernetes.io/config.seen"] = "2026-12-05T17:00:00Z" }),
		"visibility":               with(func(p *policy.Pod) { p.Annotations[policy.AnnotationVisibility] = "none" }),
		"another container's":      with(func(p *policy.Pod) { p.Annotations[policy.AnnotationPolicies+".container.sidecar"] = "x" }),
	}
	for why, n := range same {
		if n != name {
			t.Errorf("%s changed the name", why)
		}
	}
	differ := map[string]string{
		"namespace":             with(func(p *policy.Pod) { p.Namespace = "shop2" }),
		"a label":               with(func(p *policy.Pod) { p.Labels["tier"] = "front" }),
		"a label's value":       with(func(p *policy.Pod) { p.Labels["app"] = "api" }),
		"policies":              with(func(p *policy.Pod) { p.Annotations[policy.AnnotationPolicies] = "other" }),
		"the container's":       with(func(p *policy.Pod) { p.Annotations[policy.AnnotationPolicies+".container.nginx"] = "x" }),
		"posture":               with(func(p *policy.Pod) { p.Annotations[policy.AnnotationPosture] = "file=block" }),
		"mode":                  with(func(p *policy.Pod) { p.Annotations[policy.AnnotationMode] = "audit" }),
		"KubeArmor's posture":   with(func(p *policy.Pod) { p.Annotations[policy.KubeArmorFilePosture] = "block" }),
		"KubeArmor's policy":    with(func(p *policy.Pod) { p.Annotations[policy.KubeArmorPolicy] = "audited" }),
		"container-name label":  with(func(p *policy.Pod) { p.Labels[policy.ContainerNameLabel] = "[nginx]" }),
		"another container":     ProfileName(base, "sidecar"),
		"label moved into name": with(func(p *policy.Pod) { delete(p.Labels, "app"); p.Labels["ap"] = "pweb" }),
	}
	seen := map[string]string{name: "base"}
	for why, n := range differ {
		if prev, dup := seen[n]; dup {
			t.Errorf("%s gives the same name as %s: %s", why, prev, n)
		}
		seen[n] = why
	}
	// Names outside Kubernetes' alphabet stay valid; the digest keeps
	// them apart.
	odd := ProfileName(policy.Pod{Namespace: "A B/\"x\"" + strings.Repeat("n", 80)}, "c,d")
	if checkName(odd) != nil || len(odd) > 200 {
		t.Errorf("not a valid name: %q", odd)
	}
	if ProfileName(policy.Pod{Namespace: "a_b"}, "c") == ProfileName(policy.Pod{Namespace: "a-b"}, "c") ||
		ProfileName(policy.Pod{Namespace: "a.b"}, "c") == ProfileName(policy.Pod{Namespace: "a_b"}, "c") {
		t.Error("names that differ only in what namePart replaces collide")
	}
}
