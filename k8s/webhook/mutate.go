package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/policy"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

// AppArmorAnnotation prefixes the pod annotation that names a container's
// AppArmor profile, "localhost/NAME": Kubernetes' own before 1.30, and
// what the node's agent reads at RunPodSandbox (the runtime shows it a
// pod's annotations, never its containers' security contexts).
const AppArmorAnnotation = "container.apparmor.security.beta.kubernetes.io/"

// PodMutator decides a pod's review (/mutate-pod).
type PodMutator struct {
	// Catalog is the policies in force (the webhook's own watch).
	Catalog func() *policy.Catalog
	// Defaults are the nodes' defaults (the agents' configuration).
	Defaults policy.Defaults
	// AppArmor: the nodes enforce process, file and capability rules with
	// AppArmor (no BPF-LSM): a container with such rules is given the
	// profile the agent loads for it.
	AppArmor bool
	// SeccompLocalhost: the nodes' runtimes take syscall rules through a
	// Localhost seccomp profile the agent writes (CRI-O, containerd < 2.3:
	// enforce/seccomp.RouteLocalhost): a container with syscall Block or
	// Audit rules is given it. containerd >= 2.3 merges the rules into it
	// again through NRI, which changes nothing, so one setting serves a
	// mixed cluster.
	SeccompLocalhost bool
	// NodeSelector is where the agents run: merged into the pods given a
	// profile, which no other node can run.
	NodeSelector map[string]string
	// Compiler compiles rule sets (shared, cached).
	Compiler *policy.Compiler
}

// Review answers a pod's admission review: a pod naming a policy that does
// not exist, or with annotations that do not parse, is refused with the
// agent's own error, at admission instead of on the node; where AppArmor
// enforces, each container (init, regular, ephemeral) whose rules need a
// profile gets it in securityContext.appArmorProfile and the annotation,
// whatever the pod asked for (a pod may not choose a weaker profile), and
// the agents' node selector.
func (m *PodMutator) Review(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return deny(http.StatusBadRequest, fmt.Sprintf("not a pod: %v", err))
	}
	ns := pod.Namespace
	if ns == "" {
		ns = req.Namespace
	}
	pp := policy.Pod{Namespace: ns, Name: pod.Name, Labels: pod.Labels, Annotations: pod.Annotations}
	var patch []jsonPatch
	var warnings []string
	needs := false
	annotations := map[string]string{}
	for k, v := range pod.Annotations {
		annotations[k] = v
	}
	for _, c := range containersOf(&pod) {
		name, syscalls, err := m.profileFor(pp, c.name)
		if err != nil {
			return deny(http.StatusForbidden, err.Error())
		}
		var aa *corev1.AppArmorProfile
		if name != "" {
			aa = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost, LocalhostProfile: &name}
			if c.sc != nil && c.sc.AppArmorProfile != nil && !sameProfile(c.sc.AppArmorProfile, aa) {
				warnings = append(warnings, fmt.Sprintf("container %s: appArmorProfile replaced by %s: its policies need it", c.name, name))
			}
			annotations[AppArmorAnnotation+c.name] = "localhost/" + name
		}
		var sc *corev1.SeccompProfile
		if syscalls {
			ref, err := seccompFor(pp, &pod, c)
			if err != nil {
				return deny(http.StatusForbidden, err.Error())
			}
			sc = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: &ref}
			annotations[seccomp.ProfileAnnotation+c.name] = ref
		}
		if aa == nil && sc == nil {
			continue
		}
		needs = true
		switch {
		case c.sc == nil:
			patch = append(patch, jsonPatch{"add", c.path + "/securityContext", corev1.SecurityContext{AppArmorProfile: aa, SeccompProfile: sc}})
		default:
			if aa != nil {
				patch = append(patch, jsonPatch{"add", c.path + "/securityContext/appArmorProfile", aa})
			}
			if sc != nil {
				patch = append(patch, jsonPatch{"add", c.path + "/securityContext/seccompProfile", sc})
			}
		}
	}
	if !needs {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	patch = append(patch, jsonPatch{"add", "/metadata/annotations", annotations})
	if len(m.NodeSelector) > 0 {
		sel := map[string]string{}
		for k, v := range pod.Spec.NodeSelector {
			sel[k] = v
		}
		for k, v := range m.NodeSelector {
			sel[k] = v
		}
		patch = append(patch, jsonPatch{"add", "/spec/nodeSelector", sel})
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return deny(http.StatusInternalServerError, err.Error())
	}
	pt := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: body, PatchType: &pt, Warnings: warnings}
}

