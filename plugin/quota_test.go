package plugin

import (
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

// TestNamespaceQuota: with a quota of one distinct rule set per namespace,
// a namespace's second set is refused at CreateContainer (named, counted),
// a container reusing its set is not, and another namespace is not
// affected by the first one's use.
func TestNamespaceQuota(t *testing.T) {
	testenv.RequireRoot(t)
	rt := newRuntime(t)
	var refused []string
	p, err := New(Config{Catalog: catalogOf(t, policies+"---\n"+noTCP), Defaults: trusting(), Backend: &recorder{},
		Quota: Quota{Sets: 1}, QuotaRefused: func(ns string) { refused = append(refused, ns) }})
	if err != nil {
		t.Fatal(err)
	}
	rt.connect(p)
	noRaw := map[string]string{policy.AnnotationPolicies: "no-raw"}
	strict := map[string]string{policy.AnnotationPolicies: "no-raw,no-tcp"} // another set

	sb := rt.RunPod("pod-1", "shop", "web-0", nil, noRaw)
	if _, _, err := rt.Create(sb, "ctr-1", "nginx"); err != nil {
		t.Fatalf("first set of the namespace: %v", err)
	}
	if _, _, err := rt.Create(rt.RunPod("pod-2", "shop", "web-1", nil, noRaw), "ctr-2", "nginx"); err != nil {
		t.Fatalf("the same set again: %v", err)
	}
	_, _, err = rt.Create(rt.RunPod("pod-3", "shop", "web-2", nil, strict), "ctr-3", "nginx")
	if err == nil || !strings.Contains(err.Error(), "namespace shop would use 2 distinct rule sets, over its quota of 1 (namespaceMaxSets)") {
		t.Fatalf("a second distinct set: %v, want refused for the quota", err)
	}
	if strings.Join(refused, ",") != "shop" {
		t.Fatalf("refusals reported: %v", refused)
	}
	// Another namespace is not held to shop's use.
	if _, _, err := rt.Create(rt.RunPod("pod-4", "other", "app-0", nil, map[string]string{policy.AnnotationPolicies: "no-tcp-anywhere"}), "ctr-4", "app"); err != nil {
		t.Fatalf("another namespace: %v", err)
	}
}

const noTCP = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-tcp, namespace: shop}
spec:
  network:
    matchProtocols:
    - protocol: tcp
  action: Block
---
apiVersion: security.kubearmor.com/v1
kind: KubeArmorClusterPolicy
metadata: {name: no-tcp-anywhere}
spec:
  network:
    matchProtocols:
    - protocol: tcp
  action: Block
`
