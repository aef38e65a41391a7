package tracer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer/alert"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// Records in the kernel's format (security/apparmor/{audit,file,
// capability,net}.c, security/lsm_audit.c): the header, then apparmor=,
// operation=, class=, profile=, name=, pid= and comm= (lsm_audit), then
// the class's fields; the capability's number with a space after it.
const aaProfile = `"nri-armor.shop.nginx.0123456789abcdef"`

func aaRecord(kind, op, class, rest string) string {
	s := `audit(1796494300.250:90): apparmor="` + kind + `" operation="` + op + `"`
	if class != "" {
		s += ` class="` + class + `"`
	}
	return s + " profile=" + aaProfile + " " + rest
}

func TestParseAppArmor(t *testing.T) {
	r, ok := ParseAppArmor(aaRecord("DENIED", "open", "file", `name="/etc/shadow" pid=1234 comm="cat" requested_mask="r" denied_mask="r" fsuid=1000 ouid=0`))
	if !ok || r.Kind != "DENIED" || r.Operation != "open" || r.Class != "file" || r.Profile != "nri-armor.shop.nginx.0123456789abcdef" ||
		r.Name != "/etc/shadow" || r.PID != 1234 || r.Comm != "cat" || r.Requested != "r" || r.Denied != "r" || r.FSUID != 1000 || r.OUID != 0 ||
		r.Capability != -1 || !r.Refused() {
		t.Errorf("open: %+v %v", r, ok)
	}
	if want := time.Unix(1796494300, 250*int64(time.Millisecond)); !r.Time.Equal(want) {
		t.Errorf("time %v, want %v", r.Time, want)
	}
	// A name with a space, and a comm with one, are hex (upper case, as
	// audit_log_n_hex writes); a quoted name is as it is, backslashes too.
	r, ok = ParseAppArmor(aaRecord("AUDIT", "open", "file", `name=2F746D702F6D792066696C65 pid=7 comm=6D7920636174 requested_mask="w" fsuid=0 ouid=0`))
	if !ok || r.Name != "/tmp/my file" || r.Comm != "my cat" || r.Refused() || r.Denied != "" {
		t.Errorf("hex: %+v %v", r, ok)
	}
	r, ok = ParseAppArmor(aaRecord("AUDIT", "open", "file", `name="/tmp/a\nb" pid=7 comm="cat" requested_mask="r" fsuid=0 ouid=0`))
	if !ok || r.Name != `/tmp/a\nb` {
		t.Errorf("backslash: %q %v", r.Name, ok)
	}
	r, ok = ParseAppArmor(aaRecord("DENIED", "exec", "file", `name="/usr/bin/curl" pid=9 comm="sh" requested_mask="x" denied_mask="x" fsuid=0 ouid=0`))
	if !ok || r.Operation != "exec" || r.Name != "/usr/bin/curl" || r.Requested != "x" {
		t.Errorf("exec: %+v %v", r, ok)
	}
	r, ok = ParseAppArmor(aaRecord("DENIED", "capable", "cap", `pid=9 comm="ping" capability=13  capname="net_raw"`))
	if !ok || r.Capability != 13 || r.Class != "cap" {
		t.Errorf("capable: %+v %v", r, ok)
	}
	r, ok = ParseAppArmor(aaRecord("DENIED", "create", "net", `pid=9 comm="ping" family="inet" sock_type="raw" protocol=1 requested_mask="create" denied_mask="create"`))
	if !ok || r.Family != "inet" || r.SockType != "raw" || r.Protocol != 1 || r.Requested != "create" {
		t.Errorf("create: %+v %v", r, ok)
	}
	// Linux before class= (Debian 12's 6.1).
	r, ok = ParseAppArmor(aaRecord("DENIED", "open", "", `name="/etc/shadow" pid=1 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`))
	if !ok || r.Class != "" || r.Name != "/etc/shadow" {
		t.Errorf("no class: %+v %v", r, ok)
	}
	for _, bad := range []string{
		"",
		`audit(1796494300.250:91): avc:  denied  { read } for  pid=1234 comm="cat" name="shadow" scontext=u:r:container_t:s0 tclass=file permissive=0`,
		`audit(1796494300.250:92): apparmor="DENIED" operation="open" pid=x comm="cat"`,
		`apparmor="DENIED" operation="open" pid=1`,
	} {
		if r, ok := ParseAppArmor(bad); ok {
			t.Errorf("%q parsed: %+v", bad, r)
		}
	}
}

