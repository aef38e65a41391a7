package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Pod annotations read by nri-armor. Each may be narrowed to one container
// by appending ".container.<name>" to the key.
const (
	AnnotationPrefix     = "nri-armor.dev/"
	AnnotationPolicies   = "nri-armor.dev/policies"
	AnnotationPosture    = "nri-armor.dev/posture"
	AnnotationVisibility = "nri-armor.dev/visibility"
	AnnotationMode       = "nri-armor.dev/mode"
	// AnnotationTolerateMissing ("true") lets a pod be created while
	// nri-armor is not connected, when the runtime requires nri-armor
	// (config/containerd-nri.toml): nri-armor's own pod needs it.
	AnnotationTolerateMissing = "nri-armor.dev/tolerate-missing"
	// AnnotationPolicySet is written by nri-armor (an OCI annotation on the
	// container), never read from pods.
	AnnotationPolicySet = "nri-armor.dev/policy-set"

	containerInfix = ".container."
)

// KubeArmor's own annotation keys, accepted as aliases.
const (
	KubeArmorPolicy              = "kubearmor-policy"
	KubeArmorVisibility          = "kubearmor-visibility"
	KubeArmorFilePosture         = "kubearmor-file-posture"
	KubeArmorNetworkPosture      = "kubearmor-network-posture"
	KubeArmorCapabilitiesPosture = "kubearmor-capabilities-posture"
)

// ContainerNameLabel narrows a selector to container names: "[a, b]" or "a".
const ContainerNameLabel = "kubearmor.io/container.name"

// Mode is how a container's rule set is enforced.
type Mode string

// Modes. In audit mode every Block (rules and postures) becomes Audit.
const (
	ModeEnforce  Mode = "enforce"
	ModeAudit    Mode = "audit"
	ModeDisabled Mode = "disabled"
)

// Class is a resource class of rules.
type Class string

// The rule classes, in the order they are shown.
const (
	ClassProcess      Class = "process"
	ClassFile         Class = "file"
	ClassNetwork      Class = "network"
	ClassCapabilities Class = "capabilities"
	ClassSyscalls     Class = "syscalls"
)

// Classes lists every class in display order.
var Classes = []Class{ClassProcess, ClassFile, ClassNetwork, ClassCapabilities, ClassSyscalls}

// Postures are the default actions of allow-list mode, per class that has
// one. Process has none of its own: it uses the file posture.
type Postures struct {
	File         Action `json:"file"`
	Network      Action `json:"network"`
	Capabilities Action `json:"capabilities"`
}

// Of returns the posture that applies to class c.
func (p Postures) Of(c Class) Action {
	switch c {
	case ClassProcess, ClassFile:
		return p.File
	case ClassNetwork:
		return p.Network
	case ClassCapabilities:
		return p.Capabilities
	}
	return ""
}

// Visibility says which classes the tracer reports as ContainerLog events.
type Visibility struct {
	Process      bool `json:"process"`
	File         bool `json:"file"`
	Network      bool `json:"network"`
	Capabilities bool `json:"capabilities"`
}

// Defaults are the node's settings that pods may override by annotation:
// strengthen always, weaken only in WeakenNamespaces (trust.go).
type Defaults struct {
	Postures   Postures   `json:"postures"`
	Mode       Mode       `json:"mode"`
	Visibility Visibility `json:"visibility"`
	// WeakenNamespaces are the namespaces whose pods' annotations may
	// weaken protection below these defaults; none by default.
	WeakenNamespaces []string `json:"weakenNamespaces,omitempty"`
}

// DefaultDefaults is what a node uses when its configuration says nothing:
// audit postures (as KubeArmor), enforce mode, process/file/network visibility.
func DefaultDefaults() Defaults {
	return Defaults{
		Postures:   Postures{File: Audit, Network: Audit, Capabilities: Audit},
		Mode:       ModeEnforce,
		Visibility: Visibility{Process: true, File: true, Network: true},
	}
}

// AnnotationError names the annotation and the value that could not be used.
type AnnotationError struct {
	Key, Value, Reason string
}

func (e *AnnotationError) Error() string {
	return fmt.Sprintf("annotation %s=%q: %s", e.Key, e.Value, e.Reason)
}

// PodSettings is what a pod's annotations ask for one of its containers.
type PodSettings struct {
	// PolicyNames are named by nri-armor.dev/policies (pod and container keys), sorted.
	PolicyNames []string
	Postures    Postures
	Mode        Mode
	Visibility  Visibility
	// Ignored are the annotations that would have weakened protection in
	// a namespace that may not (set by Catalog.Resolve).
	Ignored []IgnoredAnnotation
}

// lookup returns the container-level value of key if set, else the pod-level one.
func lookup(ann map[string]string, key, container string) (k, v string, ok bool) {
	if container != "" {
		ck := key + containerInfix + container
		if v, ok := ann[ck]; ok {
			return ck, v, true
		}
	}
	v, ok = ann[key]
	return key, v, ok
}

func parsePostureAction(key, value string) (Action, error) {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "audit":
		return Audit, nil
	case "block":
		return Block, nil
	}
	return "", &AnnotationError{Key: key, Value: value, Reason: "posture must be audit or block"}
}

func parseVisibility(key, value string) (Visibility, error) {
	var v Visibility
	value = strings.TrimSpace(value)
	if strings.EqualFold(value, "none") || value == "" {
		return v, nil
	}
	for _, item := range strings.Split(value, ",") {
		switch strings.ToLower(strings.TrimSpace(item)) {
		case "process":
			v.Process = true
		case "file":
			v.File = true
		case "network":
			v.Network = true
		case "capabilities":
			v.Capabilities = true
		default:
			return v, &AnnotationError{Key: key, Value: value, Reason: fmt.Sprintf("unknown visibility %q (use process, file, network, capabilities or none)", strings.TrimSpace(item))}
		}
	}
	return v, nil
}

