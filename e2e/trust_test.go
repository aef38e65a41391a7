//go:build e2e

package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestWeakeningAnnotation: a pod author cannot switch enforcement off for
// their own pod. The raw-socket pod asking for nri-armor.dev/mode: disabled
// still gets EPERM, and nri-armor counts, logs and publishes the annotation
// it did not honour; once the node trusts the pod's namespace
// (weakenNamespaces), the same pod is not enforced.
func TestWeakeningAnnotation(t *testing.T) {
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
