package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Who may weaken protection. The cluster admin's policies and the node's
// defaults are the law; pod annotations are written by the people the
// policies are for. So an annotation that would weaken what the node gives
// a pod — a mode below the node's (audit, disabled; KubeArmor's
// kubearmor-policy: audited|disabled), a posture below the node's (audit
// where the node blocks), less visibility than the node's — is honoured
// only in the namespaces the node's configuration names
// (Defaults.WeakenNamespaces). Elsewhere the container gets the node's
// setting for that field, and the annotation is listed in
// PodSettings.Ignored, which the daemon logs, counts and publishes, and
// armorctl explain shows. Annotations that only strengthen (a stricter
// mode or posture, more visibility, more policies) are always honoured.

// IgnoredAnnotation is a pod annotation that would have weakened protection
// in a namespace the node does not trust to do so.
type IgnoredAnnotation struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

func (i IgnoredAnnotation) String() string {
	return fmt.Sprintf("annotation %s=%q: %s", i.Key, i.Value, i.Reason)
}

// MayWeaken says whether pods of namespace ns may weaken protection by
// annotation.
func (d Defaults) MayWeaken(ns string) bool {
	return slices.Contains(d.WeakenNamespaces, ns)
}

// modeStrength orders modes: a higher one protects more.
func modeStrength(m Mode) int {
	switch m {
	case ModeEnforce:
		return 2
	case ModeAudit:
		return 1
	}
	return 0
}

// actionStrength orders postures: Block protects more than Audit.
func actionStrength(a Action) int {
	if a == Block {
		return 1
	}
	return 0
}

// keysSet returns the annotation keys among keys that ann sets, with their
// values, for the message; "" when none is set.
func keysSet(ann map[string]string, keys ...string) (string, string) {
	var ks, vs []string
	for _, k := range keys {
		if v, ok := ann[k]; ok && k != "" {
			ks = append(ks, k)
			vs = append(vs, v)
		}
	}
	return strings.Join(ks, ", "), strings.Join(vs, ", ")
}

// restrict undoes, in s, what the annotations weaken below the node's
// defaults when namespace ns may not, and records each in s.Ignored.
func (s *PodSettings) restrict(ann map[string]string, container, ns string, d Defaults) {
	if d.MayWeaken(ns) {
		return
	}
	ck := func(key string) string {
		if container == "" {
			return ""
		}
		return key + containerInfix + container
	}
	ignore := func(reason string, keys ...string) {
		k, v := keysSet(ann, keys...)
		if k == "" {
			return
		}
		s.Ignored = append(s.Ignored, IgnoredAnnotation{Key: k, Value: v,
			Reason: fmt.Sprintf("%s, and namespace %q may not weaken protection (the node's weakenNamespaces)", reason, ns)})
	}
	if modeStrength(s.Mode) < modeStrength(d.Mode) {
		ignore(fmt.Sprintf("not honoured: mode %s is weaker than the node's %s", s.Mode, d.Mode), KubeArmorPolicy, AnnotationMode, ck(AnnotationMode))
		s.Mode = d.Mode
	}
	for _, c := range []struct {
		class     Class
		got, node *Action
		alias     string
	}{
		{ClassFile, &s.Postures.File, &d.Postures.File, KubeArmorFilePosture},
		{ClassNetwork, &s.Postures.Network, &d.Postures.Network, KubeArmorNetworkPosture},
		{ClassCapabilities, &s.Postures.Capabilities, &d.Postures.Capabilities, KubeArmorCapabilitiesPosture},
	} {
		if actionStrength(*c.got) < actionStrength(*c.node) {
			ignore(fmt.Sprintf("not honoured: %s posture %s is weaker than the node's %s", c.class, *c.got, *c.node), c.alias, AnnotationPosture, ck(AnnotationPosture))
			*c.got = *c.node
		}
	}
	v, nv := s.Visibility, d.Visibility
	if (nv.Process && !v.Process) || (nv.File && !v.File) || (nv.Network && !v.Network) || (nv.Capabilities && !v.Capabilities) {
		ignore(fmt.Sprintf("not honoured: visibility %s drops classes of the node's %s", v, nv), KubeArmorVisibility, AnnotationVisibility, ck(AnnotationVisibility))
		s.Visibility = Visibility{
			Process: v.Process || nv.Process, File: v.File || nv.File,
			Network: v.Network || nv.Network, Capabilities: v.Capabilities || nv.Capabilities,
		}
	}
	if on, _ := strconv.ParseBool(ann[AnnotationTolerateMissing]); on {
		// nri-armor cannot take this one back: the runtime reads it, when
		// nri-armor is not there. It is reported all the same.
		ignore("the runtime alone reads it, to create the pod's containers while nri-armor is down (docs/security.md)", AnnotationTolerateMissing)
	}
}