// parsePosture applies "file=block,network=audit" to p.
func parsePosture(k, v string, p *Postures) error {
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		class, val, found := strings.Cut(item, "=")
		if !found {
			return &AnnotationError{Key: k, Value: v, Reason: fmt.Sprintf("%q is not class=action", item)}
		}
		a, err := parsePostureAction(k, val)
		if err != nil {
			return &AnnotationError{Key: k, Value: v, Reason: fmt.Sprintf("%s: posture must be audit or block, got %q", strings.TrimSpace(class), strings.TrimSpace(val))}
		}
		switch Class(strings.ToLower(strings.TrimSpace(class))) {
		case ClassFile:
			p.File = a
		case ClassNetwork:
			p.Network = a
		case ClassCapabilities:
			p.Capabilities = a
		default:
			return &AnnotationError{Key: k, Value: v, Reason: fmt.Sprintf("unknown class %q (use file, network or capabilities; process follows file)", strings.TrimSpace(class))}
		}
	}
	return nil
}

// knownKey says whether k (without any .container.<name> suffix) is one of ours.
func knownKey(k string) bool {
	if i := strings.Index(k, containerInfix); i >= 0 {
		if k[i+len(containerInfix):] == "" {
			return false
		}
		k = k[:i]
	}
	switch k {
	case AnnotationPolicies, AnnotationPosture, AnnotationVisibility, AnnotationMode, AnnotationTolerateMissing:
		return true
	}
	return false
}

// ParseAnnotations reads a pod's nri-armor (and KubeArmor alias) annotations
// for one container, on top of the node defaults. Any nri-armor.dev/ key
// that is not ours, and any value that does not parse, is an error naming the
// key and the value: a typo must never start a pod with less protection.
func ParseAnnotations(ann map[string]string, container string, defaults Defaults) (*PodSettings, error) {
	s := &PodSettings{Postures: defaults.Postures, Mode: defaults.Mode, Visibility: defaults.Visibility}
	keys := make([]string, 0, len(ann))
	for k := range ann {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, AnnotationPrefix) && !knownKey(k) {
			return nil, &AnnotationError{Key: k, Value: ann[k], Reason: "unknown nri-armor annotation (known: policies, posture, visibility, mode, each optionally .container.<name>, and tolerate-missing)"}
		}
	}
	if v, ok := ann[AnnotationTolerateMissing]; ok {
		if _, err := strconv.ParseBool(v); err != nil {
			return nil, &AnnotationError{Key: AnnotationTolerateMissing, Value: v, Reason: "must be true or false"}
		}
	}

	// KubeArmor's aliases first, so that nri-armor's own keys win.
	if v, ok := ann[KubeArmorPolicy]; ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "enabled":
			s.Mode = ModeEnforce
		case "audited":
			s.Mode = ModeAudit
		case "disabled":
			s.Mode = ModeDisabled
		default:
			return nil, &AnnotationError{Key: KubeArmorPolicy, Value: v, Reason: "must be enabled, audited or disabled"}
		}
	}
	for _, alias := range []struct {
		key string
		dst *Action
	}{
		{KubeArmorFilePosture, &s.Postures.File},
		{KubeArmorNetworkPosture, &s.Postures.Network},
		{KubeArmorCapabilitiesPosture, &s.Postures.Capabilities},
	} {
		if v, ok := ann[alias.key]; ok {
			a, err := parsePostureAction(alias.key, v)
			if err != nil {
				return nil, err
			}
			*alias.dst = a
		}
	}
	if v, ok := ann[KubeArmorVisibility]; ok {
		vis, err := parseVisibility(KubeArmorVisibility, v)
		if err != nil {
			return nil, err
		}
		s.Visibility = vis
	}

	if k, v, ok := lookup(ann, AnnotationMode, container); ok {
		switch m := Mode(strings.ToLower(strings.TrimSpace(v))); m {
		case ModeEnforce, ModeAudit, ModeDisabled:
			s.Mode = m
		default:
			return nil, &AnnotationError{Key: k, Value: v, Reason: "mode must be enforce, audit or disabled"}
		}
	}
	// Posture: the pod-level key, then the container-level key on top, class
	// by class: a container key overrides only the classes it names.
	for _, k := range []string{AnnotationPosture, AnnotationPosture + containerInfix + container} {
		v, ok := ann[k]
		if !ok || (k != AnnotationPosture && container == "") {
			continue
		}
		if err := parsePosture(k, v, &s.Postures); err != nil {
			return nil, err
		}
	}
	if k, v, ok := lookup(ann, AnnotationVisibility, container); ok {
		vis, err := parseVisibility(k, v)
		if err != nil {
			return nil, err
		}
		s.Visibility = vis
	}

	// Policies: the pod-level list applies to every container; a container
	// key adds to it for that container.
	names := map[string]bool{}
	for _, k := range []string{AnnotationPolicies, AnnotationPolicies + containerInfix + container} {
		v, ok := ann[k]
		if !ok || (k != AnnotationPolicies && container == "") {
			continue
		}
		for _, n := range strings.Split(v, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			names[n] = true
		}
	}
	for n := range names {
		s.PolicyNames = append(s.PolicyNames, n)
	}
	sort.Strings(s.PolicyNames)
	return s, nil
}
