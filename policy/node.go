package policy

import "fmt"

// NodeDefaults is the part of a node's configuration (nri-armor.yaml) that
// says what pods get when their annotations say nothing, and whose
// annotations may weaken it. The daemon and armorctl (check, explain:
// --node-config) read it alike, so that their verdicts are the node's.
type NodeDefaults struct {
	// DefaultPosture, DefaultMode and DefaultVisibility use the syntax of
	// the annotations: "file=audit,network=audit,capabilities=audit",
	// "enforce", "process,file,network".
	DefaultPosture    string `yaml:"defaultPosture"`
	DefaultMode       string `yaml:"defaultMode"`
	DefaultVisibility string `yaml:"defaultVisibility"`
	// WeakenNamespaces are the namespaces whose pods may weaken these by
	// annotation (trust.go); none by default.
	WeakenNamespaces []string `yaml:"weakenNamespaces"`
}

// DefaultNodeDefaults is DefaultDefaults in the configuration's syntax.
func DefaultNodeDefaults() NodeDefaults {
	return NodeDefaults{
		DefaultPosture:    "file=audit,network=audit,capabilities=audit",
		DefaultMode:       string(ModeEnforce),
		DefaultVisibility: "process,file,network",
	}
}

// Defaults parses n; an error names the configuration key.
func (n NodeDefaults) Defaults() (Defaults, error) {
	d := DefaultDefaults()
	s, err := ParseAnnotations(map[string]string{
		AnnotationPosture:    n.DefaultPosture,
		AnnotationMode:       n.DefaultMode,
		AnnotationVisibility: n.DefaultVisibility,
	}, "", d)
	if err != nil {
		return d, fmt.Errorf("defaultPosture/defaultMode/defaultVisibility: %v", err)
	}
	d.Postures, d.Mode, d.Visibility = s.Postures, s.Mode, s.Visibility
	d.WeakenNamespaces = append([]string(nil), n.WeakenNamespaces...)
	return d, nil
}