// TestAppArmorOperation: the one mapping from a record to the operation
// the rules decide, and to the alert's Operation and Resource.
func TestAppArmorOperation(t *testing.T) {
	for _, c := range []struct {
		rec           string
		class         policy.Class
		write         bool
		op, resource  string
		path, cap     string
		fam, typ, pro string
	}{
		{rec: aaRecord("DENIED", "open", "file", `name="/etc/shadow" pid=1 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`),
			class: policy.ClassFile, op: alert.OpFile, resource: "/etc/shadow", path: "/etc/shadow"},
		{rec: aaRecord("DENIED", "open", "file", `name="/etc/passwd" pid=1 comm="sh" requested_mask="wc" denied_mask="wc" fsuid=0 ouid=0`),
			class: policy.ClassFile, write: true, op: alert.OpFile, resource: "/etc/passwd", path: "/etc/passwd"},
		{rec: aaRecord("DENIED", "unlink", "file", `name="/etc/passwd" pid=1 comm="rm" requested_mask="d" denied_mask="d" fsuid=0 ouid=0`),
			class: policy.ClassFile, write: true, op: alert.OpFile, resource: "/etc/passwd", path: "/etc/passwd"},
		{rec: aaRecord("AUDIT", "open", "", `name="/var/log/a" pid=1 comm="sh" requested_mask="a" fsuid=0 ouid=0`),
			class: policy.ClassFile, write: true, op: alert.OpFile, resource: "/var/log/a", path: "/var/log/a"},
		{rec: aaRecord("DENIED", "exec", "file", `name="/usr/bin/curl" pid=1 comm="sh" requested_mask="x" denied_mask="x" fsuid=0 ouid=0`),
			class: policy.ClassProcess, op: alert.OpProcess, resource: "/usr/bin/curl", path: "/usr/bin/curl"},
		{rec: aaRecord("DENIED", "file_mmap", "file", `name="/usr/bin/curl" pid=1 comm="ld.so" requested_mask="m" denied_mask="m" fsuid=0 ouid=0`),
			class: policy.ClassProcess, op: alert.OpProcess, resource: "/usr/bin/curl", path: "/usr/bin/curl"},
		{rec: aaRecord("DENIED", "capable", "cap", `pid=1 comm="ping" capability=13  capname="net_raw"`),
			class: policy.ClassCapabilities, op: alert.OpCapabilities, resource: "CAP_NET_RAW", cap: "net_raw"},
		{rec: aaRecord("DENIED", "create", "net", `pid=1 comm="ping" family="inet" sock_type="raw" protocol=1 requested_mask="create" denied_mask="create"`),
			class: policy.ClassNetwork, op: alert.OpNetwork, resource: "domain=AF_INET type=SOCK_RAW protocol=1", fam: "inet", typ: "raw", pro: "icmp"},
		{rec: aaRecord("AUDIT", "create", "net", `pid=1 comm="dig" family="inet6" sock_type="dgram" protocol=0 requested_mask="create"`),
			class: policy.ClassNetwork, op: alert.OpNetwork, resource: "domain=AF_INET6 type=SOCK_DGRAM protocol=0", fam: "inet6", typ: "dgram", pro: "udp"},
		{rec: aaRecord("DENIED", "create", "net", `pid=1 comm="tcpdump" family="packet" sock_type="raw" protocol=768 requested_mask="create" denied_mask="create"`),
			class: policy.ClassNetwork, op: alert.OpNetwork, resource: "domain=AF_PACKET type=SOCK_RAW protocol=768", fam: "packet", typ: "raw"},
	} {
		r, ok := ParseAppArmor(c.rec)
		if !ok {
			t.Fatalf("%s: not parsed", c.rec)
		}
		ev, op, resource, data, why := r.operation()
		if why != "" || ev.Class != c.class || ev.Write != c.write || ev.Path != c.path || ev.Capability != c.cap ||
			ev.Family != c.fam || ev.SocketType != c.typ || ev.Protocol != c.pro || op != c.op || resource != c.resource ||
			!strings.HasPrefix(data, "apparmor="+r.Kind+" operation="+r.Operation) {
			t.Errorf("%s:\n got %+v %q %q %q %q", c.rec, ev, op, resource, data, why)
		}
	}
	for _, rec := range []string{
		aaRecord("DENIED", "mount", "mount", `info="failed perms check" error=-13 pid=1 comm="mount" fstype="proc" srcname="proc" flags="rw"`),
		aaRecord("DENIED", "signal", "signal", `pid=1 comm="kill" requested_mask="send" denied_mask="send" signal=kill peer="unconfined"`),
		aaRecord("DENIED", "file_lock", "file", `name="/etc/x" pid=1 comm="flock" requested_mask="k" denied_mask="k" fsuid=0 ouid=0`),
		aaRecord("DENIED", "create", "net", `pid=1 comm="ip" family="netlink" sock_type="raw" protocol=0 requested_mask="create" denied_mask="create"`),
	} {
		r, _ := ParseAppArmor(rec)
		if _, _, _, _, why := r.operation(); why != aaNoRuleClass {
			t.Errorf("%s: why %q, want %q", rec, why, aaNoRuleClass)
		}
	}
}

