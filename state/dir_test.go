package state

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/policy"
)

func testSet(t *testing.T, path string) *policy.RuleSet {
	t.Helper()
	res := policy.LoadBytes("p.yaml", []byte(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: p, namespace: ns}
spec:
  file:
    matchPaths:
    - path: `+path+`
  action: Block
`))
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return policy.NewCompiler(0).Compile(res.Policies, policy.Options{Postures: policy.DefaultDefaults().Postures, Mode: policy.ModeEnforce})
}

// TestDir: records and sets round-trip; a missing one is fs.ErrNotExist;
// temp files and foreign names in the containers directory are passed
// over; a set whose file was altered is refused; PruneSets keeps sets in
// use and sets within the grace period.
func TestDir(t *testing.T) {
	d, err := Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	rs := testSet(t, "/etc/a")
	c := Container{CgroupID: 42, ContainerID: "c", PodName: "p", PodNamespace: "ns", PolicySet: rs.Digest,
		Mode: policy.ModeEnforce, Enforcers: map[policy.Class]string{policy.ClassFile: "BPFLSM"}, Unenforced: []int{1},
		Updated: time.Now().UTC().Truncate(time.Second)}
	if err := d.PutSet(rs); err != nil {
		t.Fatal(err)
	}
	if err := d.PutContainer(c); err != nil {
		t.Fatal(err)
	}
	if err := d.PutContainer(Container{}); err == nil {
		t.Fatal("a record without cgroup id was accepted")
	}
	got, err := d.Container(42)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("%+v %v, want %+v", got, err, c)
	}
	if _, err := d.Container(7); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing record: %v", err)
	}
	for _, junk := range []string{".tmp-123", "notes.txt", "x.json"} {
		if err := os.WriteFile(filepath.Join(d.containersDir(), junk), []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if all, err := d.Containers(); err != nil || len(all) != 1 || all[0].CgroupID != 42 {
		t.Fatalf("containers %+v %v", all, err)
	}
	back, err := d.Set(rs.Digest)
	if err != nil || back.Digest != rs.Digest {
		t.Fatalf("set %v", err)
	}
	if err := os.WriteFile(d.setFile(rs.Digest), []byte(`{"version":1,"digest":"`+rs.Digest+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Set(rs.Digest); err == nil {
		t.Fatal("an altered set was accepted")
	}
	if err := d.DeleteContainer(42); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteContainer(42); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}

	// Pruning: in use stays; unused within the grace period stays; unused
	// and older goes.
	inUse, recent, old := testSet(t, "/etc/b"), testSet(t, "/etc/c"), testSet(t, "/etc/d")
	for _, s := range []*policy.RuleSet{inUse, recent, old} {
		if err := d.PutSet(s); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-time.Hour)
	for _, s := range []*policy.RuleSet{inUse, old} {
		if err := os.Chtimes(d.setFile(s.Digest), past, past); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.PruneSets(map[string]bool{inUse.Digest: true}, time.Minute); err != nil {
		t.Fatal(err)
	}
	for s, want := range map[*policy.RuleSet]bool{inUse: true, recent: true, old: false} {
		if _, err := d.Set(s.Digest); (err == nil) != want {
			t.Errorf("set %s present=%v, want %v", s.ShortDigest(), err == nil, want)
		}
	}
	// Publishing a set again restarts its grace period.
	if err := os.Chtimes(d.setFile(recent.Digest), past, past); err != nil {
		t.Fatal(err)
	}
	if err := d.PutSet(recent); err != nil {
		t.Fatal(err)
	}
	if err := d.PruneSets(nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Set(recent.Digest); err != nil {
		t.Fatalf("set published again was pruned: %v", err)
	}
}
