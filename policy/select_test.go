package policy

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Policies for the selection tests. Each has a file rule so that it loads
// without the "no rules" warning mattering.
const utRule0 = "  file:\n    matchPaths:\n    - path: /x\n"

func utPolicyDoc(kind Kind, name, namespace, specHead string) string {
	meta := "metadata:\n  name: " + name + "\n"
	if namespace != "" {
		meta += "  namespace: " + namespace + "\n"
	}
	return "apiVersion: security.kubearmor.com/v1\nkind: " + string(kind) + "\n" + meta + "spec:\n" + specHead + utRule0
}

var selectYAML = utDocs(
	// ksp, namespace default
	utPolicyDoc(KindPolicy, "by-label", "", "  selector:\n    matchLabels:\n      app: web\n"),
	utPolicyDoc(KindPolicy, "by-two-labels", "default", "  selector:\n    matchLabels:\n      app: web\n      tier: front\n"),
	utPolicyDoc(KindPolicy, "expr-in", "default", "  selector:\n    matchExpressions:\n    - key: label\n      operator: In\n      values: [app=api, app=web]\n"),
	utPolicyDoc(KindPolicy, "expr-notin", "default", "  selector:\n    matchExpressions:\n    - key: label\n      operator: NotIn\n      values: [env=prod]\n"),
	utPolicyDoc(KindPolicy, "labels-and-expr", "default", "  selector:\n    matchLabels:\n      app: web\n    matchExpressions:\n    - key: label\n      operator: NotIn\n      values: [env=prod, env=staging]\n"),
	utPolicyDoc(KindPolicy, "containers-list", "default", "  selector:\n    matchLabels:\n      app: web\n      kubearmor.io/container.name: \"[web, sidecar]\"\n"),
	utPolicyDoc(KindPolicy, "container-one", "default", "  selector:\n    matchLabels:\n      kubearmor.io/container.name: init\n"),
	utPolicyDoc(KindPolicy, "empty-selector", "default", "  selector: {}\n"),
	utPolicyDoc(KindPolicy, "no-selector", "default", ""),
	// ksp in another namespace
	utPolicyDoc(KindPolicy, "prod-web", "prod", "  selector:\n    matchLabels:\n      app: web\n"),
	utPolicyDoc(KindPolicy, "prod-only", "prod", ""),
	// csp
	utPolicyDoc(KindClusterPolicy, "csp-all", "", ""),
	utPolicyDoc(KindClusterPolicy, "csp-ns-in", "", "  selector:\n    matchExpressions:\n    - key: namespace\n      operator: In\n      values: [prod, staging]\n"),
	utPolicyDoc(KindClusterPolicy, "csp-ns-notin", "", "  selector:\n    matchExpressions:\n    - key: namespace\n      operator: NotIn\n      values: [kube-system, default]\n"),
	utPolicyDoc(KindClusterPolicy, "csp-ns-in-and-notin", "", "  selector:\n    matchExpressions:\n    - key: namespace\n      operator: In\n      values: [prod, default]\n    - key: namespace\n      operator: NotIn\n      values: [default]\n"),
	utPolicyDoc(KindClusterPolicy, "csp-label", "", "  selector:\n    matchExpressions:\n    - key: label\n      operator: In\n      values: [app=db]\n    - key: namespace\n      operator: NotIn\n      values: [kube-system]\n"),
	// hsp
	"apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata:\n  name: host-n1\nspec:\n  nodeSelector:\n    matchLabels:\n      kubernetes.io/hostname: n1\n"+utRule0,
	"apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata:\n  name: host-workers\nspec:\n  nodeSelector:\n    matchLabels:\n      role: worker\n      zone: a\n"+utRule0,
	"apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata:\n  name: host-any\nspec:\n"+utRule0,
)

