package tracer

import (
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer/alert"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// TestEnforcementAlert: a kernel Block decision becomes a MatchedPolicy
// alert with the container's identity, the rule's provenance and the
// enforcer that the container's record names.
func TestEnforcementAlert(t *testing.T) {
	e := newEnv(t, testConfig())
	ev := e.rawSocketBlock(t)
	e.t.procs.observe(&telemetry.Event{Kind: telemetry.KindExec, TGID: 300, PID: 300, Path: "/bin/sh", Comm: "sh"}, "/bin/sh")
	e.t.procs.observe(&telemetry.Event{Kind: telemetry.KindFork, TGID: 301, PID: 301, PPID: 300, Comm: "sh"}, "")
	e.t.procs.observe(&telemetry.Event{Kind: telemetry.KindExec, TGID: 301, PID: 301, PPID: 300, Path: "/bin/ping", Comm: "ping"}, "/bin/ping")
	e.t.Enforcement(&ev)
	got := e.alerts(t)
	if len(got) != 1 {
		t.Fatalf("%d alerts, want 1: %+v", len(got), got)
	}
	a := got[0]
	want := alert.Alert{
		Timestamp: a.Timestamp, UpdatedTime: a.UpdatedTime, ClusterName: "test", HostName: "node-1",
		NamespaceName: "shop", PodName: "web-1", Labels: "app=web,tier=front", ContainerID: "c0ffee",
		ContainerName: "nginx", ContainerImage: "nginx:1.27", HostPID: 301, PID: 301, HostPPID: 300, PPID: 300,
		ParentProcessName: "/bin/sh", ProcessName: "/bin/ping", PolicyName: "shop-guard", Severity: "7",
		Tags: "MITRE,T1040", ATags: []string{"MITRE", "T1040"}, Message: "raw sockets are not for shops",
		Type: alert.TypeMatchedPolicy, Source: "/bin/ping", Operation: alert.OpNetwork,
		Resource: "domain=AF_INET type=SOCK_RAW protocol=1",
		Data:     "set=" + e.rs.ShortDigest() + " rule=" + strconv.Itoa(int(ev.RuleID)),
		Enforcer: "CgroupBPF", Action: "Block", Result: alert.ResultPermissionDenied,
	}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("alert\n%+v\nwant\n%+v", a, want)
	}
	if a.UpdatedTime == "" || a.Timestamp == 0 {
		t.Fatalf("no time: %+v", a)
	}

	// The kernel's set id is gone and the container's record too: the
	// alert still goes out, saying what is unknown.
	ev.CgroupID, ev.SetID = 999, 77
	e.t.Enforcement(&ev)
	got = e.alerts(t)
	if len(got) != 1 || got[0].PodName != "" || got[0].Enforcer != "CgroupBPF" || !strings.Contains(got[0].Data, "unresolved") {
		t.Fatalf("alert of an unknown cgroup: %+v", got)
	}

	// A socket refused for want of memory to decide in (no rule): the
	// built-in policy says why, the socket is named.
	ev = e.rawSocketBlock(t)
	ev.RuleID, ev.NoMemory = 0, true
	e.t.Enforcement(&ev)
	got = e.alerts(t)
	if len(got) != 1 || got[0].PolicyName != "nri-armor-builtin" || !strings.Contains(got[0].Message, "no memory to decide in") ||
		got[0].Resource != "domain=AF_INET type=SOCK_RAW protocol=1" || got[0].Result != alert.ResultPermissionDenied {
		t.Fatalf("alert of a refusal for want of memory: %+v", got)
	}
}

