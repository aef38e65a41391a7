//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/ocihook"
)

// TestWeakeningAnnotation: a pod author cannot switch enforcement off for
// their own pod. The raw-socket pod asking for nri-armor.dev/mode: disabled
// still gets EPERM, and nri-armor counts, logs and publishes the annotation
// it did not honour; once the node trusts the pod's namespace
// (weakenNamespaces), the same pod is not enforced.
func TestWeakeningAnnotation(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, _ *criRuntime) { testWeakeningAnnotation(t) })
}

// testWeakeningAnnotation is TestWeakeningAnnotation against one runtime.
func testWeakeningAnnotation(t *testing.T) {
	a, addr := startWithPolicy(t)
	ann := map[string]string{policiesKey: policyName, "nri-armor.dev/mode": "disabled"}

	untrusted := runPod(t, "untrusted", ann)
	id := startContainer(t, untrusted, "main", sleeper...)
	wantDenied(t, execIn(t, id, "nettool", "raw"), "socket raw")
	wantDenied(t, execIn(t, id, "nettool", "connect", addr), "connect "+addr)
	a.wantMetric(t, `nri_armor_annotations_ignored_total{annotation="nri-armor.dev/mode",namespace="`+podNamespace+`"}`, 1)
	a.wantMetric(t, enforcedSeries(), 1)
	rec := published(t, id)
	if len(rec.Ignored) != 1 || rec.Ignored[0].Key != "nri-armor.dev/mode" || rec.Ignored[0].Value != "disabled" {
		t.Errorf("published record's ignored annotations %+v, want nri-armor.dev/mode=disabled", rec.Ignored)
	}
	// logrus quotes the message: the annotation's value is escaped there.
	if log, _ := os.ReadFile(a.logPath); !strings.Contains(string(log), "pod e2e/"+untrusted.name+` container main: annotation nri-armor.dev/mode=\"disabled\": not honoured`) {
		t.Errorf("nri-armor's log does not name the pod and the annotation it did not honour")
	}

	// The node trusts the namespace: the annotation is honoured.
	a.stop()
	a = startArmor(t, "-weakenNamespaces", podNamespace)
	trusted := runPod(t, "trusted", ann)
	tid := startContainer(t, trusted, "main", sleeper...)
	wantOK(t, execIn(t, tid, "nettool", "raw"), "raw socket in a trusted namespace's disabled pod", "ok: raw socket created")
	a.wantMetric(t, `nri_armor_annotations_ignored_total{annotation="nri-armor.dev/mode",namespace="`+podNamespace+`"}`, 0)
}

// TestTolerateMissingTrust: while nri-armor is down, containerd's NRI
// validator lets any pod carrying nri-armor.dev/tolerate-missing create its
// containers, in any namespace; the guard (config/containerd-base-spec.json,
// nri-armor-hook -guard) then refuses to start them unless the node trusts
// the namespace: the weakenNamespaces nri-armor last wrote to its trust
// file, or nri-armor's own namespace (the hook's bootstrap list). A trust
// file that does not parse refuses, naming the file.
func TestTolerateMissingTrust(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, _ *criRuntime) { testTolerateMissingTrust(t) })
}

