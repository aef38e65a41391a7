package v1

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/nri-armor/nri-armor/policy"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"sigs.k8s.io/yaml"
)

// apiServer is what the API server does with a created object of one
// kind, per its CRD: validate against the schema, prune unknown fields.
type apiServer struct {
	validator  validation.SchemaValidator
	structural *structuralschema.Structural
}

// apiServers builds an apiServer for each generated CRD, by kind.
func apiServers(t *testing.T) map[string]apiServer {
	t.Helper()
	out := map[string]apiServer{}
	for _, crd := range ourCRDs(t) {
		var internal apiextensions.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(crd.Spec.Versions[0].Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			t.Fatal(err)
		}
		v, _, err := validation.NewSchemaValidator(&internal)
		if err != nil {
			t.Fatal(err)
		}
		st, err := structuralschema.NewStructural(&internal)
		if err != nil {
			t.Fatal(err)
		}
		out[crd.Spec.Names.Kind] = apiServer{v, st}
	}
	return out
}

// admit validates the JSON document js and returns the fields pruning
// would drop (the API server drops them silently, or refuses them where the
// client asks for strict field validation) and the schema's errors.
func (s apiServer) admit(t *testing.T, js []byte) ([]string, error) {
	t.Helper()
	var u map[string]any
	if err := json.Unmarshal(js, &u); err != nil {
		t.Fatal(err)
	}
	pruned := pruning.PruneWithOptions(u, s.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	return pruned, validation.ValidateCustomResource(nil, u, s.validator).ToAggregate()
}

const kspHead = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: p, namespace: ns}
spec:
  selector: {matchLabels: {app: web}}
`

// TestSchemaEdges pins where KubeArmor's schema, and so the CRDs, and
// package policy draw the line differently, so that whoever writes the
// validating webhook or the docs knows: a document package policy refuses
// may pass the schema (the webhook refuses it), and a few documents
// package policy accepts from a file cannot be applied through the API.
func TestSchemaEdges(t *testing.T) {
	servers := apiServers(t)
	for _, c := range []struct {
		name, spec      string
		schemaOK, polOK bool
		pruned          []string
	}{
		{"valid", "  file: {matchPaths: [{path: /etc/shadow}]}\n  action: Block\n", true, true, nil},
		// Both refuse.
		{"severity 11", "  file: {matchPaths: [{path: /etc/shadow}]}\n  severity: 11\n", false, false, nil},
		{"relative path", "  file: {matchPaths: [{path: etc/shadow}]}\n", false, false, nil},
		{"dir without /", "  file: {matchDirectories: [{dir: /etc}]}\n", false, false, nil},
		{"unknown capability", "  capabilities: {matchCapabilities: [{capability: net_rawx}]}\n", false, false, nil},
		// The schema refuses lower-case actions; package policy accepts
		// them with a warning, as KubeArmor's daemon does.
		{"action block", "  file: {matchPaths: [{path: /etc/shadow}]}\n  action: block\n", false, true, nil},
		// KubeArmor's capability pattern lists 34 names in lower case
		// without CAP_: CAP_NET_RAW, and the capabilities Linux added
		// since (bpf, perfmon, checkpoint_restore …), pass package policy
		// but not the schema.
		{"CAP_NET_RAW", "  capabilities: {matchCapabilities: [{capability: CAP_NET_RAW}]}\n", false, true, nil},
		{"capability bpf", "  capabilities: {matchCapabilities: [{capability: bpf}]}\n", false, true, nil},
		// The patterns are not anchored at the start: any prefix passes
		// the schema; package policy refuses the name.
		{"capability prefix", "  capabilities: {matchCapabilities: [{capability: xnet_raw}]}\n", true, false, nil},
		{"protocol prefix", "  network: {matchProtocols: [{protocol: xtcp}]}\n", true, false, nil},
		// KubeArmor caps paths at 200 bytes; package policy at PATH_MAX.
		{"path of 201 bytes", fmt.Sprintf("  file: {matchPaths: [{path: /%0200d}]}\n", 0), false, true, nil},
		// Fields of KubeArmor that nri-armor does not implement: the
		// schema takes them, package policy refuses them.
		{"pts", "  file: {matchPaths: [{path: /etc/shadow, pts: true}]}\n", true, false, nil},
		{"matchDNSQueries", "  network: {matchDNSQueries: [{domain: example.com}]}\n", true, false, nil},
		// A syscall rule's action is nri-armor's (seccomp); KubeArmor's
		// schema has no such field (TestFieldsMatchPolicy): the API
		// server prunes it, and the Block applied is an Audit stored.
		{"syscall rule action", "  syscalls: {matchSyscalls: [{syscall: [unshare], action: Block}]}\n", true, true, []string{"spec.syscalls.matchSyscalls[0].action"}},
		{"syscall section action", "  syscalls: {matchSyscalls: [{syscall: [unshare]}], action: Block}\n", true, true, []string{"spec.syscalls.action"}},
		// What works in both: the action on the spec.
		{"syscall spec action", "  syscalls: {matchSyscalls: [{syscall: [unshare]}]}\n  action: Block\n", true, true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := kspHead + c.spec
			js, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			pruned, serr := servers["KubeArmorPolicy"].admit(t, js)
			if (serr == nil) != c.schemaOK {
				t.Errorf("schema: want ok=%v, got %v", c.schemaOK, serr)
			}
			if !slices.Equal(pruned, c.pruned) {
				t.Errorf("pruned: want %q, got %q", c.pruned, pruned)
			}
			res := policy.LoadBytes("edge.yaml", []byte(doc))
			if (res.Status() == policy.FileValid) != c.polOK {
				t.Errorf("package policy: want ok=%v, got %s: %v", c.polOK, res.Status(), res.Issues)
			}
		})
	}
}
