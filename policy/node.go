package policy

import (
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

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

// ReadNodeDefaults reads the node's defaults from its nri-armor.yaml, as the
// daemon does; the file's other keys are the daemon's business. what names
// the file's origin in errors (a flag).
func ReadNodeDefaults(path, what string) (Defaults, error) {
	nd := DefaultNodeDefaults()
	data, err := os.ReadFile(path)
	if err != nil {
		return Defaults{}, fmt.Errorf("%s: %w", what, err)
	}
	if err := yaml.Unmarshal(data, &nd); err != nil {
		return Defaults{}, fmt.Errorf("%s %s: %v", what, path, err)
	}
	d, err := nd.Defaults()
	if err != nil {
		return d, fmt.Errorf("%s %s: %v", what, path, err)
	}
	return d, nil
}
