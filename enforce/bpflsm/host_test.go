package bpflsm

import (
	"fmt"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

// The host set covers every process outside the containers. While this
// test runs, that is every process of the machine: its set blocks only raw
// ICMPv6 sockets, which nothing else here opens. (A KubeArmorHostPolicy's
// network rules need fromSource, which cgroup programs cannot see: the
// engine does not care where a set came from, so a plain set stands in.)
const hostPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: host-no-icmp6, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  network:
    matchProtocols:
    - protocol: icmpv6
  action: Block
`

// TestHostSet: the host set applies to processes outside every container
// cgroup, and not to containers: neither to those with their own set, nor
// to exempt ones (no rules), nor to cgroups made below either.
func TestHostSet(t *testing.T) {
	testenv.RequireRoot(t)
	e := openEngine(t, testPinPath(t))
	defer e.Close()
	rd, err := ringbuf.NewReader(e.EventsMap())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()

	hostProc := testenv.NewCgroup(t) // a node process's cgroup: in no container
	exempt := testenv.NewCgroup(t)
	exemptChild := exempt.Child(t)
	enforced := testenv.NewCgroup(t)
	enforcedChild := enforced.Child(t)
	if err := e.Exempt(exempt.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(enforced.ID, policytest.Compile(t, tcpPolicy)); err != nil {
		t.Fatal(err)
	}
	if got := run(t, hostProc, "icmp6"); got != "ok" {
		t.Fatalf("before the host set: icmp6 %s, want ok", got)
	}

	host := policytest.Compile(t, hostPolicy)
	if _, err := e.ApplyHost(host); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, op, want string
		cg             *testCgroup
	}{
		{"node process", "icmp6", "EPERM", hostProc},
		{"node process", "tcp", "ok", hostProc},
		{"exempt container", "icmp6", "ok", exempt},
		{"cgroup below an exempt container", "icmp6", "ok", exemptChild},
		{"enforced container", "icmp6", "ok", enforced},
		{"enforced container", "tcp", "EPERM", enforced},
		{"cgroup below an enforced container", "tcp", "EPERM", enforcedChild},
		{"cgroup below an enforced container", "icmp6", "ok", enforcedChild},
	} {
		if got := run(t, c.cg, c.op); got != c.want {
			t.Errorf("%s: %s socket %s, want %s", c.name, c.op, got, c.want)
		}
	}
	var hostEvent *events.Event
	for i := 0; i < 3; i++ { // the node process's Block, the containers' two
		ev := readEvent(t, rd)
		if ev.CgroupID == hostProc.ID {
			hostEvent = &ev
		}
	}
	if hostEvent == nil || hostEvent.Action != policy.Block || hostEvent.RuleID != uint32(ruleID(t, host, "icmpv6")) {
		t.Fatalf("host event %+v: want Block by rule %d", hostEvent, ruleID(t, host, "icmpv6"))
	}
	if st := e.Stats(); !st.Host || st.Exempt != 1 || st.Cgroups != 1 || st.Sets != 2 {
		t.Errorf("stats %+v: want a host set, 1 exempt and 1 enforced cgroup, 2 sets", st)
	}

	// A restarted engine finds the host set and the exempt cgroup.
	e2 := openEngine(t, e.cfg.PinPath)
	if st := e2.Stats(); !st.Host || st.Exempt != 1 || st.Sets != 2 {
		t.Errorf("after restart: stats %+v", st)
	}
	e2.Close()

	if err := e.RemoveHost(); err != nil {
		t.Fatal(err)
	}
	if got := run(t, hostProc, "icmp6"); got != "ok" {
		t.Errorf("after RemoveHost: icmp6 %s, want ok", got)
	}
	if err := e.Remove(exempt.ID); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Host || st.Exempt != 0 || st.Sets != 1 {
		t.Errorf("after removals: stats %+v", st)
	}
}

func init() {
	// raw-burst: 500 raw sockets, one after the other.
	extraHelpers["raw-burst"] = func() int {
		for i := 0; i < rawBurst; i++ {
			_ = helperOp("raw")
		}
		fmt.Println("ok")
		return 0
	}
}

const rawBurst = 500

// TestEventsLost: with no reader and a small ring buffer, a burst of Block
// events overflows it; every event is either in the buffer or counted as
// lost in the pinned counter that armor-tracer reads.
func TestEventsLost(t *testing.T) {
	testenv.RequireRoot(t)
	cg2, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	pin := testPinPath(t)
	e, err := OpenEngine(Config{PinPath: pin, MaxContainers: 8, MaxRuleEntries: 64, RingBytes: 1 << 12, WakeupBytes: 1 << 10}, HooksCgroupNet, cg2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cg := testenv.NewCgroup(t)
	if _, err := e.Apply(cg.ID, policytest.Compile(t, netPolicy)); err != nil {
		t.Fatal(err)
	}
	if got := run(t, cg, "raw-burst"); got != "ok" {
		t.Fatalf("raw-burst: %s", got)
	}
	p, err := events.OpenPinned(pin)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rd, err := ringbuf.NewReader(p.Events)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	read := 0
	for {
		rd.SetDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := rd.Read(); err != nil {
			break
		}
		read++
	}
	lost := p.Lost()
	if lost == 0 || uint64(read)+lost != rawBurst {
		t.Fatalf("%d events read and %d counted lost, want > 0 lost and %d in all", read, lost, rawBurst)
	}
}

// TestSetLinger: a set no cgroup uses stays loaded for SetLinger, and the
// next cgroup with the same set gets it without loading it again; it gives
// way when its room is needed, and Reap frees it once its time is up.
func TestSetLinger(t *testing.T) {
	testenv.RequireRoot(t)
	cg2, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	e, err := OpenEngine(Config{PinPath: testPinPath(t), MaxContainers: 2, MaxRuleEntries: 64, RingBytes: 1 << 12, SetLinger: 200 * time.Millisecond}, HooksCgroupNet, cg2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	a, b, c := policytest.Compile(t, netPolicy), policytest.Compile(t, tcpPolicy), policytest.Compile(t, hostPolicy)
	if _, err := e.Apply(1, a); err != nil {
		t.Fatal(err)
	}
	idA := e.SetIDs()[0]
	if err := e.Remove(1); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Sets != 1 || st.Lingering != 1 {
		t.Fatalf("after its cgroup went: %+v, want the set lingering", st)
	}
	if _, err := e.Apply(2, a); err != nil {
		t.Fatal(err)
	}
	if ids := e.SetIDs(); len(ids) != 1 || ids[0] != idA {
		t.Fatalf("set ids %v: want the lingering set %d reused", ids, idA)
	}
	// Two sets at most: a lingering one gives way to a new one.
	if _, err := e.Apply(3, b); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(3); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(4, c); err != nil {
		t.Fatalf("a third set while one lingers: %v", err)
	}
	if st := e.Stats(); st.Sets != 2 || st.Lingering != 0 {
		t.Fatalf("after the lingering set gave way: %+v", st)
	}
	if err := e.Remove(4); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond)
	e.Reap()
	if st := e.Stats(); st.Sets != 1 || st.Lingering != 0 {
		t.Fatalf("after Reap past SetLinger: %+v, want only the set in use", st)
	}
}
