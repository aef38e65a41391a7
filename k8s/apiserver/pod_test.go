//go:build k8s

package apiserver

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/policy"
	corev1 "k8s.io/api/core/v1"
)

const webPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: webhook-pods
  labels: {app: web}
spec:
  initContainers:
  - {name: init, image: nri-armor.local/e2e/busybox:1}
  containers:
  - name: main
    image: nri-armor.local/e2e/busybox:1
    securityContext:
      appArmorProfile: {type: Unconfined}
`

// The pod webhook, through the API server: a pod whose policy needs
// AppArmor is stored with the agent's profile on every container (over the
// Unconfined it asked for), the annotation the agent reads at
// RunPodSandbox, and the agents' node selector; a pod naming a policy that
// does not exist is refused; a pod no policy selects is stored as sent.
func TestPodWebhook(t *testing.T) {
	startWebhook(t)
	mustKubectl(t, "", "create", "namespace", "webhook-pods")
	// No controller-manager makes the namespace's default service account.
	mustKubectl(t, "", "create", "serviceaccount", "default", "-n", "webhook-pods")
	mustKubectl(t, strings.ReplaceAll(ksp("block-apt", "Block"), "namespace: agent", "namespace: webhook-pods"), "apply", "-f", "-")
	// The webhook's watch has the policy once a dry run of the pod shows it.
	var pod corev1.Pod
	for i := 0; ; i++ {
		out := mustKubectl(t, webPod, "create", "--dry-run=server", "-o", "json", "-f", "-")
		if err := json.Unmarshal([]byte(out), &pod); err != nil {
			t.Fatal(err)
		}
		if len(pod.Annotations) > 0 || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	pp := policy.Pod{Namespace: "webhook-pods", Labels: map[string]string{"app": "web"}}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		want := apparmor.ProfileName(pp, c.Name)
		if sc := c.SecurityContext; sc == nil || sc.AppArmorProfile == nil || sc.AppArmorProfile.Type != corev1.AppArmorProfileTypeLocalhost || *sc.AppArmorProfile.LocalhostProfile != want {
			t.Errorf("container %s: security context %+v, want Localhost %s", c.Name, sc, want)
		}
		if a := pod.Annotations["container.apparmor.security.beta.kubernetes.io/"+c.Name]; a != "localhost/"+want {
			t.Errorf("container %s: annotation %q", c.Name, a)
		}
	}
	if pod.Spec.NodeSelector["nri-armor.dev/agent"] != "true" {
		t.Errorf("nodeSelector %v", pod.Spec.NodeSelector)
	}

	unknown := strings.Replace(webPod, "labels: {app: web}", "labels: {app: web}\n  annotations: {nri-armor.dev/policies: no-such}", 1)
	if out, err := kubectl(t, unknown, "create", "--dry-run=server", "-f", "-"); err == nil || !strings.Contains(err.Error(), `no policy named "no-such"`) {
		t.Errorf("pod naming an unknown policy: %v %s", err, out)
	}

	other := strings.Replace(webPod, "app: web", "app: db", 1)
	out := mustKubectl(t, other, "create", "--dry-run=server", "-o", "json", "-f", "-")
	var plain corev1.Pod
	if err := json.Unmarshal([]byte(out), &plain); err != nil {
		t.Fatal(err)
	}
	if len(plain.Annotations) != 0 || plain.Spec.NodeSelector != nil || plain.Spec.Containers[0].SecurityContext.AppArmorProfile.Type != corev1.AppArmorProfileTypeUnconfined {
		t.Errorf("pod no policy selects was changed: %+v %+v", plain.ObjectMeta, plain.Spec)
	}
}