// profileFor is the AppArmor profile container c of pod needs ("" for
// none) and whether it needs a Localhost seccomp profile (syscall Block or
// Audit rules, where SeccompLocalhost); the error is the agent's for a pod
// it would refuse.
func (m *PodMutator) profileFor(pod policy.Pod, c string) (string, bool, error) {
	target, err := m.Catalog().Resolve(pod, c, m.Defaults)
	if err != nil {
		return "", false, fmt.Errorf("nri-armor: container %s: %w", c, err)
	}
	if !m.AppArmor && !m.SeccompLocalhost || target.Settings.Mode == policy.ModeDisabled || len(target.Policies) == 0 {
		return "", false, nil
	}
	rs := m.Compiler.Compile(target.Policies, target.Settings.Options())
	name := ""
	if m.AppArmor && apparmor.Needs(rs) {
		name = apparmor.ProfileName(pod, c)
	}
	syscalls := false
	if m.SeccompLocalhost && rs != nil {
		for _, r := range rs.Syscalls.Rules {
			syscalls = syscalls || r.Action != policy.Allow
		}
	}
	return name, syscalls, nil
}

// seccompFor is the Localhost seccomp profile container c of pod gets:
// the runtime's default with its rules, or, where it asks for Unconfined,
// a default-allow profile with them. One that asks for RuntimeDefault, or
// for nothing (the kubelet's default: RuntimeDefault with
// --seccomp-default, else Unconfined; the runtime default is the stricter
// guess), gets the runtime default. Its own Localhost profile cannot be
// merged into (the webhook cannot read the node's file): refused. A
// profile of nri-armor's named already (the webhook reinvoked) is kept if
// it is the one it would give.
func seccompFor(pp policy.Pod, pod *corev1.Pod, c podContainer) (string, error) {
	prof := (*corev1.SeccompProfile)(nil)
	if c.sc != nil && c.sc.SeccompProfile != nil {
		prof = c.sc.SeccompProfile
	} else if pod.Spec.SecurityContext != nil {
		prof = pod.Spec.SecurityContext.SeccompProfile
	}
	base := seccomp.BaseDefault
	if prof != nil {
		switch prof.Type {
		case corev1.SeccompProfileTypeUnconfined:
			base = seccomp.BaseUnconfined
		case corev1.SeccompProfileTypeLocalhost:
			ref := ""
			if prof.LocalhostProfile != nil {
				ref = *prof.LocalhostProfile
			}
			if b, ours := seccomp.ParseProfileName(ref); ours && ref == seccomp.ProfileName(pp, c.name, b) {
				return ref, nil
			}
			return "", fmt.Errorf("nri-armor: container %s: its seccompProfile is Localhost %q, into which nri-armor cannot merge its syscall rules on these nodes (the profile is a file on the node): use RuntimeDefault or Unconfined, and nri-armor gives it a profile with the rules", c.name, ref)
		}
	}
	return seccomp.ProfileName(pp, c.name, base), nil
}

func sameProfile(a, b *corev1.AppArmorProfile) bool {
	return a.Type == b.Type && (a.LocalhostProfile == nil) == (b.LocalhostProfile == nil) &&
		(a.LocalhostProfile == nil || *a.LocalhostProfile == *b.LocalhostProfile)
}

type jsonPatch struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

type podContainer struct {
	name, path string
	sc         *corev1.SecurityContext
}

// containersOf lists every container of the pod with its JSON path.
func containersOf(pod *corev1.Pod) []podContainer {
	var out []podContainer
	for i, c := range pod.Spec.InitContainers {
		out = append(out, podContainer{c.Name, fmt.Sprintf("/spec/initContainers/%d", i), c.SecurityContext})
	}
	for i, c := range pod.Spec.Containers {
		out = append(out, podContainer{c.Name, fmt.Sprintf("/spec/containers/%d", i), c.SecurityContext})
	}
	for i, c := range pod.Spec.EphemeralContainers {
		out = append(out, podContainer{c.Name, fmt.Sprintf("/spec/ephemeralContainers/%d", i), c.SecurityContext})
	}
	return out
}
