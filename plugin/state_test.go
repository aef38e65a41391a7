package plugin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
)

const guard = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: guard, namespace: shop}
spec:
  selector: {matchLabels: {app: guarded}}
  file:
    matchPaths:
    - path: /etc/shadow
  network:
    matchProtocols:
    - protocol: raw
  action: Block
`

// statePlugin is a plugin on backend b that publishes into a fresh state
// directory, with a short set grace period.
func statePlugin(t *testing.T, b enforce.Backend, cat *policy.Catalog, dir *state.Dir) *Plugin {
	t.Helper()
	p, err := New(Config{Catalog: cat, Defaults: trusting("shop"), Backend: b, State: dir, SetGrace: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func openState(t *testing.T) *state.Dir {
	t.Helper()
	d, err := state.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// record reads the record of cgroup cg, failing the test when there is none.
func record(t *testing.T, d *state.Dir, cg uint64) state.Container {
	t.Helper()
	c, err := d.Container(cg)
	if err != nil {
		t.Fatalf("record of cgroup %d: %v", cg, err)
	}
	return c
}

func expectNoRecord(t *testing.T, d *state.Dir, cg uint64) {
	t.Helper()
	if c, err := d.Container(cg); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("record of cgroup %d: %+v %v, want none", cg, c, err)
	}
}

// publishedCgroups lists the cgroups that have a record, sorted.
func publishedCgroups(t *testing.T, d *state.Dir) []uint64 {
	t.Helper()
	cs, err := d.Containers()
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, c := range cs {
		out = append(out, c.CgroupID)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func sortedIDs(ids ...uint64) []uint64 {
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// TestStatePublished: with the real cgroup-BPF backend, a started container
// is published under its cgroup id with its pod's identity, its image, its
// set's digest, mode and visibility, and per class what enforces it (network
// by CgroupBPF; the file rule, which this node cannot enforce, listed as
// unenforced). The set file parses back and decides as the set the plugin
// applied. A container without policies but with visibility is published
// without a set; one with visibility none, or in mode disabled, is not.
// RemoveContainer deletes the record; the set file goes after the grace
// period.
func TestStatePublished(t *testing.T) {
	testenv.RequireRoot(t)
	b := cgroupNetBackend(t)
	dir := openState(t)
	rt := newRuntime(t)
	cat := catalogOf(t, guard)
	p := statePlugin(t, b, cat, dir)
	rt.connect(p)

	labels := map[string]string{"app": "guarded", "tier": "front"}
	sb := rt.RunPod("pod-1", "shop", "web-0", labels, nil)
	ctr, resp, err := rt.Create(sb, "ctr-1", "nginx")
	if err != nil {
		t.Fatal(err)
	}
	digest := resp.GetAdjust().GetAnnotations()[policy.AnnotationPolicySet]
	pr := startProc(t)
	expectNoRecord(t, dir, pr.cgroupID) // not before the start
	ctr.Image = &api.Image{Name: "registry.example/web:1.2"}
	if err := rt.Start(sb, ctr, pr.pid()); err != nil {
		t.Fatal(err)
	}
	rec := record(t, dir, pr.cgroupID)
	rs, err := dir.Set(rec.PolicySet)
	if err != nil {
		t.Fatal(err)
	}
	// The file rule is not enforced on this node; the raw rule only on
	// inet sockets (cgroup-BPF does not see AF_PACKET ones).
	unenforced := []int{rs.File.Rules[0].ID, rs.Network.Rules[0].ID}
	sort.Ints(unenforced)
	want := state.Container{
		CgroupID: pr.cgroupID, ContainerID: "ctr-1", ContainerName: "nginx",
		PodName: "web-0", PodNamespace: "shop", PodUID: "uid-pod-1", PodLabels: labels,
		Image: "registry.example/web:1.2", PolicySet: digest, Mode: policy.ModeEnforce,
		Visibility: policy.DefaultDefaults().Visibility,
		Enforcers:  map[policy.Class]string{policy.ClassNetwork: enforce.BackendCgroupBPF},
		Unenforced: unenforced,
		Updated:    rec.Updated,
	}
	if digest == "" || !reflect.DeepEqual(rec, want) {
		t.Fatalf("record\n%+v\nwant\n%+v", rec, want)
	}
	if time.Since(rec.Updated) > time.Minute {
		t.Fatalf("updated %v", rec.Updated)
	}
	// The set read back decides as the one applied.
	tg, err := cat.Resolve(policy.Pod{Namespace: "shop", Name: "web-0", Labels: labels}, "nginx", policy.DefaultDefaults())
	if err != nil {
		t.Fatal(err)
	}
	applied := policy.NewCompiler(0).Compile(tg.Policies, tg.Settings.Options())
	if applied.Digest != digest {
		t.Fatalf("compiled %s, published %s", applied.Digest, digest)
	}
	for _, ev := range []policy.Event{
		{Class: policy.ClassFile, Path: "/etc/shadow"},
		{Class: policy.ClassFile, Path: "/etc/hosts"},
		{Class: policy.ClassNetwork, Protocol: "icmp", SocketType: "raw"},
		{Class: policy.ClassNetwork, Protocol: "tcp", SocketType: "stream"},
	} {
		got, want := policy.Decide(rs, ev), policy.Decide(applied, ev)
		if got.Action != want.Action || got.DefaultPosture != want.DefaultPosture || (got.Rule == nil) != (want.Rule == nil) || (got.Rule != nil && got.Rule.ID != want.Rule.ID) {
			t.Fatalf("%+v: published set decides %+v, applied set %+v", ev, got, want)
		}
	}

	// No policy, default visibility: published, without a set.
	_, _, pr2 := rt.runStarted(t, "pod-2", "plain-0", nil, nil, "ctr-2", "app")
	if rec := record(t, dir, pr2.cgroupID); rec.PolicySet != "" || rec.Enforcers != nil || rec.PodName != "plain-0" || !rec.Visibility.Process {
		t.Fatalf("record without set: %+v", rec)
	}
	// Visibility none and no policy, or mode disabled: nothing for the tracer.
	var quiet []*api.PodSandbox
	for i, ann := range []map[string]string{
		{policy.AnnotationVisibility: "none"},
		{policy.AnnotationMode: "disabled"},
	} {
		sb := rt.RunPod(fmt.Sprintf("pod-q%d", i), "shop", "quiet", labels, ann)
		quiet = append(quiet, sb)
		ctr, _, err := rt.Create(sb, fmt.Sprintf("ctr-q%d", i), "app")
		if err != nil {
			t.Fatal(err)
		}
		pr := startProc(t)
		if err := rt.Start(sb, ctr, pr.pid()); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// The policy selects it: published for its set despite visibility none.
			if rec := record(t, dir, pr.cgroupID); rec.PolicySet != digest || rec.Visibility != (policy.Visibility{}) {
				t.Fatalf("visibility none with a set: %+v", rec)
			}
			continue
		}
		expectNoRecord(t, dir, pr.cgroupID)
	}
	_, _, pr3 := rt.runStarted(t, "pod-3", "quiet-2", nil, map[string]string{policy.AnnotationVisibility: "none"}, "ctr-3", "app")
	expectNoRecord(t, dir, pr3.cgroupID)

	// Removal deletes the record; the set stays while another container
	// uses it, and for the grace period after its last one went.
	if err := rt.Remove(sb, ctr); err != nil {
		t.Fatal(err)
	}
	expectNoRecord(t, dir, pr.cgroupID)
	if err := rt.NRI.RemovePodSandbox(context.Background(), &api.RemovePodSandboxRequest{Pod: quiet[0]}); err != nil {
		t.Fatal(err)
	}
	p.PruneState(context.Background())
	if _, err := dir.Set(digest); err != nil {
		t.Fatalf("set pruned at once: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	p.PruneState(context.Background())
	if _, err := dir.Set(digest); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("set of no container after the grace period: %v", err)
	}
	if p.PublishErrors() != 0 {
		t.Fatalf("%d publishing errors", p.PublishErrors())
	}
}

// TestStateFollowsEditsAndRestart: a policy edit rewrites the records of
// the running containers whose set changed (including one that had no set
// and is now selected); a new plugin instance (nri-armor restarted)
// publishing into the same directory rewrites every record in Synchronize
// and deletes the records of containers that went away meanwhile.
func TestStateFollowsEditsAndRestart(t *testing.T) {
	testenv.RequireRoot(t)
	dir := openState(t)
	rt := newRuntime(t)
	p1 := statePlugin(t, &recorder{}, testCatalog(t), dir)
	s1 := rt.connect(p1)

	_, _, prA := rt.runStarted(t, "pod-a", "web-0", nil, map[string]string{policy.AnnotationPolicies: "no-raw"}, "ctr-a", "nginx")
	sbB, ctrB, prB := rt.runStarted(t, "pod-b", "db-0", map[string]string{"app": "db"}, nil, "ctr-b", "db")
	first := record(t, dir, prA.cgroupID)
	if first.PolicySet == "" || record(t, dir, prB.cgroupID).PolicySet != "" {
		t.Fatalf("records before the edit: %+v / %+v", first, record(t, dir, prB.cgroupID))
	}
	// No recorder report: it claims every class.
	if first.Enforcers[policy.ClassNetwork] != "recorder" || len(first.Enforcers) != 1 {
		t.Fatalf("enforcers %v", first.Enforcers)
	}

	// The policy is edited, and a new one selects pod-b.
	edited := catalogOf(t, editedNoRaw+"---\n"+`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: db, namespace: shop}