// aaPolicy: Block and Audit rules of each class AppArmor enforces, a
// fromSource Block its profile leaves out, a partial (process) Audit, a
// network Audit that cgroup-BPF reports, and a capability allow-list with
// the default Audit posture (which the profile does not log).
const aaPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: shop-aa, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  severity: 7
  message: not in a shop
  file:
    matchPaths:
    - path: /etc/shadow
      severity: 9
      message: shadow read
    - path: /etc/app.conf
      fromSource: [{path: /bin/cat}]
    matchDirectories:
    - dir: /var/log/
      recursive: true
      action: Audit
  process:
    matchPaths:
    - path: /usr/bin/curl
    - path: /usr/bin/wget
      action: Audit
  network:
    matchProtocols:
    - protocol: raw
    - protocol: udp
      action: Audit
  capabilities:
    matchCapabilities:
    - capability: net_raw
    - capability: net_bind_service
      action: Allow
  action: Block
`

// aaEnv is an env whose container is enforced by AppArmor (process, file,
// capabilities; network by cgroup-BPF), its unenforced ids those of the
// profile the compiler writes for the set, and whose process aaPID is in
// its cgroup: a fake /proc and cgroup2 tree, so that pid → cgroup → container
// runs as on a node.
type aaEnv struct {
	*env
	proc string
}

const aaPID = 4321

func newAAEnv(t *testing.T, doc string, postures policy.Postures) *aaEnv {
	t.Helper()
	dir, err := state.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	rs := policy.Compile(policytest.Load(t, doc), policy.Options{Postures: postures, Mode: policy.ModeEnforce})
	if err := dir.PutSet(rs); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	proc, cg2 := filepath.Join(root, "proc"), filepath.Join(root, "cgroup")
	if err := os.MkdirAll(filepath.Join(cg2, "kubepods", "web"), 0o755); err != nil {
		t.Fatal(err)
	}
	cg, err := cgroups.ID(filepath.Join(cg2, "kubepods", "web"))
	if err != nil {
		t.Fatal(err)
	}
	writeProc(t, proc, aaPID, "/kubepods/web", 1000)
	// What the plugin publishes: the profile of the set's process, file
	// and capability rules (apparmor.Restrict) leaves some out, and
	// cgroup-BPF enforces raw, packet and all rules only in part (not on
	// AF_PACKET sockets: enforce/cgroupnet).
	prof, err := apparmor.Compile(apparmor.NamePrefix+"shop.nginx.0123456789abcdef", apparmor.Restrict(rs), nil)
	if err != nil {
		t.Fatal(err)
	}
	var unenforced []int
	for _, u := range prof.Unenforced {
		unenforced = append(unenforced, u.Rule.ID)
	}
	for _, r := range rs.Network.Rules {
		if v := r.Match.Value; v == "raw" || v == "packet" || v == "all" {
			unenforced = append(unenforced, r.ID)
		}
	}
	err = dir.PutContainer(state.Container{
		CgroupID: cg, ContainerID: "c0ffee", ContainerName: "nginx", PodName: "web-1", PodNamespace: "shop",
		PodLabels: map[string]string{"app": "web"}, Image: "nginx:1.27", PolicySet: rs.Digest, Mode: policy.ModeEnforce,
		Enforcers: map[policy.Class]string{policy.ClassProcess: enforce.BackendAppArmor, policy.ClassFile: enforce.BackendAppArmor,
			policy.ClassCapabilities: enforce.BackendAppArmor, policy.ClassNetwork: enforce.BackendCgroupBPF},
		Unenforced: unenforced,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.ProcRoot = proc
	e := envOf(cfg, dir, rs, cg)
	e.t.cg2 = cg2
	return &aaEnv{env: e, proc: proc}
}

// writeProc makes <proc>/<pid> a process in cgroup rel with real uid uid.
func writeProc(t *testing.T, proc string, pid int, rel string, uid int) {
	t.Helper()
	d := filepath.Join(proc, strconv.Itoa(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	u := strconv.Itoa(uid)
	for name, text := range map[string]string{
		"cgroup": "0::" + rel + "\n",
		"status": "Name:\tsh\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t" + strconv.Itoa(pid) + "\nPPid:\t1\nUid:\t" + u + "\t" + u + "\t" + u + "\t" + u + "\n",
	} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *aaEnv) feed(t *testing.T, rec string) {
	t.Helper()
	r, ok := ParseAppArmor(rec)
	if !ok {
		t.Fatalf("not parsed: %s", rec)
	}
	e.t.Audit(&r)
}

func pidRec(kind, op, class, rest string) string {
	return aaRecord(kind, op, class, "pid="+strconv.Itoa(aaPID)+" "+rest)
}

// TestAppArmorAlerts: each class's refusal and log in the container's
// profile becomes the alert a BPF-LSM node gives — identity, policy,
// severity, rule — with Enforcer AppArmor; what no rule decides, what
// another enforcer reports, and what is not nri-armor's is counted by
// reason; a process that is gone is unattributed.
func TestAppArmorAlerts(t *testing.T) {
	e := newAAEnv(t, aaPolicy, policy.DefaultDefaults().Postures)
	want := []struct {
		rec                                  string
		op, resource, action, result, policy string
		severity                             string
		rule                                 int
	}{
		{pidRec("DENIED", "open", "file", `comm="cat" name="/etc/shadow" requested_mask="r" denied_mask="r" fsuid=1000 ouid=0`),
			alert.OpFile, "/etc/shadow", "Block", alert.ResultPermissionDenied, "shop-aa", "9", e.ruleID(t, policy.ClassFile, "/etc/shadow")},
		{pidRec("AUDIT", "open", "file", `comm="sh" name="/var/log/app/x.log" requested_mask="wc" fsuid=1000 ouid=1000`),
			alert.OpFile, "/var/log/app/x.log", "Audit", alert.ResultPassed, "shop-aa", "7", e.ruleID(t, policy.ClassFile, "/var/log/")},
		{pidRec("DENIED", "exec", "file", `comm="sh" name="/usr/bin/curl" requested_mask="x" denied_mask="x" fsuid=1000 ouid=0`),
			alert.OpProcess, "/usr/bin/curl", "Block", alert.ResultPermissionDenied, "shop-aa", "7", e.ruleID(t, policy.ClassProcess, "/usr/bin/curl")},
		{pidRec("AUDIT", "exec", "", `comm="sh" name="/usr/bin/wget" requested_mask="x" fsuid=1000 ouid=0`),
			alert.OpProcess, "/usr/bin/wget", "Audit", alert.ResultPassed, "shop-aa", "7", e.ruleID(t, policy.ClassProcess, "/usr/bin/wget")},
		{pidRec("DENIED", "capable", "cap", `comm="ping" capability=13  capname="net_raw"`),
			alert.OpCapabilities, "CAP_NET_RAW", "Block", alert.ResultPermissionDenied, "shop-aa", "7", e.ruleID(t, policy.ClassCapabilities, "net_raw")},
		// Refused by AppArmor, whose hook runs before cgroup-BPF's
		// sock_create: only this record tells.
		{pidRec("DENIED", "create", "net", `comm="ping" family="inet" sock_type="raw" protocol=1 requested_mask="create" denied_mask="create"`),
			alert.OpNetwork, "domain=AF_INET type=SOCK_RAW protocol=1", "Block", alert.ResultPermissionDenied, "shop-aa", "7", e.ruleID(t, policy.ClassNetwork, "raw")},
	}
	for _, w := range want {
		e.feed(t, w.rec)
	}
	got := e.alerts(t)
	if len(got) != len(want) {
		t.Fatalf("%d alerts, want %d: %+v", len(got), len(want), got)
	}
	for i, a := range got {
		w := want[i]
		if a.Type != alert.TypeMatchedPolicy || a.NamespaceName != "shop" || a.PodName != "web-1" || a.ContainerName != "nginx" ||
			a.ContainerID != "c0ffee" || a.HostPID != aaPID || a.UID != 1000 || a.Operation != w.op || a.Resource != w.resource ||
			a.Action != w.action || a.Result != w.result || a.PolicyName != w.policy || a.Severity != w.severity ||
			a.Enforcer != enforce.BackendAppArmor || !strings.Contains(a.Data, " set="+policy.ShortDigest(e.rs.Digest)+" rule="+itoa(w.rule)) ||
			a.Timestamp != 1796494300 {
			t.Errorf("alert %d: %+v\nwant %+v", i, a, w)
		}
	}
	if got[0].Message != "shadow read" || !strings.HasPrefix(got[0].Data, `apparmor=DENIED operation=open requested_mask=r`) {
		t.Errorf("open alert: message %q data %q", got[0].Message, got[0].Data)
	}

	// Not alerts, each counted by why.
	for _, c := range []struct{ rec, reason string }{
		// The base profile's refusal of a /proc write (audited: an
		// apparmor_parser built with noquiet) decides no rule.
		{pidRec("DENIED", "open", "file", `comm="sh" name="/proc/sysrq-trigger" requested_mask="w" denied_mask="w" fsuid=0 ouid=0`), aaDeniedNotRules},
		// A raw rule's audit (spec.apparmor), which no rule of the set names.
		{pidRec("AUDIT", "open", "file", `comm="sh" name="/srv/x" requested_mask="r" fsuid=0 ouid=0`), aaAuditNotRules},
		// cgroup-BPF decides the inet socket too, and reports it.
		{pidRec("AUDIT", "create", "net", `comm="dig" family="inet" sock_type="dgram" protocol=17 requested_mask="create"`), aaReportedByRing},
		{pidRec("DENIED", "mount", "mount", `comm="mount" info="failed perms check" error=-13 fstype="proc" srcname="proc" flags="rw"`), aaNoRuleClass},
		{strings.Replace(pidRec("DENIED", "open", "file", `comm="cat" name="/etc/shadow" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`), aaProfile, `"docker-default"`, 1), aaOtherProfile},
		{strings.Replace(pidRec("DENIED", "open", "file", `comm="cat" name="/etc/shadow" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`), `apparmor="DENIED"`, `apparmor="STATUS"`, 1), aaNotChecked},
	} {
		before := counterValue(t, e.m, "nri_armor_tracer_apparmor_unreported_total", "reason", c.reason)
		e.feed(t, c.rec)
		if n := counterValue(t, e.m, "nri_armor_tracer_apparmor_unreported_total", "reason", c.reason); n != before+1 {
			t.Errorf("%s: %s counted %v times", c.rec, c.reason, n-before)
		}
	}
	// Gone before its record was read, and no telemetry event of it: no
	// /proc entry, no guess — once the record has waited for telemetry.
	e.feed(t, aaRecord("DENIED", "open", "file", `name="/etc/shadow" pid=999999 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`))
	if n := counterValue(t, e.m, "nri_armor_tracer_events_unattributed_total", "type", "apparmor"); n != 0 {
		t.Errorf("unattributed apparmor records before the wait: %v, want 0", n)
	}
	e.clock.add(auditRetry)
	if due := e.t.settleAudit(false); !due.IsZero() {
		t.Errorf("a record still waits after auditRetry (due %v)", due)
	}
	if n := counterValue(t, e.m, "nri_armor_tracer_events_unattributed_total", "type", "apparmor"); n != 1 {
		t.Errorf("unattributed apparmor records: %v, want 1", n)
	}
	if got := e.alerts(t); len(got) != 0 {
		t.Errorf("alerts for records no rule reports: %+v", got)
	}
	if n := counterValue(t, e.m, "nri_armor_tracer_events_total", "source", "apparmor"); n != float64(len(want)+7) {
		t.Errorf("apparmor records read: %v, want %d", n, len(want)+7)
	}
}

// TestAppArmorGoneProcess: a short-lived process (a cat refused and gone)
// has no /proc entry when its record is read; its telemetry events place
// it in its container, whether they are read before the record or up to
// auditRetry after it.
func TestAppArmorGoneProcess(t *testing.T) {
	e := newAAEnv(t, aaPolicy, policy.DefaultDefaults().Postures)
	rec := func(pid int) string {
		return aaRecord("DENIED", "open", "file", `name="/etc/shadow" pid=`+strconv.Itoa(pid)+` comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`)
	}
	// Read before: the exec and the exit.
	ev := execEv(e.cg, 5001, aaPID, "/bin/cat")
	e.t.Telemetry(&ev)
	exit := telemetry.Event{Kind: telemetry.KindExit, CgroupID: e.cg, PID: 5001, TGID: 5001, Comm: "cat", Ret: 1}
	e.t.Telemetry(&exit)
	e.feed(t, rec(5001))
	// Read after: only the exit (a process that started before the tracer).
	e.feed(t, rec(5002))
	if got := e.alerts(t); len(got) != 1 || got[0].HostPID != 5001 {
		t.Fatalf("alerts before the late exit: %+v; want the one of pid 5001", got)
	}
	exit.PID, exit.TGID = 5002, 5002
	e.t.Telemetry(&exit)
	e.clock.add(auditRetry)
	e.t.settleAudit(false)
	got := e.alerts(t)
	if len(got) != 1 || got[0].HostPID != 5002 || got[0].PodName != "web-1" || got[0].ContainerName != "nginx" ||
		got[0].Resource != "/etc/shadow" || got[0].Action != "Block" || got[0].PolicyName != "shop-aa" {
		t.Fatalf("alerts after the late exit: %+v; want pid 5002's Block of /etc/shadow in web-1/nginx", got)
	}
	if n := counterValue(t, e.m, "nri_armor_tracer_events_unattributed_total", "type", "apparmor"); n != 0 {
		t.Errorf("unattributed apparmor records: %v, want 0", n)
	}
}

// TestAppArmorPosture: a refusal no rule names, in a class in allow-list
// mode with a Block posture, is the posture's alert (DefaultPosture), as
// BPF-LSM's posture events are.
func TestAppArmorPosture(t *testing.T) {
	doc := `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: shop-allow, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  file:
    matchDirectories:
    - dir: /app/
      recursive: true
  action: Allow
