package tracer

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/internal/tracertest"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
)

// fakeFilter records what the kernel filter would hold (unit test only).
type fakeFilter struct {
	mu sync.Mutex
	m  map[uint64]policy.Visibility
}

func (f *fakeFilter) Watch(cg uint64, v policy.Visibility) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[cg] = v
	return nil
}

func (f *fakeFilter) Unwatch(cg uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, cg)
	return nil
}

func (f *fakeFilter) Watched() (map[uint64]policy.Visibility, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[uint64]policy.Visibility{}
	for k, v := range f.m {
		out[k] = v
	}
	return out, nil
}

func (f *fakeFilter) is(want map[uint64]policy.Visibility) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return reflect.DeepEqual(f.m, want)
}

func TestNeededClasses(t *testing.T) {
	rs := policytest.Compile(t, tracertest.ShopPolicy) // process, file and network rules
	c := state.Container{Visibility: policy.Visibility{Capabilities: true}}
	if got, want := NeededClasses(c, rs), (policy.Visibility{Process: true, File: true, Network: true, Capabilities: true}); got != want {
		t.Fatalf("no enforcer at all: %+v, want %+v", got, want)
	}
	c.Enforcers = map[policy.Class]string{policy.ClassProcess: "BPFLSM", policy.ClassFile: "BPFLSM", policy.ClassNetwork: "CgroupBPF"}
	if got, want := NeededClasses(c, rs), (policy.Visibility{Capabilities: true}); got != want {
		t.Fatalf("all enforced: %+v, want %+v", got, want)
	}
	for _, r := range rs.File.Rules {
		if r.Match.Value == "/etc/shadow" {
			c.Unenforced = []int{r.ID}
		}
	}
	if got, want := NeededClasses(c, rs), (policy.Visibility{File: true, Capabilities: true}); got != want {
		t.Fatalf("a file rule unenforced: %+v, want %+v", got, want)
	}
	if got := NeededClasses(state.Container{}, nil); got != (policy.Visibility{}) {
		t.Fatalf("nothing: %+v", got)
	}
}

// TestSyncTelemetry: the kernel filter follows the published containers —
// new ones watched with the classes they need, changed ones updated,
// removed ones unwatched.
func TestSyncTelemetry(t *testing.T) {
	e := newEnv(t, testConfig()) // cgroup 4242: ShopPolicy, network enforced, visibility process+file
	if err := e.dir.PutContainer(state.Container{CgroupID: 2, Visibility: policy.Visibility{Network: true}}); err != nil {
		t.Fatal(err)
	}
	if err := e.dir.PutContainer(state.Container{CgroupID: 3}); err != nil { // needs nothing
		t.Fatal(err)
	}
	ids := NewIdentity(e.dir, 100, time.Second, time.Hour, nil)
	// Left over in a pinned filter from a previous run: cgroup 99 is gone.
	f := &fakeFilter{m: map[uint64]policy.Visibility{99: {File: true}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ids.Watch(ctx, 20*time.Millisecond)
	go ids.SyncTelemetry(ctx, f, time.Hour, logrus.New())
	testenv.WaitFor(t, "first pass", func() bool {
		return f.is(map[uint64]policy.Visibility{4242: {Process: true, File: true}, 2: {Network: true}})
	})
	if err := e.dir.PutContainer(state.Container{CgroupID: 2, Visibility: policy.Visibility{Network: true, File: true}}); err != nil {
		t.Fatal(err)
	}
	if err := e.dir.DeleteContainer(4242); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "changes followed", func() bool {
		return f.is(map[uint64]policy.Visibility{2: {Network: true, File: true}})
	})
}