// TestExecInPlace: a process that exec'd in place (a shell's last command)
// is named by its new program in an enforcement alert, even before the
// tracer reads the exec's own event; another thread's name of its own does
// not rename the process.
func TestExecInPlace(t *testing.T) {
	proc := t.TempDir()
	dir := filepath.Join(proc, "301")
	exe := filepath.Join(dir, "exe")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for target, link := range map[string]string{"/": filepath.Join(dir, "root"), "/bin/sh": exe} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig()
	cfg.ProcRoot = proc
	e := newEnv(t, cfg)
	e.t.procs.observe(&telemetry.Event{Kind: telemetry.KindExec, TGID: 301, PID: 301, PPID: 300, Path: "/bin/sh", Comm: "sh"}, "/bin/sh")
	// sh execs ping in its place.
	if err := os.Remove(exe); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/bin/ping", exe); err != nil {
		t.Fatal(err)
	}
	ev := e.rawSocketBlock(t) // pid 301, comm ping
	e.t.Enforcement(&ev)
	ev.PID, ev.Comm = 302, "worker"
	e.t.Enforcement(&ev)
	got := e.alerts(t)
	if len(got) != 2 || got[0].ProcessName != "/bin/ping" || got[1].ProcessName != "/bin/ping" {
		t.Fatalf("alerts after an exec in place name %+v, want /bin/ping twice", got)
	}
}

// TestTelemetryMatching: classes the kernel does not enforce for a
// container are matched in user space ("eBPF Monitor", the truthful
// action); classes it enforces are not reported twice; visibility gives
// ContainerLogs; unknown cgroups are counted, not reported.
func TestTelemetryMatching(t *testing.T) {
	e := newEnv(t, testConfig())
	tr := e.t
	// /bin/sh (300) forks 301, which execs cat and opens /etc/shadow.
	for _, ev := range []telemetry.Event{
		execEv(e.cg, 300, 1, "/bin/sh"),
		{Kind: telemetry.KindFork, CgroupID: e.cg, PID: 301, TGID: 301, PPID: 300, Comm: "sh"},
		execEv(e.cg, 301, 300, "/bin/cat"),
		openEv(e.cg, 301, "/etc/shadow", syscall.O_RDONLY),
	} {
		tr.Telemetry(&ev)
	}
	got := e.alerts(t)
	if len(got) != 3 {
		t.Fatalf("%d records, want 3 (two exec logs, one alert): %+v", len(got), got)
	}
	if got[0].Type != alert.TypeContainerLog || got[0].Operation != alert.OpProcess || got[0].Resource != "/bin/sh" {
		t.Fatalf("exec log %+v", got[0])
	}
	if l := got[1]; l.Type != alert.TypeContainerLog || l.Resource != "/bin/cat" || l.Source != "/bin/sh" || l.ProcessName != "/bin/cat" || l.ParentProcessName != "/bin/sh" {
		t.Fatalf("exec of cat: %+v", l)
	}
	a := got[2]
	if a.Type != alert.TypeMatchedPolicy || a.Enforcer != alert.EnforcerMonitor || a.Action != "Block" || a.Result != alert.ResultPassed ||
		a.PolicyName != "shop-guard" || a.Severity != "9" || a.Message != "shadow read" || a.Operation != alert.OpFile ||
		a.Resource != "/etc/shadow" || a.ProcessName != "/bin/cat" || a.ParentProcessName != "/bin/sh" || a.HostPID != 301 ||
		!strings.Contains(a.Data, "unenforced=true") || a.PodName != "web-1" {
		t.Fatalf("audit-only Block alert: %+v", a)
	}

	// A process the tracer never saw before execs: the caller's executable
	// is taken from its parent, not from /proc (which shows the new one).
	ex := execEv(e.cg, 400, 301, "/usr/bin/env")
	tr.Telemetry(&ex)
	if l := e.alerts(t); len(l) != 1 || l[0].Source != "/bin/cat" || l[0].ProcessName != "/usr/bin/env" || l[0].ParentProcessName != "/bin/cat" {
		t.Fatalf("exec of an unseen process: %+v", l)
	}

	// An Audit rule on a file; a write under it.
	ev := openEv(e.cg, 301, "/var/log/app/x.log", syscall.O_WRONLY|syscall.O_APPEND)
	tr.Telemetry(&ev)
	// Network is enforced in the kernel for this container: its raw
	// socket is the kernel's alert, not a second one here, and no log.
	ev = telemetry.Event{Kind: telemetry.KindSocket, CgroupID: e.cg, PID: 301, TGID: 301, Family: syscall.AF_INET, SockType: syscall.SOCK_RAW, Protocol: 1, Ret: -int64(syscall.EPERM)}
	tr.Telemetry(&ev)
	// Visibility has no network: a connect is not logged.
	ev = telemetry.Event{Kind: telemetry.KindConnect, CgroupID: e.cg, PID: 301, TGID: 301, Family: syscall.AF_INET, SockType: syscall.SOCK_STREAM, Addr: netip.MustParseAddrPort("10.0.0.1:80")}
	tr.Telemetry(&ev)
	// A plain open with file visibility: a ContainerLog (process 301 is
	// not in this ProcRoot: its path is only cleaned, and Data says so).
	ev = openEv(e.cg, 301, "/etc/hosts", syscall.O_RDONLY|syscall.O_CLOEXEC)
	tr.Telemetry(&ev)
	// Unknown cgroup, no host record: counted only.
	ev = openEv(1234567, 5, "/etc/shadow", 0)
	tr.Telemetry(&ev)
	got = e.alerts(t)
	if len(got) != 2 {
		t.Fatalf("%d records, want 2: %+v", len(got), got)
	}
	if a := got[0]; a.Action != "Audit" || a.Result != alert.ResultPassed || a.Enforcer != alert.EnforcerMonitor || a.Resource != "/var/log/app/x.log" || !strings.Contains(a.Data, "O_WRONLY|O_APPEND") {
		t.Fatalf("audit alert %+v", a)
	}
	if l := got[1]; l.Type != alert.TypeContainerLog || l.Resource != "/etc/hosts" || l.Data != "syscall=SYS_OPENAT flags=O_RDONLY|O_CLOEXEC symlinks=unresolved" || l.Action != "" {
		t.Fatalf("file log %+v", l)
	}
	if n := counterValue(t, e.m, "nri_armor_tracer_events_unattributed_total", "type", "open"); n != 1 {
		t.Fatalf("unattributed opens %v, want 1", n)
	}
	if n := counterValue(t, e.m, "nri_armor_tracer_events_total", "type", "open"); n != 4 {
		t.Fatalf("open events %v, want 4", n)
	}
}