// testTolerateMissingTrust is TestTolerateMissingTrust against one runtime.
func testTolerateMissingTrust(t *testing.T) {
	need(t)
	const trustedNS = "e2e-trusted"
	tolerate := map[string]string{tolerateKey: "true"}
	writePolicy(t, "no-raw-no-tcp.yaml", noRawNoTCP)
	addr := listen(t)
	a := startArmor(t, "-weakenNamespaces", trustedNS)
	trustFile := filepath.Join(env.gate, ocihook.TrustFileName)
	if b, err := os.ReadFile(trustFile); err != nil || !strings.Contains(string(b), `"`+trustedNS+`"`) {
		t.Fatalf("nri-armor -weakenNamespaces %s wrote %s: %q, %v", trustedNS, trustFile, b, err)
	}
	// Up, nri-armor decides: a tolerating pod of any namespace starts.
	startContainer(t, runPod(t, "up", tolerate), "main", sleeper...)
	a.kill(t)

	untrusted := runPod(t, "untrusted", tolerate)
	r, started := createThenStart(t, untrusted, "main")
	if started {
		t.Fatalf("a tolerating pod of namespace %s, which the node does not trust, started while nri-armor was down", podNamespace)
	}
	t.Logf("refused: %s", crictlSays(r))
	for _, want := range []string{"nri-armor is not running", `the node does not trust namespace "` + podNamespace + `"`, trustFile} {
		if !strings.Contains(crictlSays(r), want) {
			t.Errorf("start refused, but crictl says %q: want it to say %q", crictlSays(r), want)
		}
	}
	// A pod cannot name another namespace, or pass for a sandbox, through
	// its annotations: containerd does not copy them into the spec, CRI-O
	// does, before its own keys (which the guard reads there).
	forged := runPod(t, "forged", map[string]string{tolerateKey: "true",
		"io.kubernetes.cri.sandbox-namespace": ownNamespace, "io.kubernetes.cri.container-type": "sandbox",
		"io.kubernetes.cri-o.Name": "k8s_main_x_" + ownNamespace + "_x_0", "io.kubernetes.cri-o.ContainerType": "sandbox",
		"io.container.manager": "containerd"})
	if r, started := createThenStart(t, forged, "main"); started || !strings.Contains(crictlSays(r), `the node does not trust namespace "`+podNamespace+`"`) {
		t.Errorf("a tolerating pod of namespace %s whose annotations name namespace %s: %v; want it refused as %s", podNamespace, ownNamespace, r, podNamespace)
	}
	// (Second containers of the same pods below: pods are slow in the VM.)
	trusted := runPodIn(t, trustedNS, "trusted", tolerate)
	startContainer(t, trusted, "main", sleeper...)
	own := runPodIn(t, ownNamespace, "own", tolerate)
	startContainer(t, own, "main", sleeper...)

	// A trust file that does not parse: refused, naming the file; the
	// bootstrap list still lets nri-armor's own pod start.
	if err := os.WriteFile(trustFile, []byte("weakenNamespaces: [e2e-trusted]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, started := createThenStart(t, trusted, "badfile"); started || !strings.Contains(crictlSays(r), "trust file "+trustFile) {
		t.Errorf("start with a malformed trust file: %v; want it refused naming %s", r, trustFile)
	}
	startContainer(t, own, "badfile", sleeper...)

	// On CRI-O a container of an untrusted namespace is never created
	// while nri-armor is down (the guard refuses at create, above): there
	// is no late start.
	if isCRIO(t) {
		return
	}

	// A container created while nri-armor is down and started once it is
	// back: nri-armor (which Synchronize told of it) decides, and installs
	// the rules its pod names.
	late := runPod(t, "late", map[string]string{tolerateKey: "true", policiesKey: policyName})
	lateID, r := createContainer(t, late, "main", sleeper...)
	if lateID == "" {
		t.Fatalf("crictl create: %v", r)
	}
	a = startArmor(t, "-weakenNamespaces", trustedNS)
	if b, err := os.ReadFile(trustFile); err != nil || !strings.Contains(string(b), `"`+trustedNS+`"`) {
		t.Errorf("nri-armor did not rewrite %s at start: %q, %v", trustFile, b, err)
	}
	mustCrictl(t, "start", lateID)
	checkGuarded(t, lateID, addr)
	a.wantMetric(t, enforcedSeries(), 1)
}

// createThenStart creates a container in p and starts it: the result of
// the step that failed (or of the start), and whether it started. The
// guard is a createRuntime hook: containerd runs it at StartContainer (the
// task's creation), CRI-O at CreateContainer (`runc create`), so on CRI-O
// its refusal may come from the create; on containerd the create must
// succeed (the validator lets a tolerating pod through).
func createThenStart(t *testing.T, p pod, name string) (result, bool) {
	t.Helper()
	id, r := createContainer(t, p, name, sleeper...)
	if id == "" {
		if !isCRIO(t) {
			t.Fatalf("crictl create of %s in pod %s: %v (the validator should let it through)", name, p.name, r)
		}
		return r, false
	}
	r = crictl(t, "start", id)
	return r, r.code == 0
}