func utCatalog(t *testing.T) *Catalog {
	t.Helper()
	cat, err := NewCatalog(utLoad(t, "select.yaml", selectYAML))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func utNames(ps []*Policy) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Metadata.Name)
	}
	return out
}

func TestResolveSelectors(t *testing.T) {
	cat := utCatalog(t)
	cases := []struct {
		name      string
		pod       Pod
		container string
		want      []string // metadata names, in Ref order (csp before ksp)
	}{
		{"web pod, web container", Pod{Namespace: "default", Labels: map[string]string{"app": "web"}}, "web",
			[]string{"csp-all", "by-label", "containers-list", "empty-selector", "expr-in", "expr-notin", "labels-and-expr"}},
		{"web pod, sidecar container", Pod{Namespace: "default", Labels: map[string]string{"app": "web"}}, "sidecar",
			[]string{"csp-all", "by-label", "containers-list", "empty-selector", "expr-in", "expr-notin", "labels-and-expr"}},
		{"web pod, init container", Pod{Namespace: "default", Labels: map[string]string{"app": "web"}}, "init",
			[]string{"csp-all", "by-label", "container-one", "empty-selector", "expr-in", "expr-notin", "labels-and-expr"}},
		{"web pod, other container", Pod{Namespace: "default", Labels: map[string]string{"app": "web"}}, "other",
			[]string{"csp-all", "by-label", "empty-selector", "expr-in", "expr-notin", "labels-and-expr"}},
		{"web front pod", Pod{Namespace: "default", Labels: map[string]string{"app": "web", "tier": "front"}}, "other",
			[]string{"csp-all", "by-label", "by-two-labels", "empty-selector", "expr-in", "expr-notin", "labels-and-expr"}},
		{"web pod in prod env", Pod{Namespace: "default", Labels: map[string]string{"app": "web", "env": "prod"}}, "other",
			[]string{"csp-all", "by-label", "empty-selector", "expr-in"}},
		{"web pod in staging env", Pod{Namespace: "default", Labels: map[string]string{"app": "web", "env": "staging"}}, "other",
			[]string{"csp-all", "by-label", "empty-selector", "expr-in", "expr-notin"}},
		{"api pod", Pod{Namespace: "default", Labels: map[string]string{"app": "api"}}, "other",
			[]string{"csp-all", "empty-selector", "expr-in", "expr-notin"}},
		{"label value must match exactly", Pod{Namespace: "default", Labels: map[string]string{"app": "webx"}}, "other",
			[]string{"csp-all", "empty-selector", "expr-notin"}},
		{"pod without labels", Pod{Namespace: "default"}, "init",
			[]string{"csp-all", "container-one", "empty-selector", "expr-notin"}},
		{"prod web pod", Pod{Namespace: "prod", Labels: map[string]string{"app": "web"}}, "web",
			[]string{"csp-all", "csp-ns-in", "csp-ns-in-and-notin", "csp-ns-notin", "prod-web"}},
		{"staging pod", Pod{Namespace: "staging"}, "c",
			[]string{"csp-all", "csp-ns-in", "csp-ns-notin"}},
		{"kube-system db pod", Pod{Namespace: "kube-system", Labels: map[string]string{"app": "db"}}, "c",
			[]string{"csp-all"}},
		{"other namespace db pod", Pod{Namespace: "team-a", Labels: map[string]string{"app": "db"}}, "c",
			[]string{"csp-all", "csp-label", "csp-ns-notin"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target, err := cat.Resolve(c.pod, c.container, DefaultDefaults())
			if err != nil {
				t.Fatal(err)
			}
			if got := utNames(target.Policies); !reflect.DeepEqual(got, c.want) {
				t.Errorf("policies %q, want %q", got, c.want)
			}
			// Selects agrees with Resolve (no annotations here).
			for _, p := range cat.Policies() {
				in := false
				for _, q := range target.Policies {
					in = in || q == p
				}
				if p.Selects(c.pod, c.container) != in {
					t.Errorf("%s: Selects = %v, but Resolve chose it: %v", p.Ref(), !in, in)
				}
			}
		})
	}
}

