package bpf

import (
	"testing"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/nri-armor/nri-armor/internal/testenv"
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
	if _, err := e.Apply(enforced.ID, compileYAML(t, tcpPolicy)); err != nil {
		t.Fatal(err)
	}
	if got := run(t, hostProc, "icmp6"); got != "ok" {
		t.Fatalf("before the host set: icmp6 %s, want ok", got)
	}

	host := compileYAML(t, hostPolicy)
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
	var hostEvent *eventHead
	for i := 0; i < 3; i++ { // the node process's Block, the containers' two
		ev := readEvent(t, rd)
		if ev.CgroupId == hostProc.ID {
			hostEvent = &ev
		}
	}
	if hostEvent == nil || hostEvent.Action != actBlock || hostEvent.RuleId != uint32(ruleID(t, host, "icmpv6")) {
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
