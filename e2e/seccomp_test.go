//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/enforce/seccomp"
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
// On containerd 2.4 the rules are merged into the container's policy
// through NRI; on CRI-O, which shows plugins neither, through the
// Localhost profile the pod names (testSeccompBlockLocalhost).
func TestSeccompBlock(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *criRuntime) {
		if rt == crioRuntime {
			testSeccompBlockLocalhost(t)
			return
		}
		testSeccompBlock(t)
	})
}

// seccompRoot is the kubelet's seccomp root the e2e's nri-armor writes
// Localhost profiles under.
func seccompRoot() string { return filepath.Join(env.tmp, "seccomp") }

// localhostPod runs a pod naming policy e2e-seccomp and, for each of its
// containers, the Localhost profile nri-armor's pod webhook would name
// (the annotation the agent reads; the field is withLocalhost's). It
// returns the pod and each container's profile path (the localhost_ref the
// kubelet would pass the runtime).
func localhostPod(t *testing.T, name string, ctrs map[string]seccomp.Base) (pod, map[string]string) {
	t.Helper()
	ann := map[string]string{policiesKey: "e2e-seccomp"}
	pp := policy.Pod{Namespace: podNamespace, Annotations: map[string]string{policiesKey: "e2e-seccomp"}}
	paths := map[string]string{}
	for c, base := range ctrs {
		ref := seccomp.ProfileName(pp, c, base)
		ann[seccomp.ProfileAnnotation+c] = ref
		paths[c] = seccomp.ProfilePath(seccompRoot(), ref)
	}
	return runPod(t, name, ann), paths
}

// withLocalhost is a container config whose seccomp profile is the
// Localhost profile at path (CRI: profile_type 2), as the kubelet passes
// it for securityContext.seccompProfile {type: Localhost}.
func withLocalhost(name, path string, cmd ...string) map[string]any {
	c := containerConfig(name, cmd)
	c["linux"] = map[string]any{"security_context": map[string]any{"seccomp": map[string]any{"profile_type": 2, "localhost_ref": path}}}
	return c
}

