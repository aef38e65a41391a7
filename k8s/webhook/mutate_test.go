package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/policy"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func catalogOf(t *testing.T, docs string) func() *policy.Catalog {
	t.Helper()
	res := policy.LoadBytes("p.yaml", []byte(docs))
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	cat, err := policy.NewCatalog(res.Policies)
	if err != nil {
		t.Fatal(err)
	}
	return func() *policy.Catalog { return cat }
}

const webPod = `apiVersion: v1
kind: Pod
metadata:
  generateName: web-
  namespace: shop
  labels: {app: web}
spec:
  initContainers:
  - {name: init, image: busybox}
  containers:
  - name: main
    image: busybox
    securityContext:
      appArmorProfile: {type: Unconfined}
  - name: side
    image: busybox
    securityContext: {runAsUser: 1000}
`

// mutate reviews pod and returns the pod as the API server would store it.
func mutate(t *testing.T, m *PodMutator, podYAML string) (*corev1.Pod, []string) {
	t.Helper()
	r := review(t, (&Server{Mutate: m.Review}).Handler(), PathMutatePod, podYAML)
	if !r.Allowed {
		t.Fatalf("refused: %+v", r.Result)
	}
	obj, _ := yaml.YAMLToJSON([]byte(podYAML))
	if r.Patch != nil {
		var err error
		patch, err := jsonpatch.DecodePatch(r.Patch)
		if err != nil {
			t.Fatal(err)
		}
		if obj, err = patch.Apply(obj); err != nil {
			t.Fatalf("patch %s: %v", r.Patch, err)
		}
	}
	var pod corev1.Pod
	if err := json.Unmarshal(obj, &pod); err != nil {
		t.Fatal(err)
	}
	return &pod, r.Warnings
}

// Where the nodes enforce with AppArmor, every container of a pod whose
// rules need a profile gets the one its agent loads — in the field and the
// annotation, over the Unconfined the pod asked for — and the agents'
// node selector; a pod whose rules need none, or with no policy, is left
// as it is.
func TestMutatePodAppArmor(t *testing.T) {
	m := &PodMutator{
		Catalog:      catalogOf(t, validKSP),
		Defaults:     policy.DefaultDefaults(),
		AppArmor:     true,
		NodeSelector: map[string]string{"nri-armor.dev/agent": "true"},
		Compiler:     policy.NewCompiler(0),
	}
	pod, warnings := mutate(t, m, webPod)
	pp := policy.Pod{Namespace: "shop", Labels: map[string]string{"app": "web"}}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		want := apparmor.ProfileName(pp, c.Name)
		got := c.SecurityContext.AppArmorProfile
		if got == nil || got.Type != corev1.AppArmorProfileTypeLocalhost || *got.LocalhostProfile != want {
			t.Errorf("container %s: appArmorProfile %+v, want Localhost %s", c.Name, got, want)
		}
		if a := pod.Annotations[AppArmorAnnotation+c.Name]; a != "localhost/"+want {
			t.Errorf("container %s: annotation %q, want localhost/%s", c.Name, a, want)
		}
	}
	if u := pod.Spec.Containers[1].SecurityContext.RunAsUser; u == nil || *u != 1000 {
		t.Errorf("side's own security context lost: %+v", pod.Spec.Containers[1].SecurityContext)
	}
	if pod.Spec.NodeSelector["nri-armor.dev/agent"] != "true" {
		t.Errorf("nodeSelector %v", pod.Spec.NodeSelector)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "container main: appArmorProfile replaced") {
		t.Errorf("warnings %q", warnings)
	}

	// No policy selects this pod; and a network-only policy needs no profile.
	other := strings.Replace(webPod, "app: web", "app: db", 1)
	if pod, _ := mutate(t, m, other); len(pod.Annotations) != 0 || pod.Spec.NodeSelector != nil {
		t.Errorf("unselected pod mutated: %+v", pod)
	}
	m.Catalog = catalogOf(t, strings.Replace(validKSP, "process:\n    matchPaths:\n    - path: /usr/bin/apt-get", "network:\n    matchProtocols:\n    - protocol: raw", 1))
	if pod, _ := mutate(t, m, webPod); len(pod.Annotations) != 0 {
		t.Errorf("network-only pod given a profile: %v", pod.Annotations)
	}
	// BPF-LSM nodes: nothing to set.
	m.Catalog, m.AppArmor = catalogOf(t, validKSP), false
	if pod, _ := mutate(t, m, webPod); len(pod.Annotations) != 0 {
		t.Errorf("pod mutated without AppArmor: %v", pod.Annotations)
	}
}

// A pod naming a policy that does not exist is refused at admission, with
// the annotation and the reason the agent would give on the node.
func TestMutatePodUnknownPolicy(t *testing.T) {
	m := &PodMutator{Catalog: catalogOf(t, validKSP), Defaults: policy.DefaultDefaults(), Compiler: policy.NewCompiler(0)}
	pod := strings.Replace(webPod, "labels: {app: web}", "labels: {app: web}\n  annotations: {nri-armor.dev/policies: no-such}", 1)
	r := review(t, (&Server{Mutate: m.Review}).Handler(), PathMutatePod, pod)
	if r.Allowed || !strings.Contains(r.Result.Message, `nri-armor.dev/policies="no-such": no policy named "no-such"`) {
		t.Fatalf("%+v", r.Result)
	}
}

