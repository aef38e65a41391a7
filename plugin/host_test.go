package plugin

import (
	"context"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

const hostPolicies = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: node-shadow}
spec:
  nodeSelector: {matchLabels: {kubernetes.io/hostname: node-a}}
  file:
    matchPaths:
    - path: /etc/shadow
  action: Block
---
apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: other-node}
spec:
  nodeSelector: {matchLabels: {kubernetes.io/hostname: node-b}}
  file:
    matchPaths:
    - path: /etc/passwd
  action: Block
`

// TestHostPolicy: the host policies selecting this node are applied to the
// node's own processes and published for the tracer; containers without
// rules are kept out of the host set's reach; a catalog without them
// releases the host set.
func TestHostPolicy(t *testing.T) {
	testenv.RequireRoot(t)
	b := cgroupNetBackend(t)
	dir := openState(t)
	p, err := New(Config{Catalog: catalogOf(t, hostPolicies+"---\n"+policies), Defaults: policy.DefaultDefaults(), Backend: b,
		State: dir, SetGrace: time.Hour, Node: Node{Name: "node-a", Labels: map[string]string{"kubernetes.io/hostname": "node-a"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.ApplyHost(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := dir.Host()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := dir.Set(h.PolicySet)
	if err != nil {
		t.Fatalf("host set %q: %v", h.PolicySet, err)
	}
	if len(rs.Policies) != 1 || rs.Policies[0] != "KubeArmorHostPolicy/node-shadow" {
		t.Fatalf("host set of %v, want only node-shadow (other-node selects another node)", rs.Policies)
	}
	// This node has no BPF-LSM: the file rule is the tracer's to audit.
	if len(h.Enforcers) != 0 || len(h.Unenforced) != 1 || h.Unenforced[0] != rs.File.Rules[0].ID || h.NodeName != "node-a" {
		t.Fatalf("host record %+v: want no enforcer and rule %d unenforced", h, rs.File.Rules[0].ID)
	}
	if st := b.Engine().Stats(); !st.Host {
		t.Fatalf("engine stats %+v: no host set", st)
	}

	// A container without rules is exempt from the host set, until removed.
	rt := newRuntime(t)
	rt.connect(p)
	sb, ctr, _ := rt.runStarted(t, "pod-1", "plain", nil, nil, "ctr-1", "app")
	if st := b.Engine().Stats(); st.Exempt != 1 || st.Cgroups != 0 {
		t.Fatalf("after starting a container without rules: stats %+v, want 1 exempt", st)
	}
	// It enforces nothing, and counting that (for /metrics) works.
	if n := p.Enforced(); len(n) != 0 {
		t.Fatalf("Enforced() = %v with only a container without rules", n)
	}
	if err := rt.Remove(sb, ctr); err != nil {
		t.Fatal(err)
	}
	if st := b.Engine().Stats(); st.Exempt != 0 {
		t.Fatalf("after its removal: stats %+v, want none exempt", st)
	}

	// The host policies are gone from the catalog: the host set is released.
	if err := p.Reapply(ctx, catalogOf(t, policies)); err != nil {
		t.Fatal(err)
	}
	if st := b.Engine().Stats(); st.Host {
		t.Fatalf("after the host policies went: stats %+v, want no host set", st)
	}
	if h, err := dir.Host(); err != nil || h.PolicySet != "" {
		t.Fatalf("host record %+v %v: want one without a set", h, err)
	}
}
