//go:build k8s

package apiserver

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Each policy carries its verdict in status.status, written by the
// webhook's deployment alone: OK for a valid one; for one stored while the
// policy webhook did not look at it (here: its namespace kept out of the
// webhook's reach), Invalid and the errors that keep it out of force.
func TestPolicyStatus(t *testing.T) {
	startWebhook(t)
	mustKubectl(t, "", "create", "namespace", "status")
	mustKubectl(t, strings.ReplaceAll(ksp("good", "Block"), "namespace: agent", "namespace: status"), "apply", "-f", "-")
	waitStatus(t, "good", "OK")

	mustKubectl(t, "", "patch", "validatingwebhookconfiguration", "nri-armor", "--type=json",
		"-p", `[{"op":"add","path":"/webhooks/0/namespaceSelector","value":{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["status"]}]}}]`)
	defer mustKubectl(t, "", "patch", "validatingwebhookconfiguration", "nri-armor", "--type=json",
		"-p", `[{"op":"remove","path":"/webhooks/0/namespaceSelector"}]`)
	// The capability's name passes KubeArmor's schema (its pattern is not
	// anchored), not nri-armor's loader.
	bad := `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: bad, namespace: status}
spec:
  selector: {matchLabels: {app: web}}
  capabilities:
    matchCapabilities: [{capability: xnet_raw}]
  action: Block
`
	mustKubectl(t, bad, "apply", "-f", "-")
	got := waitStatus(t, "bad", "Invalid: ")
	if !strings.Contains(got, "spec.capabilities.matchCapabilities[0]") {
		t.Errorf("status %q does not name the field", got)
	}
}

// waitStatus waits up to 30 s for ksp name of namespace status to have a
// status starting with want, and returns it.
func waitStatus(t *testing.T, name, want string) string {
	t.Helper()
	var got string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		got = strings.TrimSpace(mustKubectl(t, "", "get", "ksp", "-n", "status", name, "-o", "jsonpath={.status.status}"))
		if strings.HasPrefix(got, want) {
			return got
		}
	}
	log, _ := os.ReadFile(webhookLog)
	t.Fatalf("ksp status/%s: status %q, want %q…; the webhook's log:\n%s", name, got, want, log)
	return ""
}
