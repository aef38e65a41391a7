package v1

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"sigs.k8s.io/yaml"
)

// The committed CRDs: config/crd is what make generate-crds writes and
// config and docs point at; the chart carries the same files.
var crdDirs = []string{"config/crd", "charts/nri-armor/crds"}

// TestCRDsGenerated runs controller-gen (the module's go tool, so the
// version go.mod pins) into a temporary directory and holds every committed
// CRD and the deepcopy file to its output byte for byte: they are
// generated, never edited, and a change of the types without make
// generate-crds fails here.
func TestCRDsGenerated(t *testing.T) {
	root := testenv.RepoRoot(t)
	goCmd, err := exec.LookPath("go") // go test puts its GOROOT/bin first on PATH
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	crdOut, objOut := filepath.Join(tmp, "crd"), filepath.Join(tmp, "object")
	cmd := exec.Command(goCmd, "tool", "controller-gen",
		"object", "output:object:dir="+objOut,
		"crd:crdVersions=v1", "output:crd:artifacts:config="+crdOut,
		"paths=./k8s/api/...")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, out)
	}
	want := readDir(t, crdOut)
	if len(want) != 3 {
		t.Fatalf("controller-gen wrote %d CRDs, want 3: %v", len(want), slices.Sorted(mapsKeys(want)))
	}
	for _, dir := range crdDirs {
		got := readDir(t, filepath.Join(root, dir))
		for name, w := range want {
			if g, ok := got[name]; !ok {
				t.Errorf("%s/%s missing: run make generate-crds and commit", dir, name)
			} else if !bytes.Equal(g, w) {
				t.Errorf("%s/%s differs from controller-gen's output: run make generate-crds and commit", dir, name)
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("%s/%s is not generated from k8s/api/v1: run make generate-crds (which removes it) and commit", dir, name)
			}
		}
	}
	const deepcopy = "zz_generated.deepcopy.go"
	w, err := os.ReadFile(filepath.Join(objOut, deepcopy))
	if err != nil {
		t.Fatal(err)
	}
	if g, err := os.ReadFile(deepcopy); err != nil || !bytes.Equal(g, w) {
		t.Errorf("k8s/api/v1/%s differs from controller-gen's output (%v): run make generate-crds and commit", deepcopy, err)
	}
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// loadCRDs reads every CRD in dir, by its name (kubearmorpolicies.security.kubearmor.com).
func loadCRDs(t *testing.T, dir string) map[string]*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	out := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for name, b := range readDir(t, dir) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(b, crd); err != nil {
			t.Fatalf("%s/%s: %v", dir, name, err)
		}
		out[crd.Name] = crd
	}
	return out
}

// ourCRDs are the generated CRDs, by name.
func ourCRDs(t *testing.T) map[string]*apiextensionsv1.CustomResourceDefinition {
	return loadCRDs(t, filepath.Join(testenv.RepoRoot(t), crdDirs[0]))
}

// keptSchemaDifferences lists, by "CRD name|path|attribute", each
// difference from KubeArmor's schema that is meant, with the reason.
// Empty: the schemas are KubeArmor's (the generated CRDs differ from
// KubeArmor's files only in the controller-gen version annotation). An
// entry that no longer matches a difference fails the test, so the list
// never outlives what it excuses.
var keptSchemaDifferences = map[string]string{}

