//go:build e2e && (vme2e || vmapparmor || vmk8s)

package e2e

import (
	"testing"
	"time"
)

// What every VM end-to-end test reads of armor-tracer: on either boot
// (BPF-LSM, AppArmor) and on the Kubernetes node (make k8s-node).

// waitAlertLike waits for armor-tracer's alert of want's operation on
// want's resource in a pod's container, and checks that it says what want
// says besides: the pod's identity, the policy, the enforcer, the action
// and the result.
func (tr *tracer) waitAlertLike(t *testing.T, p pod, want alert) alert {
	t.Helper()
	var found *alert
	for deadline := time.Now().Add(20 * time.Second); found == nil; time.Sleep(100 * time.Millisecond) {
		for _, a := range tr.alerts(t, p.name) {
			if a.ContainerName == want.ContainerName && a.Operation == want.Operation && a.Resource == want.Resource {
				found = &a
				break
			}
		}
		if found == nil && time.Now().After(deadline) {
			tr.dump(t)
			t.Fatalf("no alert from armor-tracer for %s %s in %s/%s container %s within 20s", want.Operation, want.Resource, podNamespace, p.name, want.ContainerName)
		}
	}
	a := *found
	t.Logf("alert: %s", a)
	want.Type, want.NamespaceName, want.PodName, want.ProcessName = "MatchedPolicy", podNamespace, p.name, a.ProcessName
	if a != want {
		t.Errorf("alert for %s %s:\n got  %s\n want %s", want.Operation, want.Resource, a, want)
	}
	return a
}
