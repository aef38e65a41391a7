package policy

import (
	"strings"
	"testing"
)

const trustPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-apt, namespace: %NS%}
spec:
  selector: {matchLabels: {app: web}}
  process:
    matchPaths:
    - path: /usr/bin/apt-get
  action: Block
`

// TestWeakeningNotHonoured: in a namespace the node does not trust, every
// annotation that would weaken protection below the node's defaults is
// undone and reported, strengthening ones are honoured, and the verdict
// stays the node's; in a trusted namespace the same annotations are
// honoured.
func TestWeakeningNotHonoured(t *testing.T) {
	node := DefaultDefaults()
	node.Postures.Network = Block
	node.WeakenNamespaces = []string{"trusted"}
	apt := Event{Class: ClassProcess, Path: "/usr/bin/apt-get"}
	for _, c := range []struct {
		name    string
		ann     map[string]string
		ignored string // the key reported, "" when none
		check   func(t *testing.T, s *PodSettings)
	}{
		{"mode disabled", map[string]string{AnnotationMode: "disabled"}, AnnotationMode,
			func(t *testing.T, s *PodSettings) { want(t, s.Mode, ModeEnforce) }},
		{"mode audit, container key", map[string]string{AnnotationMode + ".container.app": "audit"}, AnnotationMode + ".container.app",
			func(t *testing.T, s *PodSettings) { want(t, s.Mode, ModeEnforce) }},
		{"kubearmor-policy disabled", map[string]string{KubeArmorPolicy: "disabled"}, KubeArmorPolicy,
			func(t *testing.T, s *PodSettings) { want(t, s.Mode, ModeEnforce) }},
		{"kubearmor-policy audited", map[string]string{KubeArmorPolicy: "audited"}, KubeArmorPolicy,
			func(t *testing.T, s *PodSettings) { want(t, s.Mode, ModeEnforce) }},
		{"network posture audit below the node's block", map[string]string{AnnotationPosture: "network=audit,file=block"}, AnnotationPosture,
			func(t *testing.T, s *PodSettings) {
				want(t, s.Postures.Network, Block)
				want(t, s.Postures.File, Block) // stricter: honoured
			}},
		{"kubearmor network posture audit", map[string]string{KubeArmorNetworkPosture: "audit"}, KubeArmorNetworkPosture,
			func(t *testing.T, s *PodSettings) { want(t, s.Postures.Network, Block) }},
		{"visibility none", map[string]string{AnnotationVisibility: "none"}, AnnotationVisibility,
			func(t *testing.T, s *PodSettings) { want(t, s.Visibility, node.Visibility) }},
		{"kubearmor-visibility process only", map[string]string{KubeArmorVisibility: "process,capabilities"}, KubeArmorVisibility,
			func(t *testing.T, s *PodSettings) {
				v := node.Visibility
				v.Capabilities = true // more: honoured
				want(t, s.Visibility, v)
			}},
		{"tolerate-missing", map[string]string{AnnotationTolerateMissing: "true"}, AnnotationTolerateMissing, nil},
		{"strengthening only", map[string]string{AnnotationPosture: "file=block", AnnotationVisibility: "process,file,network,capabilities"}, "",
			func(t *testing.T, s *PodSettings) { want(t, s.Postures.File, Block) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, ns := range []string{"shop", "trusted"} {
				cat, err := NewCatalog(Policies([]*FileResult{LoadBytes("p.yaml", []byte(strings.ReplaceAll(trustPolicy, "%NS%", ns)))}))
				if err != nil {
					t.Fatal(err)
				}
				pod := Pod{Namespace: ns, Name: "web-0", Labels: map[string]string{"app": "web"}, Annotations: c.ann}
				target, err := cat.Resolve(pod, "app", node)
				if err != nil {
					t.Fatal(err)
				}
				s := target.Settings
				if ns == "trusted" {
					if len(s.Ignored) != 0 {
						t.Errorf("trusted namespace: ignored %v", s.Ignored)
					}
					continue
				}
				switch {
				case c.ignored == "" && len(s.Ignored) != 0:
					t.Errorf("ignored %v, want nothing", s.Ignored)
				case c.ignored != "" && (len(s.Ignored) != 1 || s.Ignored[0].Key != c.ignored):
					t.Errorf("ignored %v, want one for %s", s.Ignored, c.ignored)
				case c.ignored != "" && !strings.Contains(s.Ignored[0].String(), `namespace "shop" may not weaken`):
					t.Errorf("message %q does not say why", s.Ignored[0])
				}
				if c.check != nil {
					c.check(t, s)
				}
				rs := Compile(target.Policies, s.Options())
				if d := Decide(rs, apt); d.Action != Block {
					t.Errorf("apt-get: %v, want Block whatever the annotations", d.Action)
				}
			}
		})
	}
}

func want[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}