// TestSchemaCompatible holds the generated CRDs to KubeArmor's
// (testdata/kubearmor, see its README): the same kinds, names, short names,
// scope, printer columns and subresources, and OpenAPI schemas that no
// document can tell apart — every attribute that decides validity,
// defaulting or pruning compared at every node; descriptions, titles and
// examples are documentation and ignored.
func TestSchemaCompatible(t *testing.T) {
	theirs := loadCRDs(t, "testdata/kubearmor")
	ours := ourCRDs(t)
	if len(theirs) != 3 {
		t.Fatalf("testdata/kubearmor holds %d CRDs, want 3", len(theirs))
	}
	seen := map[string]bool{}
	for name, k := range theirs {
		o, ok := ours[name]
		if !ok {
			t.Errorf("%s: KubeArmor has it, config/crd does not", name)
			continue
		}
		// Everything but the schemas at once: names, scope, versions'
		// flags, printer columns, subresources.
		os, ks := o.Spec.DeepCopy(), k.Spec.DeepCopy()
		for i := range os.Versions {
			os.Versions[i].Schema = nil
		}
		for i := range ks.Versions {
			ks.Versions[i].Schema = nil
		}
		if !reflect.DeepEqual(os, ks) {
			oj, _ := json.MarshalIndent(os, "", "  ")
			kj, _ := json.MarshalIndent(ks, "", "  ")
			t.Errorf("%s: spec (schemas aside) differs from KubeArmor's\nours:\n%s\nKubeArmor's:\n%s", name, oj, kj)
		}
		for _, kv := range k.Spec.Versions {
			i := slices.IndexFunc(o.Spec.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool { return v.Name == kv.Name })
			if i < 0 || o.Spec.Versions[i].Schema == nil || kv.Schema == nil {
				continue // reported above
			}
			diffSchema(kv.Name, o.Spec.Versions[i].Schema.OpenAPIV3Schema, kv.Schema.OpenAPIV3Schema, func(path, attr, msg string) {
				key := name + "|" + path + "|" + attr
				if reason, ok := keptSchemaDifferences[key]; ok {
					seen[key] = true
					t.Logf("kept: %s: %s (%s)", key, msg, reason)
					return
				}
				t.Errorf("%s: %s: %s: %s", name, path, attr, msg)
			})
		}
	}
	for name := range ours {
		if _, ok := theirs[name]; !ok {
			t.Errorf("%s: config/crd has it, KubeArmor does not", name)
		}
	}
	for key := range keptSchemaDifferences {
		if !seen[key] {
			t.Errorf("keptSchemaDifferences[%q] matches no difference: remove it", key)
		}
	}
}

// Attributes of a schema node that only document it.
var docAttrs = map[string]bool{"description": true, "title": true, "example": true, "externalDocs": true}

