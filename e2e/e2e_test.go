//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/vmtest"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
)

// noRawNoTCP blocks raw sockets and TCP: what the cgroup-BPF backend
// enforces on a node without BPF-LSM (this one), and BPF-LSM elsewhere.
// Named by pods in nri-armor.dev/policies (no selector).
const noRawNoTCP = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: e2e-no-raw-no-tcp
  namespace: e2e
spec:
  network:
    matchProtocols:
    - protocol: raw
    - protocol: tcp
  action: Block
`

const (
	policyName  = "e2e-no-raw-no-tcp"
	policiesKey = "nri-armor.dev/policies"
	tolerateKey = "nri-armor.dev/tolerate-missing"
	denied      = "operation not permitted"
	// ownNamespace is nri-armor's own namespace, the guard's bootstrap list
	// (-trusted in config/containerd-base-spec.json): its pods start while
	// nri-armor is down before it ever wrote its trust file.
	ownNamespace = "nri-armor"
)

// networkBackend is what must enforce network rules where the tests run:
// cgroup-BPF on the CI host, whose kernel refuses LSM programs, and BPF-LSM
// in the VM (make vmtest-e2e runs these tests there too).
func networkBackend() string {
	if vmtest.InVM() {
		return "BPFLSM"
	}
	return "CgroupBPF"
}

// enforcedSeries counts the containers whose network rules are enforced.
func enforcedSeries() string {
	return fmt.Sprintf(`nri_armor_containers_enforced{backend=%q,class="network"}`, networkBackend())
}

func events(event, result string) string {
	return fmt.Sprintf(`nri_armor_nri_events_total{event=%q,result=%q}`, event, result)
}

// listen serves one line on 127.0.0.1 (host network: the pods' 127.0.0.1
// too) until the test ends; it returns the address.
func listen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello from the host\n"))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// crictlSays is crictl's error output as a user reads it: crictl logs the
// runtime's error with klog, which escapes its quotes.
func crictlSays(r result) string {
	return strings.ReplaceAll(r.stderr, `\"`, `"`)
}

// wantDenied asserts that a command in the container failed as the
// kernel's refusal looks to a user: exit status 1 and nettool's message
// naming the operation and EPERM.
func wantDenied(t *testing.T, r result, op string) {
	t.Helper()
	out := r.stdout + r.stderr
	t.Logf("guarded: %s → exit %d: %s", op, r.code, strings.TrimSpace(out))
	if r.code != 1 || !strings.Contains(out, "nettool: "+op) || !strings.Contains(out, denied) {
		t.Errorf("%s in the guarded container: %v; want exit 1 and %q", op, r, "nettool: "+op+": … "+denied)
	}
}

func wantOK(t *testing.T, r result, what, contains string) {
	t.Helper()
	t.Logf("%s → exit %d: %s", what, r.code, strings.TrimSpace(r.stdout+r.stderr))
	if r.code != 0 || !strings.Contains(r.stdout, contains) {
		t.Errorf("%s: %v; want exit 0 and %q", what, r, contains)
	}
}

// checkGuarded asserts what a pod naming the policy sees: raw sockets and
// TCP connects fail, UDP sockets, files and processes work.
func checkGuarded(t *testing.T, id, addr string) {
	t.Helper()
	wantDenied(t, execIn(t, id, "nettool", "raw"), "socket raw")
	wantDenied(t, execIn(t, id, "nettool", "connect", addr), "connect "+addr)
	wantOK(t, execIn(t, id, "nettool", "udp"), "udp socket in the guarded container", "ok: udp socket created")
	wantOK(t, execIn(t, id, "cat", "/etc/shadow"), "cat /etc/shadow in the guarded container", "root:")
	wantOK(t, execIn(t, id, "apt-get", "install", "x"), "apt-get in the guarded container", "apt-get (fake): install x")
}

// checkOpen asserts that a pod naming no policy can do all of it.
func checkOpen(t *testing.T, id, addr string) {
	t.Helper()
	wantOK(t, execIn(t, id, "nettool", "raw"), "raw socket in the unannotated container", "ok: raw socket created")
	wantOK(t, execIn(t, id, "nettool", "connect", addr), "connect in the unannotated container", "hello from the host")
}

// startWithPolicy starts nri-armor with the noRawNoTCP policy and a TCP
// listener on 127.0.0.1 for the pods to connect to; it returns both.
func startWithPolicy(t *testing.T) (*armor, string) {
	need(t)
	writePolicy(t, "no-raw-no-tcp.yaml", noRawNoTCP)
	return startArmor(t), listen(t)
}

// TestNetworkBlock: a pod naming a Block policy cannot open raw sockets or
// connect over TCP — from its first instruction and in every later exec —
// while the rest works; a pod without the annotation can; the metrics count
// it.
func TestNetworkBlock(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, _ *criRuntime) { testNetworkBlock(t) })
}

// testNetworkBlock is TestNetworkBlock against one runtime.
func testNetworkBlock(t *testing.T) {
	a, addr := startWithPolicy(t)

	guarded := runPod(t, "guarded", map[string]string{policiesKey: policyName})
	// The container's own command probes first thing: enforcement is in
	// place before its first instruction, not some time after the start.
	first := startContainer(t, guarded, "first", "sh", "-c", "nettool connect "+addr+" 2>&1; echo exit=$?; exec sleep 3600")
	id := startContainer(t, guarded, "main", sleeper...)
	open := runPod(t, "open", nil)
	openID := startContainer(t, open, "main", sleeper...)

	var logs string
	waitFor(t, "the first container's probe", 10*time.Second, func() bool {
		logs = mustCrictl(t, "logs", first)
		return strings.Contains(logs, "exit=")
	})
	if !strings.Contains(logs, "nettool: connect "+addr) || !strings.Contains(logs, denied) || !strings.Contains(logs, "exit=1") {
		t.Errorf("the guarded container's first command: %q; want the connect refused (%s), exit=1", logs, denied)
	}
	checkGuarded(t, id, addr)
	checkOpen(t, openID, addr)

	// Three containers created and started, two of them enforced, sharing
	// one rule set in the kernel.
	a.wantMetric(t, events("CreateContainer", "ok"), 3)
	a.wantMetric(t, events("StartContainer", "ok"), 3)
	a.wantMetric(t, events("CreateContainer", "error"), 0)
	// nri-armor validates every container it lets be created (see
	// TestCrashWindow for why).
	a.wantMetric(t, events("ValidateContainerAdjustment", "ok"), 3)
	a.wantMetric(t, enforcedSeries(), 2)
	a.wantMetric(t, "nri_armor_policy_sets_loaded", 1)

	// What armor-tracer will read: the container by cgroup id, its set.
	rec := published(t, id)
	t.Logf("published for the guarded container: %+v", rec)
	if rec.PodName != guarded.name || rec.PodNamespace != podNamespace || rec.ContainerName != "main" || rec.Enforcers[policy.ClassNetwork] != networkBackend() {
		t.Errorf("published record %+v: want pod %s/%s container main, network enforced by %s", rec, podNamespace, guarded.name, networkBackend())
	}
	if set, err := stateDir(t).Set(rec.PolicySet); err != nil || len(set.Policies) != 1 || !strings.HasSuffix(set.Policies[0], "/"+policyName) {
		t.Errorf("published set %q: %v, %v; want the one policy %s", rec.PolicySet, set, err, policyName)
	}
	if rec := published(t, openID); rec.PolicySet != "" {
		t.Errorf("the unannotated container's record names set %q, want none", rec.PolicySet)
	}
	// armor-tracer turns this record and the kernel's events into alerts:
	// TestAlerts.
}

func stateDir(t *testing.T) *state.Dir {
	t.Helper()
	d, err := state.Open(env.stateDir, false)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// published returns the state record nri-armor published for a running
// container, found by the cgroup id of its process (crictl inspect's pid).
func published(t *testing.T, id string) state.Container {
	t.Helper()
	pid, err := strconv.Atoi(mustCrictl(t, "inspect", "-o", "go-template", "--template", "{{.info.pid}}", id))
	if err != nil {
		t.Fatalf("crictl inspect %s: pid: %v", id, err)
	}
	mount, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	cg, err := cgroups.IDOfPID("/proc", mount, pid)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := stateDir(t).Container(cg)
	if err != nil {
		t.Fatalf("published state of container %s (cgroup %d): %v", id, cg, err)
	}
	return rec
}

// wantRefusedCreate asserts that crictl create (id, r) failed, its error
// naming each of names.
func wantRefusedCreate(t *testing.T, id string, r result, what string, names ...string) {
	t.Helper()
	if id != "" {
		t.Fatalf("a container %s was created (%s)", what, id)
	}
	t.Logf("crictl create %s: %s", what, crictlSays(r))
	for _, want := range names {
		if !strings.Contains(crictlSays(r), want) {
			t.Errorf("crictl create: %v; want the error to name %q", r, want)
		}
	}
}

// TestUnknownPolicyRefused: a pod naming a policy that does not exist gets
// no container, and crictl's error says which annotation and name.
func TestUnknownPolicyRefused(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, _ *criRuntime) { testUnknownPolicyRefused(t) })
}

// testUnknownPolicyRefused is TestUnknownPolicyRefused against one runtime.
func testUnknownPolicyRefused(t *testing.T) {
	need(t)
	a := startArmor(t)
	p := runPod(t, "unknown", map[string]string{policiesKey: "no-such-policy"})
	id, r := createContainer(t, p, "main", sleeper...)
	wantRefusedCreate(t, id, r, "naming an unknown policy", policiesKey, "no-such-policy")
	a.wantMetric(t, events("CreateContainer", "error"), 1)
	a.wantMetric(t, events("CreateContainer", "ok"), 0)
	if n := len(strings.Fields(mustCrictl(t, "ps", "-a", "-q", "-p", p.id))); n != 0 {
		t.Errorf("the refused pod has %d containers, want none", n)
	}
}

// TestFailClosed: while nri-armor is not connected, the runtime (containerd
// with config/containerd-nri.toml, CRI-O with config/crio-nri.conf)
// refuses to create containers and says which plugin is missing; a pod
// carrying the toleration, which the validator lets through, does not
// start in a namespace the node does not trust — the guard refuses it
// (config/containerd-base-spec.json, config/crio-hook.json; on CRI-O the
// only refusal left) — and starts in nri-armor's own namespace (see
// TestTolerateMissingTrust for the trust file).
func TestFailClosed(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, _ *criRuntime) { testFailClosed(t) })
}

// testFailClosed is TestFailClosed against one runtime.
func testFailClosed(t *testing.T) {
	need(t)
	p := runPod(t, "closed", nil)
	id, r := createContainer(t, p, "main", sleeper...)
	if id != "" {
		t.Fatalf("a container was created with nri-armor absent (%s): the NRI validator did not fail closed", id)
	}
	t.Logf("crictl create without nri-armor: %s", crictlSays(r))
	if want := `required plugin "nri-armor" not present`; !strings.Contains(crictlSays(r), want) {
		t.Errorf("crictl create without nri-armor: %v; want the error to say %q", r, want)
	}
	// A namespace no test trusts (weakenNamespaces): whatever trust file
	// an earlier test left, the guard must refuse.
	const untrustedNS = "e2e-never-trusted"
	untrusted := runPodIn(t, untrustedNS, "untrusted", map[string]string{tolerateKey: "true"})
	if r, started := createThenStart(t, untrusted, "main"); started {
		t.Errorf("a tolerating pod of namespace %s, which the node does not trust, started while nri-armor was down", untrustedNS)
	} else {
		t.Logf("the guard: %s", crictlSays(r))
		for _, want := range []string{"nri-armor hook: container ", "nri-armor is not running", `the node does not trust namespace "` + untrustedNS + `"`} {
			if !strings.Contains(crictlSays(r), want) {
				t.Errorf("a tolerating pod of an untrusted namespace: %v; want the guard's refusal saying %q", r, want)
			}
		}
	}
	tolerated := runPodIn(t, ownNamespace, "tolerated", map[string]string{tolerateKey: "true"})
	startContainer(t, tolerated, "main", sleeper...)
}

// TestRestart: nri-armor killed while pods run leaves them enforced (the
// state is pinned in the kernel), refuses new containers while it is down,
// and after a restart it knows the running containers again and protects
// new pods.
func TestRestart(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, _ *criRuntime) { testRestart(t) })
}

// testRestart is TestRestart against one runtime.
func testRestart(t *testing.T) {
	a, addr := startWithPolicy(t)
	before := runPod(t, "before", map[string]string{policiesKey: policyName})
	id := startContainer(t, before, "main", sleeper...)
	checkGuarded(t, id, addr)

	a.kill(t)
	checkGuarded(t, id, addr)
	// A new pod: its RunPodSandbox lets containerd drop the dead plugin
	// first (see TestCrashWindow for a create that comes before that).
	during := runPod(t, "during", map[string]string{policiesKey: policyName})
	if cid, r := createContainer(t, during, "main", sleeper...); cid != "" || !strings.Contains(crictlSays(r), `required plugin "nri-armor" not present`) {
		t.Errorf("creating a container while nri-armor is down: id %q, %v; want it refused naming nri-armor", cid, r)
	}

	a = startArmor(t)
	// Synchronize gave it the running container back.
	a.wantMetric(t, enforcedSeries(), 1)
	checkGuarded(t, id, addr)
	after := runPod(t, "after", map[string]string{policiesKey: policyName})
	newID := startContainer(t, after, "main", sleeper...)
	checkGuarded(t, newID, addr)
	a.wantMetric(t, events("StartContainer", "ok"), 1)
	a.wantMetric(t, enforcedSeries(), 2)
	a.wantMetric(t, "nri_armor_policy_sets_loaded", 1)
}

// TestCrashWindow: right after nri-armor dies, a container created before
// any other NRI event (a second container of a running pod) is refused.
// NRI v0.12.3 still lists the dead plugin, so the default validator counts
// it as present, and the CreateContainer call to it is skipped without an
// error; before nri-armor also registered as a validator
// (plugin.ValidateContainerAdjustment), this container started
// unprotected.
func TestCrashWindow(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, _ *criRuntime) { testCrashWindow(t) })
}

// testCrashWindow is TestCrashWindow against one runtime.
func testCrashWindow(t *testing.T) {
	a, addr := startWithPolicy(t)
	p := runPod(t, "window", map[string]string{policiesKey: policyName})
	startContainer(t, p, "first", sleeper...)
	a.kill(t)
	id, r := createContainer(t, p, "second", sleeper...)
	if id == "" {
		t.Logf("created right after the kill: %s", crictlSays(r))
		// NRI names the plugin IDX-NAME.
		if msg := crictlSays(r); !strings.Contains(msg, "validator plugin ") || !strings.Contains(msg, "nri-armor failed") {
			t.Errorf("crictl create right after nri-armor died: %v; want %q", r, "validator plugin 10-nri-armor failed")
		}
		return
	}
	t.Errorf("a container naming %s was created right after nri-armor was killed", policyName)
	if r := crictl(t, "start", id); r.code == 0 {
		checkGuarded(t, id, addr)
	}
}

// TestStartWindow: a container created while nri-armor runs, which then
// dies before the container is started, is not started: NRI alone would
// skip the dead plugin's StartContainer and start it unprotected, but the
// start gate's createRuntime hook (package gate), which nri-armor added at
// CreateContainer, finds no daemon and fails the start, and crictl says
// why. A restarted nri-armor then lets a new container of the pod start,
// enforced.
//
// CRI-O has no such window: it runs `runc create`, and with it the
// createRuntime hooks, at CreateContainer, so the start gate ran while
// nri-armor was up and the rules were in the kernel before nri-armor died;
// `crictl start` then starts the container enforced (asserted).
func TestStartWindow(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, _ *criRuntime) { testStartWindow(t) })
}

// testStartWindow is TestStartWindow against one runtime.
func testStartWindow(t *testing.T) {
	a, addr := startWithPolicy(t)
	p := runPod(t, "startwindow", map[string]string{policiesKey: policyName})
	id, r := createContainer(t, p, "main", sleeper...)
	if id == "" {
		t.Fatalf("crictl create: %v", r)
	}
	a.kill(t)
	if isCRIO(t) {
		mustCrictl(t, "start", id)
		checkGuarded(t, id, addr)
		startArmor(t)
		checkGuarded(t, startContainer(t, p, "again", sleeper...), addr)
		return
	}
	r = crictl(t, "start", id)
	if r.code == 0 {
		t.Errorf("a container naming %s was started after nri-armor was killed", policyName)
		checkGuarded(t, id, addr)
		return
	}
	if says := crictlSays(r); !strings.Contains(says, "nri-armor is not running") {
		t.Errorf("start refused, but crictl says %q: want the start gate's reason", says)
	}
	startArmor(t)
	id2 := startContainer(t, p, "again", sleeper...)
	checkGuarded(t, id2, addr)
}

// TestPolicyEdit: editing the policy file while a pod runs changes what its
// running container may do within moments (the store reloads it and the
// kernel set is swapped), and a bad edit leaves the last good version in
// force and is counted.
func TestPolicyEdit(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, _ *criRuntime) { testPolicyEdit(t) })
}

// testPolicyEdit is TestPolicyEdit against one runtime.
func testPolicyEdit(t *testing.T) {
	need(t)
	rawOnly := strings.Replace(noRawNoTCP, "    - protocol: tcp\n", "", 1)
	writePolicy(t, "no-raw-no-tcp.yaml", rawOnly)
	a := startArmor(t)
	addr := listen(t)
	p := runPod(t, "edit", map[string]string{policiesKey: policyName})
	id := startContainer(t, p, "main", sleeper...)
	wantDenied(t, execIn(t, id, "nettool", "raw"), "socket raw")
	wantOK(t, execIn(t, id, "nettool", "connect", addr), "connect before the edit", "hello from the host")

	writePolicy(t, "no-raw-no-tcp.yaml", noRawNoTCP)
	var r result
	waitFor(t, "the edit to reach the running container", 10*time.Second, func() bool {
		r = execIn(t, id, "nettool", "connect", addr)
		return r.code != 0
	})
	checkGuarded(t, id, addr)

	writePolicy(t, "no-raw-no-tcp.yaml", noRawNoTCP+"  severity: 99\n")
	waitFor(t, "the bad edit to be counted", 10*time.Second, func() bool {
		return a.metric(t, "nri_armor_policy_files_rejected_total") == 1
	})
	checkGuarded(t, id, addr)
	// Put the file back as the other tests expect it.
	writePolicy(t, "no-raw-no-tcp.yaml", noRawNoTCP)
}

// TestNoStartGate: without the start gate (gateBinary empty) a container's
// rules are installed at StartContainer. containerd fails the start when
// that fails, and the container starts enforced; CRI-O only logs a
// StartContainer error, so there nri-armor refuses the container at
// create, saying why, rather than risk it running without its rules. (In
// nri-armor's own namespace, which the node's guard trusts while no gate
// answers.)
func TestNoStartGate(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *criRuntime) {
		need(t)
		writePolicy(t, "own-no-raw-no-tcp.yaml", strings.Replace(noRawNoTCP, "namespace: "+podNamespace, "namespace: "+ownNamespace, 1))
		startArmor(t, "-gateBinary", "")
		addr := listen(t)
		p := runPodIn(t, ownNamespace, "nogate", map[string]string{policiesKey: policyName})
		id, r := createContainer(t, p, "main", sleeper...)
		if rt == crioRuntime {
			wantRefusedCreate(t, id, r, "with rules and no start gate on CRI-O", "CRI-O only logs a plugin's refusal at StartContainer", "gateBinary is empty")
			return
		}
		if id == "" {
			t.Fatalf("crictl create: %v", r)
		}
		mustCrictl(t, "start", id)
		checkGuarded(t, id, addr)
	})
}