// testSeccompBlockLocalhost is TestSeccompBlock on CRI-O, which never shows
// plugins a container's seccomp profile or policy (and whose NRI, v0.11.0,
// crashes it on a rule with ErrnoRet): the agent writes, at RunPodSandbox,
// CRI-O's default profile with the rules merged in (and, for the
// Unconfined container, a default-allow one) where the pod's annotations
// name them; CRI-O reads it while it builds the spec; nothing is sent
// through NRI; the start gate checks the bundle's filter. A container
// whose config names another profile, or Unconfined, or none, is refused,
// crictl saying why.
func testSeccompBlockLocalhost(t *testing.T) {
	need(t)
	writePolicy(t, "seccomp.yaml", seccompPolicy)
	a := startArmor(t)

	guarded, paths := localhostPod(t, "seccomp", map[string]seccomp.Base{
		"first": seccomp.BaseDefault, "main": seccomp.BaseDefault, "loose": seccomp.BaseUnconfined, "evil": seccomp.BaseDefault})
	for c, path := range paths {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("container %s's profile not written at RunPodSandbox: %v", c, err)
		}
	}
	first := startWith(t, guarded, withLocalhost("first", paths["first"], "sh", "-c", "nettool sys getcpu 2>&1; echo exit=$?; exec sleep 3600"))
	id := startWith(t, guarded, withLocalhost("main", paths["main"], sleeper...))
	loose := startWith(t, guarded, withLocalhost("loose", paths["loose"], sleeper...))
	open := runPod(t, "seccomp-open", nil)
	openID := startWith(t, open, withSeccomp("main", runtimeDefault, sleeper...))

	wantFirstRefused(t, first)
	wantSys(t, execIn(t, id, "nettool", "sys", "getcpu"), "getcpu", true, "")
	// The runtime default: CRI-O's refuses personality(ADDR_NO_RANDOMIZE)
	// with its default errno, ENOSYS, in the guarded container as in one
	// without rules.
	wantENOSYS(t, execIn(t, id, "nettool", "sys", "personality"), "personality in the guarded container")
	wantSys(t, execIn(t, id, "nettool", "sys", "getpgid"), "getpgid", false, "(audited) in the guarded container")
	wantOK(t, execIn(t, id, "cat", "/etc/hostname"), "cat in the guarded container", "")

	wantSys(t, execIn(t, loose, "nettool", "sys", "getcpu"), "getcpu", true, "")
	wantSys(t, execIn(t, loose, "nettool", "sys", "personality"), "personality", false, "in the unconfined container")

	wantSys(t, execIn(t, openID, "nettool", "sys", "getcpu"), "getcpu", false, "in the pod without rules")
	wantENOSYS(t, execIn(t, openID, "nettool", "sys", "personality"), "personality in the pod without rules")

	// What runc got: CRI-O's default (clone3 → ENOSYS kept) with getcpu
	// refused and getpgid logged; the unconfined one allows by default.
	b, _ := json.Marshal(seccompOf(t, id))
	if sc := seccompOf(t, id); sc["defaultAction"] != "SCMP_ACT_ERRNO" || !strings.Contains(string(b), `"errnoRet":38`) || !strings.Contains(string(b), `"SCMP_ACT_LOG"`) || !strings.Contains(string(b), `"getcpu"`) {
		t.Errorf("guarded container's seccomp: %.400s…; want CRI-O's default with getcpu refused and getpgid logged", b)
	}
	if sc := seccompOf(t, loose); sc["defaultAction"] != "SCMP_ACT_ALLOW" {
		t.Errorf("unconfined container's seccomp default action %v, want SCMP_ACT_ALLOW", sc["defaultAction"])
	}
	if rec := published(t, id); rec.Enforcers[policy.ClassSyscalls] != "Seccomp" || len(rec.Unenforced) != 0 {
		t.Errorf("published record: enforcers %v unenforced %v; want syscalls by Seccomp", rec.Enforcers, rec.Unenforced)
	}

	// Attacks: the container names another Localhost profile (the rules,
	// without the runtime default), Unconfined, or the runtime default
	// without the rules.
	mine := filepath.Join(seccompRoot(), "mine.json")
	if err := os.WriteFile(mine, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getcpu"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	attempt := 0
	for what, cfg := range map[string]map[string]any{
		"another Localhost profile": withLocalhost("evil", mine, sleeper...),
		"Unconfined":                withSeccomp("evil", unconfined, sleeper...),
		"RuntimeDefault":            withSeccomp("evil", runtimeDefault, sleeper...),
	} {
		attempt++ // CRI-O hands back the container of the same name and attempt
		cfg["metadata"] = map[string]any{"name": "evil", "attempt": attempt}
		id, r := createContainerWith(t, guarded, cfg)
		if id != "" {
			r = crictl(t, "start", id)
		}
		if r.code == 0 {
			t.Errorf("a container naming %s started", what)
			continue
		}
		t.Logf("%s: %s", what, crictlSays(r))
		if !strings.Contains(crictlSays(r), "nri-armor's Localhost profile "+paths["evil"]) {
			t.Errorf("a container naming %s: %s; want the refusal to name nri-armor's profile %s", what, crictlSays(r), paths["evil"])
		}
	}
	// A pod that names no profile: its containers with Block rules are
	// refused at create, saying what to set.
	bare := runPod(t, "seccomp-bare", map[string]string{policiesKey: "e2e-seccomp"})
	bareID, r := createContainerWith(t, bare, withSeccomp("main", runtimeDefault, sleeper...))
	wantRefusedCreate(t, bareID, r, "whose pod names no profile", "syscall Block rules cannot be enforced", "names no Localhost seccomp profile of nri-armor's")
	a.wantMetric(t, events("ValidateContainerAdjustment", "error"), 0)
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

	wantFirstRefused(t, first)
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
// policy and severity, with Enforcer Seccomp: on containerd through NRI,
// on CRI-O through the Localhost profile.
func TestSeccompAudit(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, _ *criRuntime) { testSeccompAudit(t) })
}

// testSeccompAudit is TestSeccompAudit against one runtime.
func testSeccompAudit(t *testing.T) {
	need(t)
	writePolicy(t, "seccomp.yaml", seccompPolicy)
	startArmor(t)
	tr := startTracer(t)
	var p pod
	var id string
	if isCRIO(t) {
		var paths map[string]string
		p, paths = localhostPod(t, "seccomp-audit", map[string]seccomp.Base{"main": seccomp.BaseDefault})
		id = startWith(t, p, withLocalhost("main", paths["main"], sleeper...))
	} else {
		p = runPod(t, "seccomp-audit", map[string]string{policiesKey: "e2e-seccomp"})
		id = startWith(t, p, withSeccomp("main", runtimeDefault, sleeper...))
	}
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

// wantENOSYS asserts that nettool's call failed with ENOSYS (CRI-O's
// default profile's errno).
// wantFirstRefused asserts that the container first's own command, its
// first instruction on, had getcpu refused with EPERM.
func wantFirstRefused(t *testing.T, first string) {
	t.Helper()
	var logs string
	waitFor(t, "the first container's call", 10*time.Second, func() bool {
		logs = mustCrictl(t, "logs", first)
		return strings.Contains(logs, "exit=")
	})
	if !strings.Contains(logs, "nettool: sys getcpu: "+denied) || !strings.Contains(logs, "exit=1") {
		t.Errorf("the guarded container's first command: %q; want getcpu refused (%s), exit=1", logs, denied)
	}
}

// wantENOSYS asserts that r, a call the runtime's default seccomp profile
// refuses with its own errno, failed with ENOSYS (not nri-armor's EPERM).
func wantENOSYS(t *testing.T, r result, what string) {
	t.Helper()
	if out := crictlSays(r) + r.stdout; r.code != 1 || !strings.Contains(out, "function not implemented") {
		t.Errorf("%s: %v; want exit 1 and ENOSYS (function not implemented)", what, r)
	}
}
