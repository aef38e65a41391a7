package apparmor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/nri-armor/nri-armor/policy"
)

// NamePrefix starts the name of every profile nri-armor writes.
const NamePrefix = "nri-armor."

// ProfileName is the name of the AppArmor profile of container in pod:
//
//	nri-armor.<namespace>.<container>.<16 hex digits>
//
// The pod's securityContext names the profile (appArmorProfile,
// localhostProfile) and the daemon loads it under that name, so both must
// compute it from what both see. A mutating admission webhook sees the pod
// as submitted: its namespace, labels, annotations and containers — but
// neither its UID (the API server fills it in after mutating admission)
// nor, for a pod of a controller (generateName), its name (generated
// then too). The runtime shows the daemon the same namespace, labels and
// annotations at RunPodSandbox, and the container's name. So the name is
// made of exactly what decides the container's rule set (policy.Catalog's
// Resolve): the namespace and the container's name in the clear, and a
// digest of those with the pod's labels (which selectors match) and the
// annotations that choose policies, postures and the mode. It does not
// depend on the policies themselves: editing a policy replaces the
// profile in place, under the same name. Pods alike in all of that (a
// Deployment's replicas) share one profile, as they share one rule set.
//
// Left out: the labels the kubelet and the runtimes add (runtimeLabel),
// which the pod object does not have; every other annotation (the kubelet
// adds some, and they do not choose rules). A label or annotation changed
// between admission and the pod's start gives the runtime a name it has
// no profile for, and the container is refused: fail closed.
func ProfileName(pod policy.Pod, container string) string {
	labels := map[string]string{}
	for k, v := range pod.Labels {
		if !runtimeLabel(k) {
			labels[k] = v
		}
	}
	annotations := map[string]string{}
	for _, k := range nameAnnotations(container) {
		if v, ok := pod.Annotations[k]; ok {
			annotations[k] = v
		}
	}
	b, err := json.Marshal(struct {
		Version     int               `json:"v"`
		Namespace   string            `json:"namespace"`
		Container   string            `json:"container"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}{1, pod.Namespace, container, labels, annotations})
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	return NamePrefix + namePart(pod.Namespace) + "." + namePart(container) + "." + hex.EncodeToString(sum[:8])
}

// runtimeLabel says whether a pod sandbox's label is one the kubelet or
// the runtime adds, not the pod's own: the kubelet's io.kubernetes.*;
// containerd's io.cri-containerd.kind and oci_runtime_type (2.x); CRI-O's
// io.cri-o.*. (containerd also merges in the pause image's own labels,
// which the pod object does not have either; the usual pause images have
// none, and a name that then differs refuses the pod, naming the labels.)
func runtimeLabel(k string) bool {
	if k == "oci_runtime_type" {
		return true
	}
	for _, p := range []string{"io.kubernetes.", "io.cri-containerd.", "io.cri-o."} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// nameAnnotations are the annotation keys that choose a container's rule
// set: its policies, postures and mode (not visibility, which chooses
// telemetry), nri-armor's own for the pod and for the container, and
// KubeArmor's aliases.
func nameAnnotations(container string) []string {
	var keys []string
	for _, k := range []string{policy.AnnotationPolicies, policy.AnnotationPosture, policy.AnnotationMode} {
		keys = append(keys, k, k+".container."+container)
	}
	return append(keys, policy.KubeArmorPolicy, policy.KubeArmorFilePosture, policy.KubeArmorNetworkPosture, policy.KubeArmorCapabilitiesPosture)
}

// namePart is s as a part of a name: Kubernetes names (DNS labels) as they
// are; any other character as '_', at most 63 of them (the digest tells
// such names apart).
func namePart(s string) string {
	b := []byte(s)
	if len(b) > 63 {
		b = b[:63]
	}
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}