// diffSchema reports every difference between the schema nodes o (ours)
// and k (KubeArmor's) and their children. It goes through
// JSONSchemaProps' fields by reflection, so that an attribute added to the
// type later is compared too rather than forgotten.
func diffSchema(path string, o, k *apiextensionsv1.JSONSchemaProps, report func(path, attr, msg string)) {
	if o == nil || k == nil {
		if (o == nil) != (k == nil) {
			report(path, "schema", fmt.Sprintf("ours %v, KubeArmor's %v", o != nil, k != nil))
		}
		return
	}
	ov, kv := reflect.ValueOf(o).Elem(), reflect.ValueOf(k).Elem()
	typ := ov.Type()
	for i := 0; i < typ.NumField(); i++ {
		attr, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if docAttrs[attr] {
			continue
		}
		of, kf := ov.Field(i).Interface(), kv.Field(i).Interface()
		switch attr {
		case "properties":
			op, kp := o.Properties, k.Properties
			for _, name := range unionKeys(op, kp) {
				ps, in := op[name], kp[name]
				_, inO := op[name]
				_, inK := kp[name]
				switch {
				case !inK:
					report(path+"."+name, "properties", "only in ours")
				case !inO:
					report(path+"."+name, "properties", "only in KubeArmor's")
				default:
					diffSchema(path+"."+name, &ps, &in, report)
				}
			}
		case "items":
			switch {
			case o.Items == nil || k.Items == nil:
				if (o.Items == nil) != (k.Items == nil) {
					report(path, attr, fmt.Sprintf("ours %v, KubeArmor's %v", o.Items != nil, k.Items != nil))
				}
			case len(o.Items.JSONSchemas)+len(k.Items.JSONSchemas) > 0:
				compareStripped(path, attr, o.Items, k.Items, report)
			default:
				diffSchema(path+"[]", o.Items.Schema, k.Items.Schema, report)
			}
		case "additionalProperties":
			switch {
			case o.AdditionalProperties == nil || k.AdditionalProperties == nil:
				if (o.AdditionalProperties == nil) != (k.AdditionalProperties == nil) {
					report(path, attr, fmt.Sprintf("ours %v, KubeArmor's %v", o.AdditionalProperties != nil, k.AdditionalProperties != nil))
				}
			case o.AdditionalProperties.Allows != k.AdditionalProperties.Allows:
				report(path, attr, fmt.Sprintf("allows: ours %v, KubeArmor's %v", o.AdditionalProperties.Allows, k.AdditionalProperties.Allows))
			default:
				diffSchema(path+"{}", o.AdditionalProperties.Schema, k.AdditionalProperties.Schema, report)
			}
		case "enum":
			oe, ke := jsonSet(o.Enum), jsonSet(k.Enum)
			if !slices.Equal(oe, ke) {
				report(path, attr, fmt.Sprintf("ours %v, KubeArmor's %v", oe, ke))
			}
		case "required":
			or, kr := slices.Sorted(slices.Values(o.Required)), slices.Sorted(slices.Values(k.Required))
			if !slices.Equal(or, kr) {
				report(path, attr, fmt.Sprintf("ours %v, KubeArmor's %v", or, kr))
			}
		case "allOf", "oneOf", "anyOf", "not", "patternProperties", "dependencies", "additionalItems", "definitions":
			// Not used by either schema today; compared whole (their
			// descriptions aside) rather than walked.
			compareStripped(path, attr, of, kf, report)
		default:
			if !reflect.DeepEqual(of, kf) {
				report(path, attr, fmt.Sprintf("ours %s, KubeArmor's %s", show(of), show(kf)))
			}
		}
	}
}

func unionKeys(a, b map[string]apiextensionsv1.JSONSchemaProps) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func jsonSet(vs []apiextensionsv1.JSON) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v.Raw)
	}
	slices.Sort(out)
	return out
}

// compareStripped compares two schema values with their documentation
// attributes removed, through their JSON form.
func compareStripped(path, attr string, o, k any, report func(path, attr, msg string)) {
	oj, kj := stripDocs(o), stripDocs(k)
	if oj != kj {
		report(path, attr, fmt.Sprintf("ours %s, KubeArmor's %s", oj, kj))
	}
}

func stripDocs(v any) string {
	b, _ := json.Marshal(v)
	var x any
	_ = json.Unmarshal(b, &x)
	var strip func(any) any
	strip = func(x any) any {
		switch x := x.(type) {
		case map[string]any:
			for k := range docAttrs {
				delete(x, k)
			}
			for k, v := range x {
				x[k] = strip(v)
			}
		case []any:
			for i := range x {
				x[i] = strip(x[i])
			}
		}
		return x
	}
	b, _ = json.Marshal(strip(x))
	return string(b)
}

func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "unset"
		}
		v = rv.Elem().Interface()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// TestCRDsValid runs the API server's own CRD validation on the generated
// CRDs (structural schema, names, printer columns), so that a CRD that
// would not install fails here rather than at kubectl apply.
func TestCRDsValid(t *testing.T) {
	for name, crd := range ourCRDs(t) {
		var internal apiextensions.CustomResourceDefinition
		if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(crd, &internal, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The API server fills storedVersions on create, before it validates.
		for _, v := range internal.Spec.Versions {
			if v.Storage {
				internal.Status.StoredVersions = append(internal.Status.StoredVersions, v.Name)
			}
		}
		if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), &internal); len(errs) > 0 {
			t.Errorf("%s: %v", name, errs.ToAggregate())
		}
	}
}
