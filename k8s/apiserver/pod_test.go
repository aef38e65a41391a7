//go:build k8s

package apiserver

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
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

	// Syscall rules on nodes whose runtimes take them through a Localhost
	// seccomp profile (--seccomp-localhost): the API server stores the
	// field and the annotation the agent reads; a container asking for a
	// Localhost profile of its own is refused.
	mustKubectl(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-getcpu, namespace: webhook-pods}
spec:
  selector: {matchLabels: {app: sys}}
  syscalls:
    matchSyscalls:
    - syscall: [getcpu]
  action: Block
`, "apply", "-f", "-")
	sysPod := strings.Replace(strings.Replace(webPod, "app: web", "app: sys", 1), "appArmorProfile: {type: Unconfined}", "seccompProfile: {type: Unconfined}", 1)
	var sys corev1.Pod
	for i := 0; ; i++ {
		out := mustKubectl(t, sysPod, "create", "--dry-run=server", "-o", "json", "-f", "-")
		if err := json.Unmarshal([]byte(out), &sys); err != nil {
			t.Fatal(err)
		}
		if len(sys.Annotations) > 0 || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	spp := policy.Pod{Namespace: "webhook-pods", Labels: map[string]string{"app": "sys"}}
	for _, c := range append(sys.Spec.InitContainers, sys.Spec.Containers...) {
		base := seccomp.BaseDefault
		if c.Name == "main" {
			base = seccomp.BaseUnconfined
		}
		want := seccomp.ProfileName(spp, c.Name, base)
		if sc := c.SecurityContext; sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeLocalhost || *sc.SeccompProfile.LocalhostProfile != want {
			t.Errorf("container %s: security context %+v, want seccomp Localhost %s", c.Name, sc, want)
		}
		if a := sys.Annotations[seccomp.ProfileAnnotation+c.Name]; a != want {
			t.Errorf("container %s: annotation %q, want %s", c.Name, a, want)
		}
	}
	own := strings.Replace(sysPod, "seccompProfile: {type: Unconfined}", "seccompProfile: {type: Localhost, localhostProfile: mine.json}", 1)
	if out, err := kubectl(t, own, "create", "--dry-run=server", "-f", "-"); err == nil || !strings.Contains(err.Error(), "its seccompProfile is Localhost") {
		t.Errorf("pod naming its own Localhost profile: %v %s", err, out)
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

// The chart's pod webhooks as the API server applies them: a namespace
// labelled nri-armor.dev/webhook=disabled opts out only when the nodes
// trust it (agent.config.weakenNamespaces); elsewhere the label changes
// nothing. The chart rendered with one trusted namespace, its mutating
// configuration pointed at the test's webhook by URL.
func TestPodWebhookOptOut(t *testing.T) {
	startWebhook(t)
	out, err := exec.Command(filepath.Join(testenv.RepoRoot(t), "hack", "k8s", "helm.sh"), "template", "nri-armor",
		filepath.Join(testenv.RepoRoot(t), "charts", "nri-armor"), "--namespace", "nri-armor",
		"--set", "agent.config.weakenNamespaces={optout-trusted}", "--show-only", "templates/webhook.yaml").Output()
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	for doc := range strings.SplitSeq(string(out), "\n---") {
		if strings.Contains(doc, "kind: MutatingWebhookConfiguration") {
			if err := yaml.UnmarshalStrict([]byte(doc), &mwc); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(mwc.Webhooks) != 2 {
		t.Fatalf("the chart's pod webhooks with a trusted namespace: %d, want 2", len(mwc.Webhooks))
	}
	// Served by the test's webhook, whose CA it put in its own configuration.
	ctx := ctxT(t, time.Minute)
	own, err := cluster.Clientset().AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "nri-armor", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mwc.ObjectMeta = metav1.ObjectMeta{Name: "nri-armor-optout"}
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].ClientConfig = own.Webhooks[0].ClientConfig
	}
	if _, err := cluster.Clientset().AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer cluster.Clientset().AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctxT(t, time.Minute), mwc.Name, metav1.DeleteOptions{})

	mutated := func(ns string) bool {
		t.Helper()
		pod := strings.ReplaceAll(webPod, "namespace: webhook-pods", "namespace: "+ns)
		var p corev1.Pod
		if err := json.Unmarshal([]byte(mustKubectl(t, pod, "create", "--dry-run=server", "-o", "json", "-f", "-")), &p); err != nil {
			t.Fatal(err)
		}
		return len(p.Annotations) > 0
	}
	for _, ns := range []string{"optout-trusted", "optout-untrusted"} {
		mustKubectl(t, "", "create", "namespace", ns)
		mustKubectl(t, "", "create", "serviceaccount", "default", "-n", ns)
		mustKubectl(t, strings.ReplaceAll(ksp("block-apt", "Block"), "namespace: agent", "namespace: "+ns), "apply", "-f", "-")
		// Reviewed before the label (once the webhook's watch has the policy).
		for i := 0; !mutated(ns); i++ {
			if i == 50 {
				t.Fatalf("pods of %s are not mutated before the label", ns)
			}
			time.Sleep(100 * time.Millisecond)
		}
		mustKubectl(t, "", "label", "namespace", ns, "nri-armor.dev/webhook=disabled")
	}
	if mutated("optout-untrusted") {
		t.Log("optout-untrusted, labelled: still reviewed (the nodes do not trust it)")
	} else {
		t.Error("a namespace the nodes do not trust opted out of the pod webhook by its label")
	}
	if mutated("optout-trusted") {
		t.Error("a trusted namespace labelled nri-armor.dev/webhook=disabled: its pods are still reviewed")
	}
	mustKubectl(t, "", "label", "namespace", "optout-trusted", "nri-armor.dev/webhook-")
	if !mutated("optout-trusted") {
		t.Error("a trusted namespace without the label: its pods are not reviewed")
	}
}