func TestContainerNames(t *testing.T) {
	cases := map[string][]string{
		"[a, b]":     {"a", "b"},
		"[a,b,c]":    {"a", "b", "c"},
		"a":          {"a"},
		" [ a ] ":    {"a"},
		"a, b":       {"a", "b"},
		"[]":         nil,
		"[web, , x]": {"web", "x"},
	}
	for in, want := range cases {
		if got := containerNames(in); !reflect.DeepEqual(got, want) {
			t.Errorf("containerNames(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolveByAnnotation(t *testing.T) {
	cat := utCatalog(t)
	base := map[string]string{"app": "api"} // selected by csp-all, empty-selector, expr-in, expr-notin
	selected := []string{"csp-all", "empty-selector", "expr-in", "expr-notin"}
	cases := []struct {
		name      string
		namespace string
		ann       map[string]string
		container string
		want      []string
	}{
		{"ksp without selector named", "default", utAnn(AnnotationPolicies, "no-selector"), "app",
			append([]string{"csp-all"}, "empty-selector", "expr-in", "expr-notin", "no-selector")},
		{"ksp without selector not named", "default", nil, "app", selected},
		{"several names, spaces, duplicates", "default", utAnn(AnnotationPolicies, " no-selector , by-label,no-selector,"), "app",
			[]string{"csp-all", "by-label", "empty-selector", "expr-in", "expr-notin", "no-selector"}},
		{"container key adds for that container", "default", utAnn(AnnotationPolicies+".container.app", "no-selector"), "app",
			[]string{"csp-all", "empty-selector", "expr-in", "expr-notin", "no-selector"}},
		{"container key of another container", "default", utAnn(AnnotationPolicies+".container.other", "no-selector"), "app", selected},
		{"pod key and container key add up", "default", utAnn(AnnotationPolicies, "by-two-labels", AnnotationPolicies+".container.app", "no-selector"), "app",
			[]string{"csp-all", "by-two-labels", "empty-selector", "expr-in", "expr-notin", "no-selector"}},
		{"csp named although its selector excludes the namespace", "default", utAnn(AnnotationPolicies, "csp-ns-in"), "app",
			[]string{"csp-all", "csp-ns-in", "empty-selector", "expr-in", "expr-notin"}},
		{"ksp narrowed to other containers, named", "default", utAnn(AnnotationPolicies, "container-one"), "app",
			[]string{"csp-all", "container-one", "empty-selector", "expr-in", "expr-notin"}},
		{"ksp of the pod's namespace", "prod", utAnn(AnnotationPolicies, "prod-only"), "app",
			[]string{"csp-all", "csp-ns-in", "csp-ns-in-and-notin", "csp-ns-notin", "prod-only"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := Pod{Namespace: c.namespace, Labels: base, Annotations: c.ann}
			target, err := cat.Resolve(pod, c.container, DefaultDefaults())
			if err != nil {
				t.Fatal(err)
			}
			if got := utNames(target.Policies); !reflect.DeepEqual(got, c.want) {
				t.Errorf("policies %q, want %q", got, c.want)
			}
		})
	}
}

func TestResolveHost(t *testing.T) {
	cat := utCatalog(t)
	cases := []struct {
		labels map[string]string
		want   []string
	}{
		{map[string]string{"kubernetes.io/hostname": "n1"}, []string{"host-any", "host-n1"}},
		{map[string]string{"kubernetes.io/hostname": "n2", "role": "worker", "zone": "a"}, []string{"host-any", "host-workers"}},
		{map[string]string{"kubernetes.io/hostname": "n1", "role": "worker", "zone": "a", "x": "y"}, []string{"host-any", "host-n1", "host-workers"}},
		{map[string]string{"role": "worker", "zone": "b"}, []string{"host-any"}},
		{nil, []string{"host-any"}},
	}
	for _, c := range cases {
		got := utNames(cat.ResolveHost(c.labels))
		sort.Strings(got)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ResolveHost(%v) = %q, want %q", c.labels, got, c.want)
		}
	}
	// Host policies never apply to pods, even with the node's labels.
	target, err := cat.Resolve(Pod{Namespace: "default", Labels: map[string]string{"kubernetes.io/hostname": "n1", "role": "worker", "zone": "a"}}, "c", DefaultDefaults())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range target.Policies {
		if p.Kind == KindHostPolicy {
			t.Errorf("host policy %s selected for a pod", p.Ref())
		}
	}
	// Naming a host policy in the annotation is an error: only ksp and csp names count.
	_, err = cat.Resolve(Pod{Namespace: "default", Annotations: utAnn(AnnotationPolicies, "host-any")}, "c", DefaultDefaults())
	var ae *AnnotationError
	if !errors.As(err, &ae) {
		t.Errorf("naming a host policy: err %v, want an AnnotationError", err)
	}
}

func TestNewCatalogDuplicate(t *testing.T) {
	a := utLoad(t, "a.yaml", utKSP("same", "file:\n  matchPaths:\n  - path: /a\n"))
	b := utLoad(t, "b.yaml", "# comment\n"+utKSP("same", "file:\n  matchPaths:\n  - path: /b\n"))
	_, err := NewCatalog(append(a, b...))
	if err == nil {
		t.Fatal("two policies with the same kind, namespace and name were accepted")
	}
	if want := "b.yaml:2: KubeArmorPolicy/default/same is already defined at a.yaml:1"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// The same name in another namespace, or as another kind, is fine.
	c := utLoad(t, "c.yaml", strings.Replace(utKSP("same", "file:\n  matchPaths:\n  - path: /b\n"), "namespace: default", "namespace: prod", 1))
	d := utLoad(t, "d.yaml", utPolicyDoc(KindClusterPolicy, "same", "", ""))
	cat, err := NewCatalog(append(append(a, c...), d...))
	if err != nil {
		t.Fatal(err)
	}
	if cat.Len() != 3 {
		t.Errorf("Len = %d, want 3", cat.Len())
	}
}

// ---------------------------------------------------------------------------
// Annotations
// ---------------------------------------------------------------------------

func TestParseAnnotations(t *testing.T) {
	def := DefaultDefaults()
	all := Visibility{Process: true, File: true, Network: true, Capabilities: true}
	cases := []struct {
		name      string
		ann       map[string]string
		container string
		postures  Postures
		mode      Mode
		vis       Visibility
		policies  []string
	}{
		{"none: node defaults", nil, "c", def.Postures, ModeEnforce, def.Visibility, nil},
		{"unrelated annotations ignored", utAnn("foo", "bar", "nri-armor.devx/mode", "weird", "kubearmor-other", "x"), "c", def.Postures, ModeEnforce, def.Visibility, nil},
		{"posture, all three", utAnn(AnnotationPosture, "file=block,network=audit,capabilities=block"), "c", Postures{Block, Audit, Block}, ModeEnforce, def.Visibility, nil},
		{"posture, one class", utAnn(AnnotationPosture, "network=block"), "c", Postures{Audit, Block, Audit}, ModeEnforce, def.Visibility, nil},
		{"posture, spaces and case", utAnn(AnnotationPosture, " File = BLOCK , Capabilities=Block ,"), "c", Postures{Block, Audit, Block}, ModeEnforce, def.Visibility, nil},
		{"posture, container key overrides only its classes", utAnn(AnnotationPosture, "file=block,network=audit", AnnotationPosture+".container.c", "network=block"), "c", Postures{Block, Block, Audit}, ModeEnforce, def.Visibility, nil},
		{"posture, other container's key", utAnn(AnnotationPosture, "file=block", AnnotationPosture+".container.d", "network=block"), "c", Postures{Block, Audit, Audit}, ModeEnforce, def.Visibility, nil},
		{"kubearmor posture aliases", utAnn(KubeArmorFilePosture, "block", KubeArmorNetworkPosture, "Block", KubeArmorCapabilitiesPosture, "audit"), "c", Postures{Block, Block, Audit}, ModeEnforce, def.Visibility, nil},
		{"nri-armor posture wins over alias", utAnn(KubeArmorFilePosture, "block", AnnotationPosture, "file=audit"), "c", Postures{Audit, Audit, Audit}, ModeEnforce, def.Visibility, nil},
		{"mode audit", utAnn(AnnotationMode, "audit"), "c", def.Postures, ModeAudit, def.Visibility, nil},
		{"mode disabled, any case", utAnn(AnnotationMode, "DISABLED"), "c", def.Postures, ModeDisabled, def.Visibility, nil},
		{"mode container key wins", utAnn(AnnotationMode, "audit", AnnotationMode+".container.c", "enforce"), "c", def.Postures, ModeEnforce, def.Visibility, nil},
		{"kubearmor-policy enabled", utAnn(KubeArmorPolicy, "enabled"), "c", def.Postures, ModeEnforce, def.Visibility, nil},
		{"kubearmor-policy audited", utAnn(KubeArmorPolicy, "audited"), "c", def.Postures, ModeAudit, def.Visibility, nil},
		{"kubearmor-policy disabled", utAnn(KubeArmorPolicy, "Disabled"), "c", def.Postures, ModeDisabled, def.Visibility, nil},
		{"nri-armor mode wins over kubearmor-policy", utAnn(KubeArmorPolicy, "disabled", AnnotationMode, "audit"), "c", def.Postures, ModeAudit, def.Visibility, nil},
		{"visibility list", utAnn(AnnotationVisibility, "process, Capabilities"), "c", def.Postures, ModeEnforce, Visibility{Process: true, Capabilities: true}, nil},
		{"visibility none", utAnn(AnnotationVisibility, "none"), "c", def.Postures, ModeEnforce, Visibility{}, nil},
		{"visibility empty", utAnn(AnnotationVisibility, ""), "c", def.Postures, ModeEnforce, Visibility{}, nil},
		{"visibility all", utAnn(AnnotationVisibility, "process,file,network,capabilities"), "c", def.Postures, ModeEnforce, all, nil},
		{"kubearmor-visibility", utAnn(KubeArmorVisibility, "network"), "c", def.Postures, ModeEnforce, Visibility{Network: true}, nil},
		{"nri-armor visibility wins over alias", utAnn(KubeArmorVisibility, "network", AnnotationVisibility, "file"), "c", def.Postures, ModeEnforce, Visibility{File: true}, nil},
		{"visibility container key", utAnn(AnnotationVisibility, "none", AnnotationVisibility+".container.c", "process"), "c", def.Postures, ModeEnforce, Visibility{Process: true}, nil},
		{"policies pod and container, sorted, deduplicated", utAnn(AnnotationPolicies, "b, a", AnnotationPolicies+".container.c", "c,a", AnnotationPolicies+".container.d", "d"), "c", def.Postures, ModeEnforce, def.Visibility, []string{"a", "b", "c"}},
		{"policies without container", utAnn(AnnotationPolicies, "b", AnnotationPolicies+".container.c", "c"), "", def.Postures, ModeEnforce, def.Visibility, []string{"b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseAnnotations(c.ann, c.container, def)
			if err != nil {
				t.Fatal(err)
			}
			if s.Postures != c.postures || s.Mode != c.mode || s.Visibility != c.vis || !reflect.DeepEqual(s.PolicyNames, c.policies) {
				t.Errorf("got %+v, want postures %+v mode %s visibility %+v policies %q", *s, c.postures, c.mode, c.vis, c.policies)
			}
			if o := s.Options(); o.Postures != c.postures || o.Mode != c.mode {
				t.Errorf("Options() = %+v", o)
			}
		})
	}
	// Node defaults other than KubeArmor's are the base.
	nodeDef := Defaults{Postures: Postures{Block, Block, Block}, Mode: ModeAudit, Visibility: Visibility{}}
	s, err := ParseAnnotations(utAnn(AnnotationPosture, "network=audit"), "c", nodeDef)
	if err != nil {
		t.Fatal(err)
	}
	if s.Postures != (Postures{Block, Audit, Block}) || s.Mode != ModeAudit || s.Visibility != (Visibility{}) {
		t.Errorf("on node defaults %+v: %+v", nodeDef, *s)
	}
	if p := (Postures{File: Block, Network: Audit, Capabilities: Block}); p.Of(ClassProcess) != Block || p.Of(ClassNetwork) != Audit || p.Of(ClassSyscalls) != "" {
		t.Error("Postures.Of: process must follow file, syscalls have none")
	}
}

func TestAnnotationErrors(t *testing.T) {
	cases := []struct {
		name      string
		ann       map[string]string
		container string
		key       string
		value     string
	}{
		{"unknown nri-armor key", utAnn("nri-armor.dev/posure", "file=block"), "c", "nri-armor.dev/posure", "file=block"},
		{"unknown nri-armor key with container", utAnn("nri-armor.dev/modes.container.c", "audit"), "c", "nri-armor.dev/modes.container.c", "audit"},
		{"container key without a name", utAnn(AnnotationMode+".container.", "audit"), "c", AnnotationMode + ".container.", "audit"},
		{"policy-set is written, never read", utAnn(AnnotationPolicySet, "sha256:x"), "c", AnnotationPolicySet, "sha256:x"},
		{"posture value", utAnn(AnnotationPosture, "file=blok"), "c", AnnotationPosture, "file=blok"},
		{"posture without =", utAnn(AnnotationPosture, "block"), "c", AnnotationPosture, "block"},
		{"posture for process", utAnn(AnnotationPosture, "process=block"), "c", AnnotationPosture, "process=block"},
		{"posture allow is not a posture", utAnn(AnnotationPosture, "file=allow"), "c", AnnotationPosture, "file=allow"},
		{"posture container key", utAnn(AnnotationPosture+".container.c", "network=deny"), "c", AnnotationPosture + ".container.c", "network=deny"},
		{"posture of another container is still checked", utAnn(AnnotationPosture+".container.d", "network=deny"), "c", "", ""},
		{"kubearmor file posture", utAnn(KubeArmorFilePosture, "deny"), "c", KubeArmorFilePosture, "deny"},
		{"kubearmor network posture", utAnn(KubeArmorNetworkPosture, ""), "c", KubeArmorNetworkPosture, ""},
		{"kubearmor capabilities posture", utAnn(KubeArmorCapabilitiesPosture, "allow"), "c", KubeArmorCapabilitiesPosture, "allow"},
		{"mode", utAnn(AnnotationMode, "enforcing"), "c", AnnotationMode, "enforcing"},
		{"mode container key", utAnn(AnnotationMode+".container.c", "off"), "c", AnnotationMode + ".container.c", "off"},
		{"kubearmor-policy", utAnn(KubeArmorPolicy, "on"), "c", KubeArmorPolicy, "on"},
		{"visibility", utAnn(AnnotationVisibility, "process,files"), "c", AnnotationVisibility, "process,files"},
		{"kubearmor-visibility", utAnn(KubeArmorVisibility, "all"), "c", KubeArmorVisibility, "all"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseAnnotations(c.ann, c.container, DefaultDefaults())
			if c.key == "" {
				// A malformed value on another container's key is that container's problem.
				if err != nil {
					t.Logf("note: %v", err)
				}
				return
			}
			utCheckAnnotationError(t, err, c.key, c.value)
			// Resolve refuses the container with the same error.
			_, rerr := utCatalog(t).Resolve(Pod{Namespace: "default", Annotations: c.ann}, c.container, DefaultDefaults())
			utCheckAnnotationError(t, rerr, c.key, c.value)
		})
	}
}

func utCheckAnnotationError(t *testing.T, err error, key, value string) {
	t.Helper()
	var ae *AnnotationError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want *AnnotationError", err, err)
	}
	if ae.Key != key || ae.Value != value {
		t.Errorf("AnnotationError key %q value %q, want %q %q", ae.Key, ae.Value, key, value)
	}
	prefix := "annotation " + key + "=\"" + value + "\": "
	if !strings.HasPrefix(err.Error(), prefix) || len(err.Error()) == len(prefix) {
		t.Errorf("message %q does not start with %q and give a reason", err, prefix)
	}
}

