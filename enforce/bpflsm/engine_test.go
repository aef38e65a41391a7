package bpflsm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

// helperEnv makes the test binary act as a probe process: it performs one
// operation and prints "ok" or the errno name. TestMain dispatches it.
const helperEnv = "NRI_ARMOR_BPF_HELPER"

func TestMain(m *testing.M) {
	if op := os.Getenv(helperEnv); op != "" {
		os.Exit(runHelper(op))
	}
	os.Exit(m.Run())
}

// extraHelpers are helper operations that other test files add.
var extraHelpers = map[string]func() int{}

func runHelper(op string) int {
	if f := extraHelpers[op]; f != nil {
		return f()
	}
	if err := helperOp(op); err != nil {
		fmt.Println(errName(err))
		return 1
	}
	fmt.Println("ok")
	return 0
}

// socketOps are the sockets a helper opens, by name: family, type, protocol.
var socketOps = map[string][3]int{
	"raw":     {syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP},
	"tcp":     {syscall.AF_INET, syscall.SOCK_STREAM, 0},
	"udp":     {syscall.AF_INET, syscall.SOCK_DGRAM, 0},
	"udp6":    {syscall.AF_INET6, syscall.SOCK_DGRAM, 0},
	"icmp6":   {syscall.AF_INET6, syscall.SOCK_RAW, syscall.IPPROTO_ICMPV6},
	"unix":    {syscall.AF_UNIX, syscall.SOCK_STREAM, 0},
	"mptcp":   {syscall.AF_INET, syscall.SOCK_STREAM, 262}, // IPPROTO_MPTCP
	"udplite": {syscall.AF_INET, syscall.SOCK_DGRAM, syscall.IPPROTO_UDPLITE},
	// Protocol 0 with SOCK_SEQPACKET is SCTP to the kernel (with the sctp
	// module; without it, EPROTONOSUPPORT after the LSM hook).
	"sctp-seqpacket": {syscall.AF_INET, syscall.SOCK_SEQPACKET, 0},
	// IPPROTO_RAW: whole IP packets of any protocol, ICMP included.
	"ipproto-raw":  {syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW},
	"packet-raw":   {syscall.AF_PACKET, syscall.SOCK_RAW, 0x0300}, // htons(ETH_P_ALL): tcpdump
	"packet-dgram": {syscall.AF_PACKET, syscall.SOCK_DGRAM, 0x0300},
	// The obsolete SOCK_PACKET reads raw frames too: another way to the
	// same sniffing that a `raw` Block must refuse.
	"packet-legacy": {syscall.AF_PACKET, syscall.SOCK_PACKET, 0x0300},
}

// helperOp opens one socket of the kind op names.
func helperOp(op string) error {
	s, ok := socketOps[op]
	if !ok {
		return fmt.Errorf("unknown op %q", op)
	}
	fd, err := syscall.Socket(s[0], s[1], s[2])
	if err == nil {
		syscall.Close(fd)
	}
	return err
}

// socketEvent is what policy.Decide sees of the socket op opens, named as
// the kernel programs and armor-tracer name it.
func socketEvent(t testing.TB, op string) policy.Event {
	t.Helper()
	s := socketOps[op]
	names, ok := policy.SocketNames(uint32(s[0]), uint32(s[1]), uint32(s[2]))
	if !ok {
		t.Fatalf("%s: not a network socket for rules", op)
	}
	return policy.Event{Class: policy.ClassNetwork, Family: names.Family, Protocol: names.Protocol, SocketType: names.Type}
}

func errName(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		switch en {
		case syscall.EPERM:
			return "EPERM"
		case syscall.EACCES:
			return "EACCES"
		}
		return fmt.Sprintf("errno %d", int(en))
	}
	return err.Error()
}

// testCgroup is a cgroup the test created (testenv.NewCgroup).
type testCgroup = testenv.Cgroup

// run starts the helper for op, inside cg when cg is not nil.
func run(t *testing.T, cg *testCgroup, op string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+op)
	if cg != nil {
		cg.Into(cmd)
	}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("helper %s: %v", op, err)
		}
	}
	return strings.TrimSpace(string(out))
}

const netPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-raw, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  severity: 6
  network:
    matchProtocols:
    - protocol: raw
    - protocol: udp
      action: Audit
  action: Block