`
	e := newAAEnv(t, doc, policy.Postures{File: policy.Block, Network: policy.Audit, Capabilities: policy.Audit})
	e.feed(t, pidRec("DENIED", "open", "file", `comm="cat" name="/etc/passwd" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`))
	got := e.alerts(t)
	if len(got) != 1 || got[0].PolicyName != "DefaultPosture" || got[0].Action != "Block" || got[0].Result != alert.ResultPermissionDenied ||
		got[0].Enforcer != enforce.BackendAppArmor || got[0].Resource != "/etc/passwd" || strings.Contains(got[0].Data, "rule=") {
		t.Errorf("posture alert: %+v", got)
	}
}

// TestAppArmorNoDoubleAlert: where the container's AppArmor profile
// refuses or logs an operation, its record is the alert and the telemetry
// stays quiet; what the profile leaves out (a fromSource rule) or does not
// log (an Audit posture) the telemetry still reports.
func TestAppArmorNoDoubleAlert(t *testing.T) {
	e := newAAEnv(t, aaPolicy, policy.DefaultDefaults().Postures)
	const pid = 5000
	// Not a visibility log either: the container's record asks for none.
	for _, ev := range []telemetry.Event{
		// A refused open of a Block rule the profile has (AppArmor's EACCES).
		func() telemetry.Event {
			ev := openEv(e.cg, pid, "/etc/shadow", syscall.O_RDONLY)
			ev.Ret = -int64(syscall.EACCES)
			return ev
		}(),
		// An Audit rule's open, and a process Audit rule the profile
		// enforces only in part (not a script's interpreter): logged by it.
		openEv(e.cg, pid, "/var/log/x", syscall.O_WRONLY|syscall.O_APPEND),
		execEv(e.cg, pid, 1, "/usr/bin/wget"),
		{Kind: telemetry.KindCapable, CgroupID: e.cg, PID: pid, TGID: pid, Capability: 13, Ret: -int64(syscall.EPERM)},
	} {
		e.t.Telemetry(&ev)
	}
	if got := e.alerts(t); len(got) != 0 {
		t.Fatalf("the telemetry reported what the profile logs: %+v", got)
	}
	// The profile leaves the fromSource Block out: the telemetry decides it.
	cat := execEv(e.cg, pid+1, 1, "/bin/cat")
	e.t.Telemetry(&cat)
	open := openEv(e.cg, pid+1, "/etc/app.conf", syscall.O_RDONLY)
	e.t.Telemetry(&open)
	// sys_admin: no rule, the capability class's Audit posture, which
	// the profile allows without logging.
	capEv := telemetry.Event{Kind: telemetry.KindCapable, CgroupID: e.cg, PID: pid, TGID: pid, Capability: 21}
	e.t.Telemetry(&capEv)
	got := e.alerts(t)
	if len(got) != 2 {
		t.Fatalf("%d alerts, want the fromSource Block and the posture's Audit: %+v", len(got), got)
	}
	if a := got[0]; a.Resource != "/etc/app.conf" || a.Action != "Block" || a.Result != alert.ResultPassed || a.Enforcer != alert.EnforcerMonitor ||
		!strings.Contains(a.Data, "unenforced=true") || a.PolicyName != "shop-aa" {
		t.Errorf("fromSource alert: %+v", a)
	}
	if a := got[1]; a.Resource != "CAP_SYS_ADMIN" || a.PolicyName != "DefaultPosture" || a.Action != "Audit" || a.Enforcer != alert.EnforcerMonitor {
		t.Errorf("posture alert: %+v", a)
	}

	// What went through although a Block rule names it is never silent:
	// an exec the profile did not check (the runtime's own, as for
	// crictl exec), and an AF_PACKET socket, which neither the profile
	// (no network rules: cgroup-BPF's) nor cgroup-BPF sees.
	curl := execEv(e.cg, pid+2, 1, "/usr/bin/curl")
	e.t.Telemetry(&curl)
	packet := telemetry.Event{Kind: telemetry.KindSocket, CgroupID: e.cg, PID: pid + 2, TGID: pid + 2, Family: syscall.AF_PACKET, SockType: syscall.SOCK_RAW, Protocol: 0x0300, Ret: 3}
	e.t.Telemetry(&packet)
	got = e.alerts(t)
	if len(got) != 2 {
		t.Fatalf("%d alerts, want the exec and the packet socket Blocks that passed: %+v", len(got), got)
	}
	for i, op := range []string{"Process", "Network"} {
		if a := got[i]; a.Operation != op || a.Action != "Block" || a.Result != alert.ResultPassed || a.Enforcer != alert.EnforcerMonitor ||
			!strings.Contains(a.Data, "unenforced=true") || a.PolicyName != "shop-aa" {
			t.Errorf("%s Block that passed: %+v", op, a)
		}
	}
}

// TestAppArmorNetworkAudit: the node's profile holds no network rules
// (cgroup-BPF's), so the telemetry reports a network Audit rule's
// operation that cgroup-BPF does not see (an AF_PACKET socket): nothing
// else would.
func TestAppArmorNetworkAudit(t *testing.T) {
	e := newAAEnv(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: shop-aa, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  network:
    matchProtocols:
    - protocol: raw
  action: Audit
`, policy.DefaultDefaults().Postures)
	packet := telemetry.Event{Kind: telemetry.KindSocket, CgroupID: e.cg, PID: 5000, TGID: 5000, Family: syscall.AF_PACKET, SockType: syscall.SOCK_RAW, Protocol: 0x0300, Ret: 3}
	e.t.Telemetry(&packet)
	got := e.alerts(t)
	if len(got) != 1 || got[0].Operation != "Network" || got[0].Action != "Audit" || got[0].Result != alert.ResultPassed || got[0].PolicyName != "shop-aa" {
		t.Fatalf("alerts %+v; want the raw rule's Audit of the AF_PACKET socket", got)
	}
}