// TestUnenforcedRules: in a class the kernel enforces, the rules its
// enforcer cannot express (the record's Unenforced ids) are matched in user
// space and reported by "eBPF Monitor"; the others are left to the kernel.
func TestUnenforcedRules(t *testing.T) {
	e := newEnv(t, testConfig())
	shadow := e.ruleID(t, policy.ClassFile, "/etc/shadow")
	err := e.dir.PutContainer(state.Container{CgroupID: 88, ContainerName: "nginx", PodName: "web-2", PodNamespace: "shop",
		PolicySet: e.rs.Digest, Visibility: policy.Visibility{File: true},
		Enforcers:  map[policy.Class]string{policy.ClassFile: "BPFLSM", policy.ClassNetwork: "BPFLSM"},
		Unenforced: []int{shadow}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []telemetry.Event{
		openEv(88, 9, "/etc/shadow", 0),               // unenforced rule: reported here
		openEv(88, 9, "/var/log/x", syscall.O_WRONLY), // enforced Audit rule: the kernel's alert
		{Kind: telemetry.KindSocket, CgroupID: 88, TGID: 9, PID: 9, Family: syscall.AF_INET, SockType: syscall.SOCK_RAW, Protocol: 1},
	} {
		e.t.Telemetry(&ev)
	}
	got := e.alerts(t)
	if len(got) != 1 || got[0].Resource != "/etc/shadow" || got[0].Enforcer != alert.EnforcerMonitor || got[0].Action != "Block" ||
		got[0].Result != alert.ResultPassed || !strings.Contains(got[0].Data, "unenforced=true") || got[0].PodName != "web-2" {
		t.Fatalf("alerts %+v", got)
	}
}

// TestHostPolicy: with host.json naming a set, host processes' events
// give MatchedHostPolicy alerts and HostLogs.
func TestHostPolicy(t *testing.T) {
	e := newEnv(t, testConfig())
	hrs := policytest.Compile(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata: {name: host-guard}
spec:
  nodeSelector: {matchLabels: {kubernetes.io/hostname: node-1}}
  severity: 5
  file:
    matchPaths:
    - path: /etc/sudoers
  action: Audit
`)
	if err := e.dir.PutSet(hrs); err != nil {
		t.Fatal(err)
	}
	ev := openEv(1, 10, "/etc/sudoers", 0)
	e.t.Telemetry(&ev) // no host.json yet: unattributed
	if got := e.alerts(t); len(got) != 0 {
		t.Fatalf("alerts without a host record: %+v", got)
	}
	if err := e.dir.PutHost(state.Host{NodeName: "node-1", PolicySet: hrs.Digest, Visibility: policy.Visibility{Process: true}}); err != nil {
		t.Fatal(err)
	}
	e.clock.add(time.Minute) // past the negative cache
	e.t.Telemetry(&ev)
	ex := execEv(1, 11, 1, "/usr/bin/id")
	e.t.Telemetry(&ex)
	got := e.alerts(t)
	if len(got) != 2 || got[0].Type != alert.TypeMatchedHostPolicy || got[0].PolicyName != "host-guard" || got[0].Action != "Audit" ||
		got[0].Enforcer != alert.EnforcerMonitor || got[0].PodName != "" || got[1].Type != alert.TypeHostLog || got[1].Resource != "/usr/bin/id" {
		t.Fatalf("host alerts %+v", got)
	}
}

// TestRelativeOpen: a relative path is resolved against the process's cwd
// (here the test process itself, alive in /proc).
func TestRelativeOpen(t *testing.T) {
	cfg := testConfig()
	cfg.ProcRoot = "/proc"
	e := newEnv(t, cfg)
	wd, _ := os.Getwd()
	pid := uint32(os.Getpid())
	ev := openEv(e.cg, pid, "sub/file.txt", 0)
	e.t.Telemetry(&ev)
	ev = openEv(e.cg, 1<<30, "gone.txt", 0) // no such process: stays relative, and says so
	e.t.Telemetry(&ev)
	got := e.alerts(t)
	if len(got) != 2 || got[0].Resource != filepath.Join(wd, "sub/file.txt") || got[0].Cwd != wd {
		t.Fatalf("relative open %+v", got)
	}
	if got[1].Resource != "gone.txt" || !strings.Contains(got[1].Data, "relative=unresolved") {
		t.Fatalf("unresolvable relative open %+v", got[1])
	}
	if got[0].PID != int64(pid) || got[0].ProcessName == "" {
		t.Fatalf("process from /proc: %+v", got[0])
	}
}

// TestIdentityFollowsState: the tracer picks up containers published
// after it started, changes to them (fsnotify), and a state directory
// created after it started — no restart.
func TestIdentityFollowsState(t *testing.T) {
	root := filepath.Join(t.TempDir(), "state")
	cfg := testConfig()
	cfg.NegativeCacheTTL = time.Hour // only fsnotify can make the tracer look again
	cfg.StateMaxAge = time.Hour
	dir, _ := state.Open(root, false)
	tr := New(Options{Config: cfg, State: dir, Now: time.Now})
	ctx, cancel := contextWithCancel(t)
	defer cancel()
	go tr.ids.Watch(ctx, 20*time.Millisecond)
	if c := tr.ids.Container(7); c != nil {
		t.Fatalf("container before anything was published: %+v", c)
	}
	dir, err := state.Open(root, true) // nri-armor starts
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the watch is re-established
	if err := dir.PutContainer(state.Container{CgroupID: 7, PodName: "a", PodNamespace: "ns"}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "new container seen", func() bool { c := tr.ids.Container(7); return c != nil && c.PodName == "a" })
	if err := dir.PutContainer(state.Container{CgroupID: 7, PodName: "b", PodNamespace: "ns"}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "changed container seen", func() bool { c := tr.ids.Container(7); return c != nil && c.PodName == "b" })
	if err := dir.DeleteContainer(7); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "removed container gone", func() bool { return tr.ids.Container(7) == nil })
	if n := tr.ids.Watched(); n != 0 {
		t.Fatalf("watched %d", n)
	}
}

// TestFalcoFormat: format falco writes Falco's JSON keys.
func TestFalcoFormat(t *testing.T) {
	cfg := testConfig()
	cfg.Format = "falco"
	e := newEnv(t, cfg)
	ev := e.rawSocketBlock(t)
	e.t.Enforcement(&ev)
	e.t.Flush()
	var f map[string]any
	if err := json.Unmarshal(e.out.Bytes(), &f); err != nil {
		t.Fatalf("%v: %s", err, e.out.Bytes())
	}
	for _, k := range []string{"time", "rule", "priority", "output", "output_fields", "source", "tags", "hostname"} {
		if _, ok := f[k]; !ok {
			t.Errorf("no %q in %s", k, e.out.Bytes())
		}
	}
	of := f["output_fields"].(map[string]any)
	if f["rule"] != "shop-guard" || f["priority"] != "Error" || f["source"] != "syscall" || f["hostname"] != "node-1" ||
		of["k8s.ns.name"] != "shop" || of["k8s.pod.name"] != "web-1" || of["container.name"] != "nginx" || of["nri_armor.enforcer"] != "CgroupBPF" {
		t.Fatalf("falco alert %s", e.out.Bytes())
	}
	// The stream stays in KubeArmor's shape.
	rec := httptest.NewRecorder()
	e.hub.ServeHTTP(rec, httptest.NewRequest("GET", alert.StreamPath+"?type=all", nil))
	if recent := rec.Body.String(); strings.Count(recent, "\n") != 1 || !strings.Contains(recent, `"PodName":"web-1"`) {
		t.Fatalf("stream %q", recent)
	}
}

func TestResult(t *testing.T) {
	for ret, want := range map[int64]string{3: "Passed", 0: "Passed", -int64(syscall.EACCES): "Permission denied",
		-int64(syscall.EPERM): "Operation not permitted", -int64(syscall.ENOENT): "no such file or directory"} {
		if got := result(ret); got != want {
			t.Errorf("result(%d) = %q, want %q", ret, got, want)
		}
	}
}

// TestCgroupBPFPacketSockets: on a cgroup-BPF node a `raw` rule is
// unenforced for AF_PACKET sockets only (the cgroup hooks are inet's): an
// inet raw socket is the kernel's alert, a packet one this path's.
func TestCgroupBPFPacketSockets(t *testing.T) {
	e := newEnv(t, testConfig())
	raw := e.ruleID(t, policy.ClassNetwork, "raw")
	err := e.dir.PutContainer(state.Container{
		CgroupID: 4444, ContainerID: "5a1ff", ContainerName: "sniffer", PodName: "web-2", PodNamespace: "shop",
		PolicySet: e.rs.Digest, Mode: policy.ModeEnforce,
		Enforcers: map[policy.Class]string{policy.ClassNetwork: "CgroupBPF"}, Unenforced: []int{raw},
	})
	if err != nil {
		t.Fatal(err)
	}
	inet := telemetry.Event{Kind: telemetry.KindSocket, CgroupID: 4444, PID: 601, TGID: 601, Family: syscall.AF_INET, SockType: syscall.SOCK_RAW, Protocol: 1, Ret: -int64(syscall.EPERM)}
	packet := telemetry.Event{Kind: telemetry.KindSocket, CgroupID: 4444, PID: 601, TGID: 601, Family: syscall.AF_PACKET, SockType: syscall.SOCK_RAW, Protocol: 0x0300, Ret: 3}
	e.t.Telemetry(&inet)
	e.t.Telemetry(&packet)
	got := e.alerts(t)
	if len(got) != 1 || got[0].Enforcer != alert.EnforcerMonitor || got[0].Result != alert.ResultPassed || !strings.Contains(got[0].Data, "unenforced=true") ||
		!strings.Contains(got[0].Resource, "AF_PACKET") {
		t.Fatalf("alerts %+v; want one, the packet socket's, Block Passed by the monitor", got)
	}
}