`

const tcpPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-tcp, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  network:
    matchProtocols:
    - protocol: tcp
  action: Block
`

func openEngine(t *testing.T, pin string) *Engine {
	t.Helper()
	cg2, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	e, err := OpenEngine(Config{PinPath: pin, MaxContainers: 64, MaxRuleEntries: 4096, RingBytes: 1 << 16, WakeupBytes: 1}, HooksCgroupNet, cg2)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func testPinPath(t testing.TB) string {
	pin := fmt.Sprintf("/sys/fs/bpf/nri-armor-test-%d", os.Getpid())
	t.Cleanup(func() { _ = Unpin(pin) })
	return pin
}

// TestCgroupNetEnforces: on the host's own kernel, the cgroup-BPF programs
// deny a blocked socket to a process in the enforced cgroup, leave other
// protocols and other cgroups alone, and write exactly the expected event.
func TestCgroupNetEnforces(t *testing.T) {
	testenv.RequireRoot(t)
	e := openEngine(t, testPinPath(t))
	defer e.Close()
	cg := testenv.NewCgroup(t)
	other := testenv.NewCgroup(t)

	rd, err := ringbuf.NewReader(e.EventsMap())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()

	if got := run(t, cg, "raw"); got != "ok" {
		t.Fatalf("before Apply: raw socket %s, want ok", got)
	}
	rs := policytest.Compile(t, netPolicy)
	if _, err := e.Apply(cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	if got := run(t, cg, "raw"); got != "EPERM" {
		t.Fatalf("blocked raw socket in enforced cgroup: %s, want EPERM", got)
	}
	ev := readEvent(t, rd)
	want := rs.Network.Rules[0] // raw: Block
	if ev.CgroupID != cg.ID || ev.Action != policy.Block || ev.Retval != -int32(syscall.EPERM) || ev.Class != policy.ClassNetwork || ev.RuleID != uint32(ruleID(t, rs, "raw")) {
		t.Fatalf("event %+v, want cgroup %d Block rule %d (%s)", ev, cg.ID, ruleID(t, rs, "raw"), want.Describe())
	}
	if ev.Family != syscall.AF_INET || ev.SockType != syscall.SOCK_RAW {
		t.Fatalf("event family %d type %d: want AF_INET/SOCK_RAW", ev.Family, ev.SockType)
	}
	if got := run(t, cg, "udp6"); got != "ok" {
		t.Fatalf("audited udp6 socket: %s, want ok", got)
	}
	ev = readEvent(t, rd)
	if ev.Action != policy.Audit || ev.Retval != 0 || ev.RuleID != uint32(ruleID(t, rs, "udp")) {
		t.Fatalf("audit event %+v", ev)
	}
	if got := run(t, cg, "tcp"); got != "ok" {
		t.Fatalf("tcp socket: %s, want ok", got)
	}
	if got := run(t, cg, "unix"); got != "ok" {
		t.Fatalf("unix socket: %s, want ok", got)
	}
	if got := run(t, other, "raw"); got != "ok" {
		t.Fatalf("raw socket in another cgroup: %s, want ok", got)
	}
	if got := run(t, nil, "raw"); got != "ok" {
		t.Fatalf("raw socket outside any test cgroup: %s, want ok", got)
	}
	expectNoEvent(t, rd)

	// Swap to another set: raw passes, tcp is denied.
	rs2 := policytest.Compile(t, tcpPolicy)
	if _, err := e.Apply(cg.ID, rs2); err != nil {
		t.Fatal(err)
	}
	if got := run(t, cg, "raw"); got != "ok" {
		t.Fatalf("after swap: raw %s, want ok", got)
	}
	if got := run(t, cg, "tcp"); got != "EPERM" {
		t.Fatalf("after swap: tcp %s, want EPERM", got)
	}
	readEvent(t, rd)
	if ids := e.SetIDs(); len(ids) != 1 {
		t.Fatalf("old set not freed: sets %v", ids)
	}
	if st := e.Stats(); st.Cgroups != 1 || st.Sets != 1 || st.KernelBytes == 0 {
		t.Fatalf("stats %+v", st)
	}

	if err := e.Remove(cg.ID); err != nil {
		t.Fatal(err)
	}
	if got := run(t, cg, "tcp"); got != "ok" {
		t.Fatalf("after Remove: tcp %s, want ok", got)
	}
	if ids := e.SetIDs(); len(ids) != 0 {
		t.Fatalf("sets after Remove: %v", ids)
	}
	n := 0
	var k armorRuleKey
	var v armorRuleVal
	for it := e.maps.Rules.Iterate(); it.Next(&k, &v); {
		n++
	}
	if n != 0 {
		t.Fatalf("%d rule entries left after Remove", n)
	}
}

// TestPinnedStateSurvivesRestart: enforcement continues after the loader
// exits, and a new loader picks the state up and can change it.
func TestPinnedStateSurvivesRestart(t *testing.T) {
	testenv.RequireRoot(t)
	pin := testPinPath(t)
	cg := testenv.NewCgroup(t)
	shared := testenv.NewCgroup(t)

	e := openEngine(t, pin)
	rs := policytest.Compile(t, netPolicy)
	for _, c := range []*testCgroup{cg, shared} {
		if _, err := e.Apply(c.ID, rs); err != nil {
			t.Fatal(err)
		}
	}
	if ids := e.SetIDs(); len(ids) != 1 {
		t.Fatalf("two cgroups with one set: %d sets loaded", len(ids))
	}
	entries := e.Stats().RuleEntries
	e.Close() // the loader is gone

	if got := run(t, cg, "raw"); got != "EPERM" {
		t.Fatalf("with the loader gone: raw %s, want EPERM", got)
	}

	e2 := openEngine(t, pin)
	defer e2.Close()
	if got := e2.Cgroups(); got[cg.ID] != rs.Digest || got[shared.ID] != rs.Digest {
		t.Fatalf("recovered cgroups %v, want both on %s", got, rs.Digest)
	}
	if got := e2.Stats().RuleEntries; got != entries || entries == 0 {
		t.Fatalf("recovered %d rule entries, had %d", got, entries)
	}
	if got := run(t, cg, "raw"); got != "EPERM" {
		t.Fatalf("after restart: raw %s, want EPERM", got)
	}
	// Re-applying the same set is a no-op; removing one cgroup keeps the
	// set for the other; removing both frees it, keys found by scanning.
	if _, err := e2.Apply(cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	if err := e2.Remove(cg.ID); err != nil {
		t.Fatal(err)
	}
	if got := run(t, shared, "raw"); got != "EPERM" {
		t.Fatalf("other cgroup after removing one: raw %s, want EPERM", got)
	}
	if err := e2.Remove(shared.ID); err != nil {
		t.Fatal(err)
	}
	if got := run(t, shared, "raw"); got != "ok" {
		t.Fatalf("after removing both: raw %s, want ok", got)
	}
	var k armorRuleKey
	var v armorRuleVal
	if e2.maps.Rules.Iterate().Next(&k, &v) {
		t.Fatalf("rule entries left after the last cgroup went: %+v", k)
	}
}

// TestPathKey: the path-hash key is drawn at random by the first engine on
// a pin folder (bpffs, and so the key, does not outlive the boot), never
// zero, found and reused by the engines after it, so the sets they find
// pinned still match; an engine on other pins draws another key and writes
// other rule keys for the same set. An engine that finds sets pinned
// without a key (by programs before it) does not take them for its own:
// it replaces them as their cgroups are applied again, and frees them.
func TestPathKey(t *testing.T) {
	testenv.RequireRoot(t)
	pin := testPinPath(t)
	cg := testenv.NewCgroup(t)
	rs := policytest.Compile(t, hashPolicy)

	e := openEngine(t, pin)
	key := pinnedKey(t, e)
	if key == (PathKey{}) || key != e.key {
		t.Fatalf("pinned key %x, engine's %x: want the same, not zero", key, e.key)
	}
	if _, err := e.Apply(cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	hashes := ruleHashes(t, e)
	entries := e.Stats().RuleEntries
	e.Close()

	e = openEngine(t, pin)
	if e.key != key {
		t.Fatalf("restarted engine's key %x, want the pinned %x", e.key, key)
	}
	if got := e.Cgroups()[cg.ID]; got != rs.Digest {
		t.Fatalf("restarted engine: cgroup on %q, want the pinned set %s", got, rs.Digest)
	}
	e.Close()

	otherPin := pin + "-other"
	t.Cleanup(func() { _ = Unpin(otherPin) })
	other := openEngine(t, otherPin)
	if other.key == key || other.key == (PathKey{}) {
		t.Fatalf("engine on other pins: key %x, want one of its own (not %x)", other.key, key)
	}
	otherCg := testenv.NewCgroup(t)
	if _, err := other.Apply(otherCg.ID, rs); err != nil {
		t.Fatal(err)
	}
	otherHashes := ruleHashes(t, other)
	other.Close()
	if len(otherHashes) != len(hashes) || len(hashes) == 0 {
		t.Fatalf("%d rule hashes under one key, %d under another", len(hashes), len(otherHashes))
	}
	for h := range hashes {
		if otherHashes[h] {
			t.Errorf("hash %#x written under both keys", h)
		}
	}

	// Sets pinned without a key: as if the key map had just been made.
	if err := e.maps.PathKey.Update(uint32(0), armorSipKey{}, 0); err != nil {
		t.Fatal(err)
	}
	old := e.SetIDs()
	e = openEngine(t, pin)
	defer e.Close()
	if e.key == key || e.key == (PathKey{}) || pinnedKey(t, e) != e.key {
		t.Fatalf("engine finding no key: key %x, pinned %x, want a new one (not %x)", e.key, pinnedKey(t, e), key)
	}
	if got := e.Cgroups()[cg.ID]; got == rs.Digest {
		t.Fatal("a set pinned without a key is taken as the set of its digest")
	}
	var name [events.DigestLen]byte
	if err := e.names.Lookup(old[0], &name); err == nil {
		t.Fatalf("set %d pinned without a key keeps its name", old[0])
	}
	if _, err := e.Apply(cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	if ids := e.SetIDs(); len(ids) != 1 || ids[0] == old[0] {
		t.Fatalf("sets after applying again %v, want one new set (not %d)", ids, old[0])
	}
	for h := range ruleHashes(t, e) {
		if hashes[h] {
			t.Errorf("hash %#x under the old key is still in the rules", h)
		}
	}
	if got := e.Stats().RuleEntries; got != entries {
		t.Errorf("%d rule entries, want the new set's %d: the stale set is freed", got, entries)
	}
}

// pinnedKey is the path key in e's pinned map.
func pinnedKey(t *testing.T, e *Engine) PathKey {
	t.Helper()
	var v armorSipKey
	if err := e.maps.PathKey.Lookup(uint32(0), &v); err != nil {
		t.Fatal(err)
	}
	return PathKey{v.K0, v.K1}
}

// ruleHashes are the path hashes (rules, sources and pattern buckets) in
// e's maps.
func ruleHashes(t *testing.T, e *Engine) map[uint64]bool {
	t.Helper()
	out := map[uint64]bool{}
	var k armorRuleKey
	var rv armorRuleVal
	it := e.maps.Rules.Iterate()
	for it.Next(&k, &rv) {
		out[k.Hash] = true
		if k.SrcLen != 0 {
			out[k.SrcHash] = true
		}
	}
	var pv armorPatVal
	pit := e.maps.Patterns.Iterate()
	for pit.Next(&k, &pv) {
		out[k.Hash] = true
	}
	if err := errors.Join(it.Err(), pit.Err()); err != nil {
		t.Fatal(err)
	}
	return out
}

func ruleID(t *testing.T, rs *policy.RuleSet, proto string) int {
	t.Helper()
	for _, r := range rs.Network.Rules {
		if r.Match.Value == proto {
			return r.ID
		}
	}
	t.Fatalf("no rule for %s", proto)
	return 0
}

func readEvent(t *testing.T, rd *ringbuf.Reader) events.Event {
	t.Helper()
	rd.SetDeadline(time.Now().Add(5 * time.Second))
	rec, err := rd.Read()
	if err != nil {
		t.Fatalf("reading event: %v", err)
	}
	ev, err := events.DecodeEvent(rec.RawSample)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func expectNoEvent(t *testing.T, rd *ringbuf.Reader) {
	t.Helper()
	rd.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if rec, err := rd.Read(); err == nil {
		ev, _ := events.DecodeEvent(rec.RawSample)
		t.Fatalf("unexpected event %+v", ev)
	}
}

// TestDefaultCapacities: with the default configuration, 16,384 cgroups and
// a set of 65,536 rules fit, and a set over capacity fails whole, leaving
// nothing behind.
func TestDefaultCapacities(t *testing.T) {
	testenv.RequireRoot(t)
	root, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	e, err := OpenEngine(Config{PinPath: testPinPath(t), RingBytes: 1 << 16}, HooksCgroupNet, root)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var y strings.Builder
	y.WriteString("apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: big}\nspec:\n  selector: {matchLabels: {a: b}}\n  file:\n    matchPaths:\n")
	for i := 0; i < 65536; i++ {
		fmt.Fprintf(&y, "    - path: /srv/d%d/f%d\n", i%512, i)
	}
	y.WriteString("  action: Block\n")
	big := policytest.Compile(t, y.String())
	small := policytest.Compile(t, netPolicy)
	// Cgroup ids need not exist for the maps; ids far above real inodes.
	const base = uint64(1) << 40
	if _, err := e.Apply(base, big); err != nil {
		t.Fatalf("a set of 65,536 rules: %v", err)
	}
	for i := uint64(1); i < 16384; i++ {
		if _, err := e.Apply(base+i, small); err != nil {
			t.Fatalf("cgroup %d of 16,384: %v", i+1, err)
		}
	}
	st := e.Stats()
	if st.Cgroups != 16384 || st.Sets != 2 || st.RuleEntries < 65536 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("16,384 cgroups, a 65,536-rule set: %d rule entries, %d KiB of kernel memory %v", st.RuleEntries, st.KernelBytes/1024, st.MapBytes)
	if _, err := e.Apply(base+16384, policytest.Compile(t, tcpPolicy)); err == nil {
		t.Fatal("a 16,385th cgroup with a third set was accepted")
	}
	for i := uint64(0); i < 16384; i++ {
		if err := e.Remove(base + i); err != nil {
			t.Fatal(err)
		}
	}
	if st := e.Stats(); st.Cgroups != 0 || st.Sets != 0 || st.RuleEntries != 0 {
		t.Fatalf("after removing all: %+v", st)
	}
}

// BenchmarkApplySwap: the kernel side of a set change for one cgroup —
// encode, write the new set beside the old one, switch, free the old —
// with a set of 3 rules (as a typical pod's). Issue 4's budget for
// CreateContainer+StartContainer including the map update is 5 ms.
func BenchmarkApplySwap(b *testing.B) {
	testenv.RequireRoot(b)
	root, err := cgroups.Mount()
	if err != nil {
		b.Fatal(err)
	}
	e, err := OpenEngine(Config{PinPath: testPinPath(b), MaxContainers: 64, MaxRuleEntries: 4096, RingBytes: 1 << 16}, HooksCgroupNet, root)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	sets := []*policy.RuleSet{policytest.Compile(b, netPolicy), policytest.Compile(b, tcpPolicy)}
	n := 0
	for b.Loop() {
		if _, err := e.Apply(1<<40, sets[n%2]); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

const aliasPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: aliases, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  network:
    matchProtocols:
    - protocol: tcp
    - protocol: udp
  action: Block
`

// TestProtocolAliases: as KubeArmor counts them, MPTCP is tcp and UDP-Lite
// is udp: a tcp Block refuses an MPTCP socket and a udp Block a UDP-Lite
// one, in the kernel (cgroup-BPF here; BPF-LSM in the VM's
// TestLSMKubeArmorSemantics) as in policy.Decide.
func TestProtocolAliases(t *testing.T) {
	testenv.RequireRoot(t)
	e := openEngine(t, testPinPath(t))
	defer e.Close()
	cg := testenv.NewCgroup(t)
	rs := policytest.Compile(t, aliasPolicy)
	if _, err := e.Apply(cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"mptcp", "udplite", "tcp", "udp", "raw"} {
		want := "ok"
		if d := policy.Decide(rs, socketEvent(t, op)); d.Action == policy.Block {
			want = "EPERM"
		}
		if op == "mptcp" || op == "udplite" {
			if want != "EPERM" {
				t.Errorf("%s: policy.Decide says %s, want Block (%s is an alias)", op, want, op)
			}
		}
		if got := run(t, cg, op); got != want {
			t.Errorf("%s socket: %s, want %s", op, got, want)
		}
	}
}