spec:
  selector: {matchLabels: {app: db}}
  capabilities:
    matchCapabilities:
    - capability: net_admin
  action: Block
`)
	if err := p1.Reapply(context.Background(), edited); err != nil {
		t.Fatal(err)
	}
	stA, _ := p1.containerState("ctr-a")
	stB, _ := p1.containerState("ctr-b")
	if a := record(t, dir, prA.cgroupID); a.PolicySet != stA.digest || a.PolicySet == first.PolicySet {
		t.Fatalf("record of A after the edit: %s, want %s", a.PolicySet, stA.digest)
	}
	if bRec := record(t, dir, prB.cgroupID); bRec.PolicySet == "" || bRec.PolicySet != stB.digest || bRec.Enforcers[policy.ClassCapabilities] != "recorder" {
		t.Fatalf("record of B after a policy selected it: %+v", bRec)
	}
	for _, d := range []string{first.PolicySet, stA.digest, stB.digest} {
		if _, err := dir.Set(d); err != nil {
			t.Fatalf("set %s: %v", d, err) // the old one within its grace period
		}
	}

	// nri-armor goes away; meanwhile pod-b's container is removed and a
	// record of a cgroup that no longer exists lingers.
	s1.Stop()
	rt.Settle()
	if err := rt.Remove(sbB, ctrB); err != nil {
		t.Fatal(err)
	}
	if err := dir.PutContainer(state.Container{CgroupID: 1 << 40, ContainerID: "gone"}); err != nil {
		t.Fatal(err)
	}
	if got := publishedCgroups(t, dir); !reflect.DeepEqual(got, sortedIDs(prA.cgroupID, prB.cgroupID, 1<<40)) {
		t.Fatalf("records before the restart: %v", got)
	}
	p2 := statePlugin(t, &recorder{}, edited, dir)
	rt.connect(p2)
	if got := publishedCgroups(t, dir); !reflect.DeepEqual(got, []uint64{prA.cgroupID}) {
		t.Fatalf("records after the restart: %v, want only %d", got, prA.cgroupID)
	}
	a := record(t, dir, prA.cgroupID)
	if a.PolicySet != stA.digest || a.ContainerID != "ctr-a" || a.PodName != "web-0" || !a.Updated.After(first.Updated) {
		t.Fatalf("record of A after the restart: %+v", a)
	}
	time.Sleep(100 * time.Millisecond)
	p2.PruneState(context.Background())
	for d, want := range map[string]bool{stA.digest: true, first.PolicySet: false, stB.digest: false} {
		if _, err := dir.Set(d); (err == nil) != want {
			t.Errorf("set %s present=%v, want %v", d, err == nil, want)
		}
	}
}