const syscallKSP = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-getcpu, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  process:
    matchPaths:
    - path: /usr/bin/apt-get
  syscalls:
    matchSyscalls:
    - syscall: [getcpu]
  action: Block
`

// Where the nodes' runtimes take syscall rules through a Localhost
// seccomp profile (CRI-O, containerd < 2.3), each container with syscall
// rules gets the one its agent writes, in the field and the annotation:
// on the runtime default for RuntimeDefault or nothing, on nothing for
// Unconfined; with AppArmor too, both fields in one security context. A
// container naming its own Localhost profile is refused (nothing can merge
// into it); one naming nri-armor's (the webhook reinvoked) keeps it; and
// the seccomp field is left alone without the setting.
func TestMutatePodSeccomp(t *testing.T) {
	m := &PodMutator{
		Catalog:          catalogOf(t, syscallKSP),
		Defaults:         policy.DefaultDefaults(),
		SeccompLocalhost: true,
		AppArmor:         true,
		NodeSelector:     map[string]string{"nri-armor.dev/agent": "true"},
		Compiler:         policy.NewCompiler(0),
	}
	podYAML := strings.Replace(webPod, "securityContext:\n      appArmorProfile: {type: Unconfined}", "securityContext:\n      seccompProfile: {type: Unconfined}", 1)
	pod, _ := mutate(t, m, podYAML)
	pp := policy.Pod{Namespace: "shop", Labels: map[string]string{"app": "web"}}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		base := seccomp.BaseDefault
		if c.Name == "main" {
			base = seccomp.BaseUnconfined
		}
		want := seccomp.ProfileName(pp, c.Name, base)
		got := c.SecurityContext.SeccompProfile
		if got == nil || got.Type != corev1.SeccompProfileTypeLocalhost || *got.LocalhostProfile != want {
			t.Errorf("container %s: seccompProfile %+v, want Localhost %s", c.Name, got, want)
		}
		if a := pod.Annotations[seccomp.ProfileAnnotation+c.Name]; a != want {
			t.Errorf("container %s: annotation %q, want %s", c.Name, a, want)
		}
		if c.SecurityContext.AppArmorProfile == nil {
			t.Errorf("container %s: AppArmor profile lost beside the seccomp one", c.Name)
		}
	}
	if u := pod.Spec.Containers[1].SecurityContext.RunAsUser; u == nil || *u != 1000 {
		t.Errorf("side's own security context lost: %+v", pod.Spec.Containers[1].SecurityContext)
	}
	if pod.Spec.NodeSelector["nri-armor.dev/agent"] != "true" {
		t.Errorf("nodeSelector %v", pod.Spec.NodeSelector)
	}
	// The pod's default profile counts where the container names none.
	withPodDefault := strings.Replace(webPod, "spec:\n  initContainers:", "spec:\n  securityContext:\n    seccompProfile: {type: Unconfined}\n  initContainers:", 1)
	if pod, _ := mutate(t, m, withPodDefault); *pod.Spec.InitContainers[0].SecurityContext.SeccompProfile.LocalhostProfile != seccomp.ProfileName(pp, "init", seccomp.BaseUnconfined) {
		t.Errorf("init under the pod's Unconfined: %+v", pod.Spec.InitContainers[0].SecurityContext.SeccompProfile)
	}
	// Reinvoked on its own output: unchanged.
	out, _ := json.Marshal(pod)
	again, _ := mutate(t, m, string(out))
	if *again.Spec.Containers[0].SecurityContext.SeccompProfile.LocalhostProfile != seccomp.ProfileName(pp, "main", seccomp.BaseUnconfined) {
		t.Errorf("reinvoked: %+v", again.Spec.Containers[0].SecurityContext.SeccompProfile)
	}
	// A profile of its own, or another pod's: refused.
	for _, ref := range []string{"my-profile.json", seccomp.ProfileName(policy.Pod{Namespace: "shop", Labels: map[string]string{"app": "db"}}, "main", seccomp.BaseDefault)} {
		own := strings.Replace(webPod, "appArmorProfile: {type: Unconfined}", "seccompProfile: {type: Localhost, localhostProfile: "+ref+"}", 1)
		r := review(t, (&Server{Mutate: m.Review}).Handler(), PathMutatePod, own)
		if r.Allowed || !strings.Contains(r.Result.Message, "container main: its seccompProfile is Localhost") {
			t.Errorf("own profile %s: %+v", ref, r.Result)
		}
	}
	// A pod without syscall rules, and nodes that merge through NRI: no seccomp field.
	m.Catalog = catalogOf(t, validKSP)
	if pod, _ := mutate(t, m, webPod); pod.Spec.Containers[0].SecurityContext.SeccompProfile != nil || pod.Annotations[seccomp.ProfileAnnotation+"main"] != "" {
		t.Errorf("no syscall rules, seccomp set: %+v", pod.Spec.Containers[0].SecurityContext)
	}
	m.Catalog, m.SeccompLocalhost, m.AppArmor = catalogOf(t, syscallKSP), false, false
	if pod, _ := mutate(t, m, webPod); len(pod.Annotations) != 0 {
		t.Errorf("mutated without SeccompLocalhost: %v", pod.Annotations)
	}
}