func TestResolveUnknownPolicy(t *testing.T) {
	cat := utCatalog(t)
	cases := []struct {
		name      string
		namespace string
		ann       map[string]string
		container string
		key       string
		value     string
		reason    string
	}{
		{"unknown name", "default", utAnn(AnnotationPolicies, "by-label,nope"), "c", AnnotationPolicies, "by-label,nope",
			`no policy named "nope" (no KubeArmorPolicy in namespace "default", no KubeArmorClusterPolicy)`},
		{"ksp of another namespace", "default", utAnn(AnnotationPolicies, "prod-only"), "c", AnnotationPolicies, "prod-only",
			`no policy named "prod-only" (no KubeArmorPolicy in namespace "default", no KubeArmorClusterPolicy)`},
		{"unknown name in the container key", "default", utAnn(AnnotationPolicies, "by-label", AnnotationPolicies+".container.c", "typo"), "c", AnnotationPolicies + ".container.c", "typo",
			`no policy named "typo" (no KubeArmorPolicy in namespace "default", no KubeArmorClusterPolicy)`},
		{"unknown name with spaces in the container key", "prod", utAnn(AnnotationPolicies+".container.c", "prod-only, typo"), "c", AnnotationPolicies + ".container.c", "prod-only, typo",
			`no policy named "typo" (no KubeArmorPolicy in namespace "prod", no KubeArmorClusterPolicy)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := cat.Resolve(Pod{Namespace: c.namespace, Annotations: c.ann}, c.container, DefaultDefaults())
			utCheckAnnotationError(t, err, c.key, c.value)
			var ae *AnnotationError
			if errors.As(err, &ae) && ae.Reason != c.reason {
				t.Errorf("reason %q, want %q", ae.Reason, c.reason)
			}
		})
	}
	// The exact text, once.
	_, err := cat.Resolve(Pod{Namespace: "default", Annotations: utAnn(AnnotationPolicies, "nope")}, "c", DefaultDefaults())
	if want := `annotation nri-armor.dev/policies="nope": no policy named "nope" (no KubeArmorPolicy in namespace "default", no KubeArmorClusterPolicy)`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

// A pod that names a policy that does not exist is refused at container
// creation (POLICY-SPEC.md, "Annotations read by nri-armor") — whatever its mode.
func TestResolveUnknownPolicyDisabledMode(t *testing.T) {
	cat := utCatalog(t)
	for _, a := range []map[string]string{
		utAnn(AnnotationPolicies, "nope", AnnotationMode, "disabled"),
		utAnn(AnnotationPolicies, "nope", KubeArmorPolicy, "disabled"),
	} {
		_, err := cat.Resolve(Pod{Namespace: "default", Annotations: a}, "c", DefaultDefaults())
		utCheckAnnotationError(t, err, AnnotationPolicies, "nope")
	}
}

func TestTolerateMissingAnnotation(t *testing.T) {
	if _, err := ParseAnnotations(map[string]string{AnnotationTolerateMissing: "true"}, "c", DefaultDefaults()); err != nil {
		t.Fatal(err)
	}
	_, err := ParseAnnotations(map[string]string{AnnotationTolerateMissing: "maybe"}, "c", DefaultDefaults())
	if err == nil || !strings.Contains(err.Error(), `annotation nri-armor.dev/tolerate-missing="maybe"`) {
		t.Fatalf("bad value: %v", err)
	}
}

// Catalog.Update gives what NewCatalog of the same policies gives, over a
// random run of additions, replacements and removals of every kind, and
// refuses a policy defined twice.
func TestCatalogUpdate(t *testing.T) {
	// A pool: every policy of selectYAML, and the same names edited (other
	// sources, so that a replacement is a different *Policy).
	pool := utLoad(t, "select.yaml", selectYAML)
	edited := utLoad(t, "edited.yaml", selectYAML)
	rng := rand.New(rand.NewPCG(1, 2))
	cur := map[string]*Policy{}
	cat, err := NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	for step := range 300 {
		var add []*Policy
		var remove []string
		for range 1 + rng.IntN(4) {
			i := rng.IntN(len(pool))
			ref := pool[i].Ref()
			switch p, in := cur[ref]; {
			case !in:
				p = pool[i]
				if rng.IntN(2) == 0 {
					p = edited[i]
				}
				if slices.ContainsFunc(add, func(q *Policy) bool { return q.Ref() == ref }) {
					continue
				}
				add = append(add, p)
			case !slices.Contains(remove, ref):
				remove = append(remove, ref)
				if rng.IntN(2) == 0 { // replaced
					next := pool[i]
					if p == pool[i] {
						next = edited[i]
					}
					add = append(add, next)
				}
			}
		}
		got, err := cat.Update(add, remove)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		for _, ref := range remove {
			delete(cur, ref)
		}
		for _, p := range add {
			cur[p.Ref()] = p
		}
		want, err := NewCatalog(slices.Collect(maps.Values(cur)))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d (add %v, remove %v): Update gives\n%+v\nNewCatalog gives\n%+v", step, utNames(add), remove, got, want)
		}
		cat = got
	}
	// Defined twice: by an addition beside the policy in force, or twice in
	// one update.
	if _, err := cat.Update([]*Policy{pool[0]}, nil); err == nil && cur[pool[0].Ref()] != nil {
		t.Error("an addition of a policy in force was taken")
	}
	if _, err := cat.Update([]*Policy{pool[1], edited[1]}, []string{pool[1].Ref()}); err == nil || !strings.Contains(err.Error(), "is already defined at") {
		t.Errorf("the same policy twice in one update: %v", err)
	}
}

// BenchmarkCatalogChange: one policy of 10,000 (1,000 namespaces) changes;
// the catalog rebuilt (NewCatalog) or updated (Catalog.Update).
func BenchmarkCatalogChange(b *testing.B) {
	var sb strings.Builder
	for i := range 10000 {
		if i > 0 {
			sb.WriteString("---\n")
		}
		sb.WriteString(utPolicyDoc(KindPolicy, fmt.Sprintf("p%d", i%10), fmt.Sprintf("ns-%04d", i/10), fmt.Sprintf("  selector:\n    matchLabels:\n      app: app%d\n", i%10)))
	}
	all := utLoad(b, "scale.yaml", sb.String())
	edit := utLoad(b, "edit.yaml", utPolicyDoc(KindPolicy, "p3", "ns-0500", "  selector:\n    matchLabels:\n      app: other\n"))
	cat, err := NewCatalog(all)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("rebuild", func(b *testing.B) {
		next := slices.Clone(all)
		for i, p := range next {
			if p.Ref() == edit[0].Ref() {
				next[i] = edit[0]
			}
		}
		for b.Loop() {
			if _, err := NewCatalog(next); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("update", func(b *testing.B) {
		for b.Loop() {
			if _, err := cat.Update(edit, []string{edit[0].Ref()}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
