//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/policy"
)

// seccompPolicy blocks getcpu and audits getpgid: two calls containerd's
// default profile allows and nothing in busybox or nettool makes unasked.
const seccompPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: e2e-seccomp
  namespace: e2e
spec:
  syscalls:
    matchSyscalls:
    - syscall: [getcpu]
      action: Block
    - syscall: [getpgid]
      action: Audit
      severity: 4
`

// badSyscallPolicy names a call no architecture has: it never loads.
const badSyscallPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: e2e-bad-syscall
  namespace: e2e
spec:
  syscalls:
    matchSyscalls:
    - syscall: [getcpuu]
      action: Block
`

// withSeccomp is a container config with a seccomp profile type (CRI:
// 0 RuntimeDefault, 1 Unconfined).
func withSeccomp(name string, profile int, cmd ...string) map[string]any {
	c := containerConfig(name, cmd)
	c["linux"] = map[string]any{"security_context": map[string]any{"seccomp": map[string]any{"profile_type": profile}}}
	return c
}

const (
	runtimeDefault = 0
	unconfined     = 1
)

// seccompOf is the container's seccomp section as runc got it (crictl
// inspect's runtime spec).
func seccompOf(t *testing.T, id string) map[string]any {
	t.Helper()
	var info struct {
		Info struct {
			RuntimeSpec struct {
				Linux struct {
					Seccomp map[string]any `json:"seccomp"`
				} `json:"linux"`
			} `json:"runtimeSpec"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(mustCrictl(t, "inspect", id)), &info); err != nil {
		t.Fatal(err)
	}
	return info.Info.RuntimeSpec.Linux.Seccomp
}

func wantSys(t *testing.T, r result, call string, refused bool, where string) {
	t.Helper()
	if refused {
		wantDenied(t, r, "sys "+call)
		return
	}
	wantOK(t, r, call+" "+where, "ok: "+call)
}

// TestSeccompBlock: a syscall Block rule refuses the call with EPERM from
// the container's first command and in crictl exec, while the runtime
// default still refuses what it refused (personality(ADDR_NO_RANDOMIZE));
// an Unconfined container gets the rules on a default-allow filter; a pod
// without rules is untouched.
//
// On CRI-O it is refused instead: testSeccompBlockRefused.
func TestSeccompBlock(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *criRuntime) {
		if rt == crioRuntime {
			testSeccompBlockRefused(t)
			return
		}
		testSeccompBlock(t)
	})
}

// testSeccompBlockRefused: CRI-O never shows plugins a container's seccomp
// profile or policy (and 1.35–1.36, this one, vendor NRI v0.11.0, which
// crashes the runtime on a rule with ErrnoRet): a container whose pod names
// syscall Block rules is refused at create, crictl saying why — never
// started with its rules silently missing. CRI-O itself lives on, and a pod
// without rules starts.
func testSeccompBlockRefused(t *testing.T) {
	need(t)
	writePolicy(t, "seccomp.yaml", seccompPolicy)
	a := startArmor(t)
	p := runPod(t, "seccomp", map[string]string{policiesKey: "e2e-seccomp"})
	id, r := createContainerWith(t, p, withSeccomp("main", runtimeDefault, sleeper...))
	wantRefusedCreate(t, id, r, "with syscall Block rules on CRI-O", "syscall Block rules cannot be enforced", "CRI-O never shows plugins a container's seccomp profile")
	a.wantMetric(t, events("CreateContainer", "error"), 1)
	open := runPod(t, "seccomp-open", nil)
	openID := startWith(t, open, withSeccomp("main", runtimeDefault, sleeper...))
	wantSys(t, execIn(t, openID, "nettool", "sys", "getcpu"), "getcpu", false, "in the pod without rules")
}

// testSeccompBlock is TestSeccompBlock on containerd.
func testSeccompBlock(t *testing.T) {
	need(t)
	writePolicy(t, "seccomp.yaml", seccompPolicy)
	a := startArmor(t)

	guarded := runPod(t, "seccomp", map[string]string{policiesKey: "e2e-seccomp"})
	first := startWith(t, guarded, withSeccomp("first", runtimeDefault, "sh", "-c", "nettool sys getcpu 2>&1; echo exit=$?; exec sleep 3600"))
	id := startWith(t, guarded, withSeccomp("main", runtimeDefault, sleeper...))
	loose := startWith(t, guarded, withSeccomp("loose", unconfined, sleeper...))
	open := runPod(t, "seccomp-open", nil)
	openID := startWith(t, open, withSeccomp("main", runtimeDefault, sleeper...))

	var logs string
	waitFor(t, "the first container's call", 10*time.Second, func() bool {
		logs = mustCrictl(t, "logs", first)
		return strings.Contains(logs, "exit=")
	})
	if !strings.Contains(logs, "nettool: sys getcpu: "+denied) || !strings.Contains(logs, "exit=1") {
		t.Errorf("the guarded container's first command: %q; want getcpu refused (%s), exit=1", logs, denied)
	}
	wantSys(t, execIn(t, id, "nettool", "sys", "getcpu"), "getcpu", true, "")
	wantSys(t, execIn(t, id, "nettool", "sys", "personality"), "personality", true, "") // the runtime default
	wantSys(t, execIn(t, id, "nettool", "sys", "getpgid"), "getpgid", false, "(audited) in the guarded container")
	wantOK(t, execIn(t, id, "cat", "/etc/hostname"), "cat in the guarded container", "")

	wantSys(t, execIn(t, loose, "nettool", "sys", "getcpu"), "getcpu", true, "")
	wantSys(t, execIn(t, loose, "nettool", "sys", "personality"), "personality", false, "in the unconfined container")

	wantSys(t, execIn(t, openID, "nettool", "sys", "getcpu"), "getcpu", false, "in the pod without rules")
	wantSys(t, execIn(t, openID, "nettool", "sys", "personality"), "personality", true, "")

	// What runc got: the runtime default with the rules merged in; the pod without rules has the runtime default as
	// containerd made it.
	sc := seccompOf(t, id)
	b, _ := json.Marshal(sc)
	// No seccomp flag: Debian's runc 1.1.5 here refuses any
	// (seccompLogRefusals is off).
	if sc["defaultAction"] != "SCMP_ACT_ERRNO" || strings.Contains(string(b), "FLAG_LOG") || !strings.Contains(string(b), `"errnoRet":38`) || !strings.Contains(string(b), `"SCMP_ACT_LOG"`) {
		t.Errorf("guarded container's seccomp: %.400s…; want containerd's default (clone3 → ENOSYS kept) with getcpu refused and getpgid logged", b)
	}
	if sc := seccompOf(t, loose); sc["defaultAction"] != "SCMP_ACT_ALLOW" {
		t.Errorf("unconfined container's seccomp default action %v, want SCMP_ACT_ALLOW", sc["defaultAction"])
	}
	ob, _ := json.Marshal(seccompOf(t, openID))
	if strings.Contains(string(ob), "FLAG_LOG") || strings.Contains(string(ob), "SCMP_ACT_LOG") || !strings.Contains(string(ob), `"getcpu"`) {
		t.Errorf("the pod without rules has a changed seccomp policy: %.400s…", ob)
	}

	if rec := published(t, id); rec.Enforcers[policy.ClassSyscalls] != "Seccomp" || len(rec.Unenforced) != 0 {
		t.Errorf("published record: enforcers %v unenforced %v; want syscalls by Seccomp", rec.Enforcers, rec.Unenforced)
	}
	a.wantMetric(t, events("CreateContainer", "error"), 0)
	a.wantMetric(t, events("ValidateContainerAdjustment", "error"), 0)
	a.wantMetric(t, `nri_armor_containers_enforced{backend="Seccomp",class="syscalls"}`, 3)
}

// TestSeccompInvalidSyscall: a policy naming a system call that does not
// exist never loads (the log names the file, line and field), and a pod
// naming it is refused at creation, the error naming the annotation, the
// policy and why it is not in force (file, line, field).
func TestSeccompInvalidSyscall(t *testing.T) {
	need(t)
	writePolicy(t, "bad-syscall.yaml", badSyscallPolicy)
	a := startArmor(t)
	p := runPod(t, "bad-syscall", map[string]string{policiesKey: "e2e-bad-syscall"})
	id, r := createContainerWith(t, p, withSeccomp("main", runtimeDefault, sleeper...))
	wantRefusedCreate(t, id, r, "naming a policy with an unknown system call", policiesKey, "e2e-bad-syscall",
		`its file was rejected: `+env.policies+`/bad-syscall.yaml:9: spec.syscalls.matchSyscalls[0].syscall[0]: unknown system call "getcpuu"`)
	if log := a.log(t); !strings.Contains(log, `bad-syscall.yaml:9: spec.syscalls.matchSyscalls[0].syscall[0]: unknown system call \"getcpuu\"`) {
		t.Errorf("nri-armor's log does not name the file, line and field of the unknown system call:\n%s", log)
	}
	a.wantMetric(t, events("CreateContainer", "error"), 1)
}

// TestSeccompAudit: an Audit rule's call runs, the kernel logs it
// (SCMP_ACT_LOG), and armor-tracer's alert names the pod, container,
// policy and severity, with Enforcer Seccomp.
func TestSeccompAudit(t *testing.T) {
	need(t)
	writePolicy(t, "seccomp.yaml", seccompPolicy)
	startArmor(t)
	tr := startTracer(t)
	p := runPod(t, "seccomp-audit", map[string]string{policiesKey: "e2e-seccomp"})
	id := startWith(t, p, withSeccomp("main", runtimeDefault, sleeper...))
	// hold: the process stays while armor-tracer finds its cgroup.
	wantSys(t, execIn(t, id, "nettool", "sys", "getpgid", "hold"), "getpgid", false, "(audited)")
	var got alert
	waitFor(t, "the getpgid alert", 15*time.Second, func() bool {
		for _, a := range tr.alerts(t, p.name) {
			if a.Operation == "Syscall" && a.Resource == "SYS_GETPGID" {
				got = a
				return true
			}
		}
		return false
	})
	t.Logf("alert: %+v", got)
	if got.Type != "MatchedPolicy" || got.NamespaceName != podNamespace || got.ContainerName != "main" || got.PolicyName != "e2e-seccomp" ||
		got.Severity != "4" || got.Action != "Audit" || got.Result != "Passed" || got.Enforcer != "Seccomp" || got.ProcessName != "/usr/local/bin/nettool" {
		t.Errorf("alert %+v: want MatchedPolicy in pod %s/%s container main, policy e2e-seccomp, severity 4, Audit Passed by Seccomp, process /usr/local/bin/nettool", got, podNamespace, p.name)
	}
	// The blocked call is refused; without SECCOMP_FILTER_FLAG_LOG (runc
	// 1.1.5 here takes no seccomp flags) the kernel does not log it.
	wantSys(t, execIn(t, id, "nettool", "sys", "getcpu"), "getcpu", true, "")
}

// TestSeccompBlockAlert: with seccompLogRefusals, on a runc that takes
// seccomp flags (1.5.2, the runtime handler runc-flags), the filter logs
// its refusals (SECCOMP_FILTER_FLAG_LOG) and a blocked call is an alert:
// Block, Permission denied, Enforcer Seccomp.
func TestSeccompBlockAlert(t *testing.T) {
	need(t)
	writePolicy(t, "seccomp.yaml", seccompPolicy)
	startArmor(t, "-seccompLogRefusals")
	tr := startTracer(t)
	p := runPodOn(t, "runc-flags", podNamespace, "seccomp-flags", map[string]string{policiesKey: "e2e-seccomp"})
	id := startWith(t, p, withSeccomp("main", runtimeDefault, sleeper...))
	if b, _ := json.Marshal(seccompOf(t, id)); !strings.Contains(string(b), "SECCOMP_FILTER_FLAG_LOG") {
		t.Errorf("the container's seccomp lacks FLAG_LOG: %.300s…", b)
	}
	wantSys(t, execIn(t, id, "nettool", "sys", "getcpu", "hold"), "getcpu", true, "")
	wantSys(t, execIn(t, id, "nettool", "sys", "personality", "hold"), "personality", true, "") // the runtime default's: logged, no rule, no alert
	var got []alert
	waitFor(t, "the getcpu alert", 15*time.Second, func() bool {
		got = got[:0]
		for _, a := range tr.alerts(t, p.name) {
			if a.Operation == "Syscall" {
				got = append(got, a)
			}
		}
		return len(got) > 0
	})
	time.Sleep(500 * time.Millisecond)
	got = got[:0]
	for _, a := range tr.alerts(t, p.name) {
		if a.Operation == "Syscall" {
			got = append(got, a)
		}
	}
	for _, a := range got {
		t.Logf("alert: %+v", a)
		if a.Resource != "SYS_GETCPU" || a.Type != "MatchedPolicy" || a.PolicyName != "e2e-seccomp" || a.ContainerName != "main" ||
			a.Action != "Block" || a.Result != "Permission denied" || a.Enforcer != "Seccomp" {
			t.Errorf("alert %+v: want one MatchedPolicy SYS_GETCPU, policy e2e-seccomp, Block, Permission denied, Seccomp (none for the runtime default's refusal of personality)", a)
		}
	}
	if len(got) != 1 {
		t.Errorf("%d syscall alerts, want 1", len(got))
	}
}
