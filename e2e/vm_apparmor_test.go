//go:build e2e && vmapparmor

package e2e

// The end-to-end tests of the AppArmor backend (make vmtest-apparmor): the
// VM booted as most Debian, Ubuntu and COS nodes are — AppArmor active,
// BPF-LSM not — with containerd's AppArmor support enabled. Pods name
// their containers' profiles as nri-armor's admission webhook would set
// them: the securityContext field (crictl's container config) and the
// pod annotation nri-armor loads them by at RunPodSandbox.

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/internal/vmtest"
	"github.com/nri-armor/nri-armor/policy"
)

const (
	aaPolicyName = "e2e-aa-no-apt-no-shadow"
	// aaPolicy blocks running the package manager and reading the password
	// file, and audits reads of /etc/hostname.
	aaPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: ` + aaPolicyName + `
  namespace: e2e
spec:
  process:
    matchPaths:
    - path: /usr/bin/apt-get
    - path: /usr/local/bin/nettool
  file:
    matchPaths:
    - path: /etc/shadow
    - path: /etc/hostname
      action: Audit
  action: Block
`
	// The kernel's AppArmor refusals: EACCES.
	aaDenied = "Permission denied"
)

// aaPod starts a pod whose containers named are to run under their
// nri-armor profiles: the annotations say so (as the webhook writes
// them), and aaContainer names the profile in each container's config.
func aaPod(t *testing.T, name string, annotations map[string]string, containers ...string) pod {
	t.Helper()
	all := map[string]string{}
	for k, v := range annotations {
		all[k] = v
	}
	for _, c := range containers {
		all["container.apparmor.security.beta.kubernetes.io/"+c] = "localhost/" + profileName(annotations, c)
	}
	return runPod(t, name, all)
}

// profileName is the profile nri-armor gives container c of a test pod
// (namespace e2e, no labels of its own) with these annotations.
func profileName(annotations map[string]string, c string) string {
	return apparmor.ProfileName(policy.Pod{Namespace: podNamespace, Annotations: annotations}, c)
}

// aaContainer is the config of a busybox container running cmd under
// AppArmor profile (CRI: profile_type 2 is Localhost), with the runtime's
// default seccomp filter, which nri-armor requires beside the profile
// (it refuses open_tree: docs/apparmor.md, Refusals).
func aaContainer(name, profile string, cmd ...string) map[string]any {
	c := containerConfig(name, cmd)
	c["linux"] = map[string]any{"security_context": map[string]any{
		"apparmor": map[string]any{"profile_type": 2, "localhost_ref": profile},
		"seccomp":  map[string]any{"profile_type": runtimeDefault}}}
	return c
}

// loadedProfiles lists the AppArmor profiles the kernel holds.
func loadedProfiles(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// firstLogs waits for a container's first command to print marker and
// returns its output.
func firstLogs(t *testing.T, id, marker string) string {
	t.Helper()
	var logs string
	waitFor(t, "the first container's commands", 30*time.Second, func() bool {
		r := crictl(t, "logs", id)
		logs = r.stdout + r.stderr
		return strings.Contains(logs, marker)
	})
	return logs
}

func wantAll(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: %q; want %q", what, got, w)
		}
	}
}

// TestAppArmorBlock: on a node without BPF-LSM, nri-armor's probe picks
// AppArmor for process, file and capability rules; a pod naming a Block
// policy cannot run apt-get or read /etc/shadow, refused by its profile
// with EACCES from its first command on and in every crictl exec; an
// Audit rule lets the read through; armor-tracer reports both with the
// pod's identity and Enforcer AppArmor; a pod without a policy is
// untouched (containerd's own profile, nothing of nri-armor's).
func TestAppArmorBlock(t *testing.T) {
	vmtest.RequireLSM(t, "apparmor")
	need(t)
	writePolicy(t, "aa-no-apt-no-shadow.yaml", aaPolicy)
	a := startArmor(t)
	tr := startTracer(t)
	log := a.log(t)
	for _, class := range []string{"process", "file", "capabilities"} {
		wantAll(t, "nri-armor's log", log, fmt.Sprintf("class %s: enforced by AppArmor", class))
	}
	wantAll(t, "nri-armor's log", log, "class network: enforced by CgroupBPF")

	ann := map[string]string{policiesKey: aaPolicyName}
	guarded := aaPod(t, "guarded", ann, "first", "main")
	first := startWith(t, guarded, aaContainer("first", profileName(ann, "first"), "sh", "-c",
		"apt-get install x; echo apt-exit=$?; cat /etc/shadow; echo cat-exit=$?; cat /proc/self/attr/current; exec sleep 3600"))
	id := startWith(t, guarded, aaContainer("main", profileName(ann, "main"), sleeper...))
	open := runPod(t, "open", nil)
	openID := startContainer(t, open, "main", sleeper...)

	logs := firstLogs(t, first, "(enforce)")
	t.Logf("the guarded container's first command printed:\n%s", logs)
	wantAll(t, "the guarded container's first command", logs,
		"sh: apt-get: "+aaDenied, "apt-exit=126", "cat: can't open '/etc/shadow': "+aaDenied, "cat-exit=1",
		profileName(ann, "first")+" (enforce)")

	// The program runc itself executes (the container's command, each
	// crictl exec's) enters the profile by runc's change_onexec, checked
	// under runc's own profile, not the container's: a blocked program
	// named directly runs, a script (apt-get) or an ELF one (nettool)
	// alike; armor-tracer reports it as a Block that passed (below).
	// docs/apparmor.md, Differences from BPF-LSM.
	wantOK(t, execIn(t, id, "apt-get", "install", "x"), "crictl exec apt-get (differs from BPF-LSM: runc's own exec)", "apt-get (fake): install x")
	wantOK(t, execIn(t, id, "nettool", "udp"), "crictl exec nettool (differs from BPF-LSM: runc's own exec)", "ok: udp socket created")
	wantRefused(t, execIn(t, id, "sh", "-c", "nettool udp"), "sh -c nettool", "sh: nettool: Permission denied")
	wantRefused(t, execIn(t, id, "sh", "-c", "apt-get install x"), "sh -c apt-get", "sh: apt-get: "+aaDenied, "command terminated with exit code 126")
	wantRefused(t, execIn(t, id, "cat", "/etc/shadow"), "cat /etc/shadow", "cat: can't open '/etc/shadow': "+aaDenied)
	wantOK(t, execIn(t, id, "cat", "/etc/passwd"), "cat /etc/passwd in the guarded container", "root:")
	// No detached mount tree (named otherwise than the rules, and no
	// AppArmor hook on it): the runtime's default filter, which nri-armor
	// requires beside the profile, refuses the calls that make one.
	// (nettool run by crictl exec itself: the policy blocks it from a
	// shell, see below.)
	for _, call := range []string{"open_tree", "fsopen"} {
		wantRefused(t, execIn(t, id, "nettool", "sys", call), "nettool sys "+call, "nettool: sys "+call+": operation not permitted")
	}
	// A reader gone before armor-tracer reads its AppArmor record: the
	// process table (its exec and exit events) places it.
	wantOK(t, execIn(t, id, "cat", "/etc/hostname"), "cat /etc/hostname (Audit) in the guarded container", "")

	// Untouched: containerd's default profile, none of nri-armor's.
	wantOK(t, execIn(t, openID, "apt-get", "install", "x"), "apt-get in the unannotated container", "apt-get (fake): install x")
	wantOK(t, execIn(t, openID, "cat", "/proc/self/attr/current"), "the unannotated container's profile", "cri-containerd.apparmor.d")
	if n := strings.Count(loadedProfiles(t), apparmor.NamePrefix+podNamespace+"."); n != 2 {
		t.Errorf("the kernel holds %d nri-armor profiles of namespace %s; want 2 (the guarded pod's containers)", n, podNamespace)
	}

	for _, class := range []string{"process", "file"} {
		a.wantMetric(t, fmt.Sprintf(`nri_armor_containers_enforced{backend="AppArmor",class=%q}`, class), 2)
	}
	block := func(container, op, res string) alert {
		return alert{ContainerName: container, Operation: op, Resource: res, PolicyName: aaPolicyName,
			Enforcer: "AppArmor", Action: "Block", Result: "Permission denied"}
	}
	tr.waitAlertLike(t, guarded, block("first", "Process", "/usr/bin/apt-get"))
	tr.waitAlertLike(t, guarded, block("main", "File", "/etc/shadow"))
	tr.waitAlertLike(t, guarded, alert{ContainerName: "main", Operation: "File", Resource: "/etc/hostname", PolicyName: aaPolicyName,
		Enforcer: "AppArmor", Action: "Audit", Result: "Passed"})
	// What the profile let through (runc's own exec) is not silent.
	for _, prog := range []string{"/usr/bin/apt-get", "/usr/local/bin/nettool"} {
		waitFor(t, "the alert for crictl exec "+prog, 20*time.Second, func() bool {
			for _, a := range tr.alerts(t, guarded.name) {
				if a.ContainerName == "main" && a.Resource == prog && a.Action == "Block" && a.Result == "Passed" &&
					a.Enforcer == "eBPF Monitor" && a.PolicyName == aaPolicyName {
					t.Logf("alert: %s", a)
					return true
				}
			}
			return false
		})
	}
	if as := tr.policyAlerts(t, open.name); len(as) != 0 {
		t.Errorf("alerts for the unannotated pod %s: %v; want none", open.name, as)
	}

	// The profiles go with the pod.
	crictl(t, "rmp", "-f", guarded.id)
	waitFor(t, "the guarded pod's profiles to be removed", 10*time.Second, func() bool {
		return !strings.Contains(loadedProfiles(t), profileName(ann, "main"))
	})
}

// TestAppArmorAllowList: a process allow-list, with the process posture
// block (what the list does not name is refused) and with the posture
// audit (it runs, and armor-tracer reports it).
func TestAppArmorAllowList(t *testing.T) {
	vmtest.RequireLSM(t, "apparmor")
	need(t)
	const name = "e2e-aa-busybox-only"
	writePolicy(t, "aa-busybox-only.yaml", `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: `+name+`
  namespace: e2e
spec:
  process:
    matchPaths:
    - path: /bin/busybox
    - path: /usr/bin/busybox
    - path: /bin/sh
    - path: /bin/sleep
    - path: /bin/cat
  action: Allow
`)
	startArmor(t)
	tr := startTracer(t)
	for _, posture := range []string{"block", "audit"} {
		t.Run(posture, func(t *testing.T) {
			// The process posture follows the file posture.
			ann := map[string]string{policiesKey: name, "nri-armor.dev/posture": "file=" + posture}
			p := aaPod(t, "allow-"+posture, ann, "main")
			id := startWith(t, p, aaContainer("main", profileName(ann, "main"), sleeper...))
			wantOK(t, execIn(t, id, "cat", "/etc/passwd"), "cat (allowed)", "root:")
			// Through a shell: runc's own exec is not checked (above).
			r := execIn(t, id, "sh", "-c", "apt-get install x")
			if posture == "block" {
				wantRefused(t, r, "apt-get (not allowed)", "sh: apt-get: Permission denied")
				return
			}
			wantOK(t, r, "apt-get (not allowed, posture audit)", "apt-get (fake): install x")
			// AppArmor does not log an Audit posture: armor-tracer's
			// telemetry reports it.
			var found *alert
			waitFor(t, "the posture's alert", 20*time.Second, func() bool {
				for _, a := range tr.alerts(t, p.name) {
					if a.Operation == "Process" && a.Resource == "/usr/bin/apt-get" {
						found = &a
						return true
					}
				}
				return false
			})
			t.Logf("alert: %s", *found)
			if a := *found; a.PolicyName != "DefaultPosture" || a.Action != "Audit" || a.Result != "Passed" || a.ContainerName != "main" || a.NamespaceName != podNamespace {
				t.Errorf("the posture's alert: %s; want DefaultPosture, Audit, Passed in container main", a)
			}
		})
	}
}

// TestAppArmorPolicyEdit: editing the policy replaces the profile in
// place: a running container is refused what the edit blocks, then
// allowed it again when the rule goes.
func TestAppArmorPolicyEdit(t *testing.T) {
	vmtest.RequireLSM(t, "apparmor")
	need(t)
	writePolicy(t, "aa-edit.yaml", aaPolicy)
	startArmor(t)
	ann := map[string]string{policiesKey: aaPolicyName}
	p := aaPod(t, "edit", ann, "main")
	id := startWith(t, p, aaContainer("main", profileName(ann, "main"), sleeper...))
	wantOK(t, execIn(t, id, "cat", "/etc/group"), "cat /etc/group before the edit", "root:")

	writePolicy(t, "aa-edit.yaml", strings.Replace(aaPolicy, "    - path: /etc/shadow\n", "    - path: /etc/shadow\n    - path: /etc/group\n", 1))
	waitFor(t, "the edit to refuse /etc/group", 20*time.Second, func() bool {
		return execIn(t, id, "cat", "/etc/group").code != 0
	})
	wantRefused(t, execIn(t, id, "cat", "/etc/group"), "cat /etc/group after the edit", "cat: can't open '/etc/group': "+aaDenied)

	writePolicy(t, "aa-edit.yaml", aaPolicy)
	waitFor(t, "the edit back to allow /etc/group", 20*time.Second, func() bool {
		return execIn(t, id, "cat", "/etc/group").code == 0
	})
	wantRefused(t, execIn(t, id, "cat", "/etc/shadow"), "cat /etc/shadow after both edits", "cat: can't open '/etc/shadow': "+aaDenied)
}

// TestAppArmorRefused: a container whose rules need AppArmor is refused
// when its profile is not loaded, when its spec names another profile or
// none, when it is privileged, when the pod's annotation names a profile
// that is not the pod's, and while nri-armor is down.
func TestAppArmorRefused(t *testing.T) {
	vmtest.RequireLSM(t, "apparmor")
	need(t)
	writePolicy(t, "aa-refused.yaml", aaPolicy)
	a := startArmor(t)
	ann := map[string]string{policiesKey: aaPolicyName}

	t.Run("not-loaded", func(t *testing.T) {
		// No annotation: nothing loads the profile before containerd
		// checks it.
		p := runPod(t, "notloaded", ann)
		id, r := createContainerWith(t, p, aaContainer("unloaded", profileName(ann, "unloaded"), sleeper...))
		wantRefusedCreate(t, id, r, "a container naming a profile not loaded", profileName(ann, "unloaded"))
	})
	p := aaPod(t, "refused", ann, "runtime-default", "unconfined", "other", "no-seccomp", "sys-admin")
	t.Run("names-runtime-default", func(t *testing.T) {
		id, r := createContainerWith(t, p, containerConfig("runtime-default", sleeper))
		if id != "" {
			r = crictl(t, "start", id)
		}
		wantRefusedStart(t, r, "a container under containerd's default profile", "cri-containerd.apparmor.d", profileName(ann, "runtime-default"))
	})
	t.Run("names-none", func(t *testing.T) {
		cfg := containerConfig("unconfined", sleeper)
		cfg["linux"] = map[string]any{"security_context": map[string]any{"apparmor": map[string]any{"profile_type": 1}}}
		id, r := createContainerWith(t, p, cfg)
		if id != "" {
			r = crictl(t, "start", id)
		}
		wantRefusedStart(t, r, "an unconfined container", "names none", profileName(ann, "unconfined"))
	})
	t.Run("names-another", func(t *testing.T) {
		other := profileName(ann, "runtime-default") // loaded: another container's
		id, r := createContainerWith(t, p, aaContainer("other", other, sleeper...))
		if id != "" {
			r = crictl(t, "start", id)
		}
		wantRefusedStart(t, r, "a container naming another container's profile", "names "+other, profileName(ann, "other"))
	})
	// Its own profile, but open_tree within reach (a detached copy of a
	// mount tree, which AppArmor names otherwise than the rules).
	t.Run("seccomp-unconfined", func(t *testing.T) {
		cfg := aaContainer("no-seccomp", profileName(ann, "no-seccomp"), sleeper...)
		cfg["linux"].(map[string]any)["security_context"].(map[string]any)["seccomp"] = map[string]any{"profile_type": unconfined}
		id, r := createContainerWith(t, p, cfg)
		if id != "" {
			r = crictl(t, "start", id)
		}
		wantRefusedStart(t, r, "a container under its profile without a seccomp filter", "without a seccomp filter", "open_tree")
	})
	t.Run("cap-sys-admin", func(t *testing.T) {
		cfg := aaContainer("sys-admin", profileName(ann, "sys-admin"), sleeper...)
		cfg["linux"].(map[string]any)["security_context"].(map[string]any)["capabilities"] = map[string]any{"add_capabilities": []string{"SYS_ADMIN"}}
		id, r := createContainerWith(t, p, cfg)
		if id != "" {
			r = crictl(t, "start", id)
		}
		wantRefusedStart(t, r, "a container under its profile with CAP_SYS_ADMIN", "may hold CAP_SYS_ADMIN", "open_tree")
	})
	// A privileged container: containerd puts it under the profile it
	// names, CRI-O under none (it sets privileged containers no AppArmor
	// profile at all); either way it may hold CAP_SYS_ADMIN, and it is
	// refused, never started with its rules unenforced.
	t.Run("privileged", func(t *testing.T) {
		all := map[string]string{policiesKey: aaPolicyName}
		all["container.apparmor.security.beta.kubernetes.io/priv"] = "localhost/" + profileName(ann, "priv")
		name := "priv-" + randomSuffix()
		cfg := writeJSON(t, map[string]any{
			"metadata":    map[string]any{"name": name, "namespace": podNamespace, "uid": name, "attempt": 0},
			"annotations": all,
			"linux": map[string]any{"cgroup_parent": "/" + runtimeOf(t).cgroupParent,
				"security_context": map[string]any{"privileged": true, "namespace_options": map[string]any{"network": 2}}},
		})
		q := pod{id: mustCrictl(t, "runp", cfg), config: cfg, name: name, namespace: podNamespace}
		t.Cleanup(func() { crictl(t, "rmp", "-f", q.id) })
		c := aaContainer("priv", profileName(ann, "priv"), sleeper...)
		c["linux"].(map[string]any)["security_context"].(map[string]any)["privileged"] = true
		id, r := createContainerWith(t, q, c)
		if id != "" {
			r = crictl(t, "start", id)
		}
		wantRefusedStart(t, r, "a privileged container", "refusing to start it")
		if !strings.Contains(crictlSays(r), "may hold CAP_SYS_ADMIN") && !strings.Contains(crictlSays(r), "names none") {
			t.Errorf("a privileged container: refused for another reason than its capabilities or its missing profile: %s", crictlSays(r))
		}
	})
	t.Run("wrong-annotation", func(t *testing.T) {
		all := map[string]string{policiesKey: aaPolicyName,
			"container.apparmor.security.beta.kubernetes.io/main": "localhost/" + profileName(nil, "main")}
		cfg := writeJSON(t, map[string]any{
			"metadata":    map[string]any{"name": "wrong-" + randomSuffix(), "namespace": podNamespace, "uid": randomSuffix(), "attempt": 0},
			"annotations": all,
			"linux": map[string]any{"cgroup_parent": "/" + env.cgroupParent,
				"security_context": map[string]any{"namespace_options": map[string]any{"network": 2}}},
		})
		r := crictl(t, "runp", cfg)
		if r.code == 0 {
			crictl(t, "rmp", "-f", strings.TrimSpace(r.stdout))
			t.Fatalf("a pod whose annotation names another identity's profile started")
		}
		wantAll(t, "crictl runp", crictlSays(r), "names AppArmor profile "+profileName(nil, "main"))
	})
	t.Run("nri-armor-down", func(t *testing.T) {
		a.kill(t)
		q := aaPod(t, "down", ann, "main")
		id, r := createContainerWith(t, q, aaContainer("main", profileName(ann, "main"), sleeper...))
		if id != "" {
			r = crictl(t, "start", id)
			if r.code == 0 {
				t.Fatalf("a container whose rules need AppArmor started while nri-armor was down")
			}
		}
		t.Logf("with nri-armor down: %s", crictlSays(r))
	})
}

// wantRefusedStart asserts that creating or starting a container failed
// with messages.
func wantRefusedStart(t *testing.T, r result, what string, messages ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("%s started", what)
	}
	t.Logf("%s: %s", what, crictlSays(r))
	wantAll(t, what, crictlSays(r), messages...)
}
