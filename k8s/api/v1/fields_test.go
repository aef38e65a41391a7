package v1

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/policy"
)

// keptFieldDifferences lists, by "path|field", each field that the API
// types (KubeArmor's schema) and package policy's yaml types do not share,
// with the reason. The agent hands an object's JSON to policy.LoadBytes,
// so an API-only field is refused there as an unknown field (and so by the
// validating webhook at apply time): never silently dropped, never
// silently enforced less.
var keptFieldDifferences = map[string]string{
	// KubeArmor fields nri-armor does not implement.
	"spec|device":                            "API only: KubeArmor's hsp USB device rules; nri-armor has no device enforcement, policy refuses the field",
	"spec.network|matchDNSQueries":           "API only: KubeArmor's DNS query rules; nri-armor has no DNS enforcement, policy refuses the field",
	"spec.process.matchPaths[]|allowedArgs":  "API only: KubeArmor's argument allow-list; nri-armor does not match arguments, policy refuses the field",
	"spec.process.matchPaths[]|pts":          "API only: KubeArmor's terminal (pts) condition; not implemented, policy refuses the field",
	"spec.process.matchDirectories[]|pts":    "API only: KubeArmor's terminal (pts) condition; not implemented, policy refuses the field",
	"spec.file.matchPaths[]|pts":             "API only: KubeArmor's terminal (pts) condition; not implemented, policy refuses the field",
	"spec.file.matchDirectories[]|pts":       "API only: KubeArmor's terminal (pts) condition; not implemented, policy refuses the field",
	"spec.network.matchProtocols[]|pts":      "API only: KubeArmor's terminal (pts) condition; not implemented, policy refuses the field",
	"spec.syscalls|action":                   "policy only: nri-armor blocks syscalls (seccomp) and takes a section action; KubeArmor's schema has none (syscalls audit there): through the API, write the action on the spec",
	"spec.syscalls.matchSyscalls[]|action":   "policy only: a rule's own action (see spec.syscalls|action); KubeArmor's schema has none",
	"spec.syscalls.matchSyscalls[]|severity": "policy only: every nri-armor rule carries provenance; KubeArmor's syscall rules have none (its section and spec do)",
	"spec.syscalls.matchSyscalls[]|tags":     "policy only: as severity",
	"spec.syscalls.matchSyscalls[]|message":  "policy only: as severity",
	"spec.syscalls.matchPaths[]|action":      "policy only: as spec.syscalls.matchSyscalls[]|action",
	"spec.syscalls.matchPaths[]|severity":    "policy only: as spec.syscalls.matchSyscalls[]|severity",
	"spec.syscalls.matchPaths[]|tags":        "policy only: as severity",
	"spec.syscalls.matchPaths[]|message":     "policy only: as severity",
}

// TestFieldsMatchPolicy walks package policy's document type (yaml tags)
// and the three API kinds (json tags, their union: policy.Spec is the
// union of the three kinds' specs) and compares the field names of every
// object both describe. An object only one side has (spec.device …)
// shows as its parent's difference.
func TestFieldsMatchPolicy(t *testing.T) {
	pol := map[string]map[string]bool{}
	walkFields(reflect.TypeFor[policy.Policy](), "yaml", "", pol)
	api := map[string]map[string]bool{}
	for _, typ := range []reflect.Type{reflect.TypeFor[KubeArmorPolicy](), reflect.TypeFor[KubeArmorClusterPolicy](), reflect.TypeFor[KubeArmorHostPolicy]()} {
		walkFields(typ, "json", "", api)
	}
	if len(pol["spec.process.matchPaths[]"]) == 0 || len(api["spec.process.matchPaths[]"]) == 0 {
		t.Fatalf("walk found no process rules: policy %v, API %v", pol["spec.process.matchPaths[]"], api["spec.process.matchPaths[]"])
	}
	seen := map[string]bool{}
	for _, path := range slices.Sorted(mapsKeys(pol)) {
		af, ok := api[path]
		if !ok {
			continue
		}
		pf := pol[path]
		for _, f := range slices.Sorted(mapsKeys(union(pf, af))) {
			if pf[f] && af[f] {
				continue
			}
			side := "only in package policy"
			if af[f] {
				side = "only in the API types"
			}
			key := path + "|" + f
			if _, ok := keptFieldDifferences[key]; ok {
				seen[key] = true
				continue
			}
			t.Errorf("%s.%s: %s", displayPath(path), f, side)
		}
	}
	for key := range keptFieldDifferences {
		if !seen[key] {
			t.Errorf("keptFieldDifferences[%q] matches no difference: remove it", key)
		}
	}
}

func displayPath(p string) string {
	if p == "" {
		return "(document)"
	}
	return p
}

func union(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

var jsonMarshaler = reflect.TypeFor[json.Marshaler]()

// walkFields records, for the object at path, the names (by tag) of the
// fields of struct type typ, and walks into the objects they hold. It does
// not walk into types that encode themselves (metav1.Time) nor into
// interface fields (policy's metadata.ownerReferences is `any`).
func walkFields(typ reflect.Type, tag, path string, out map[string]map[string]bool) {
	if out[path] == nil {
		out[path] = map[string]bool{}
	}
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get(tag), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && name == "" || strings.Contains(opts, "inline") {
			walkFields(deref(f.Type), tag, path, out)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[path][name] = true
		child := name
		if path != "" {
			child = path + "." + name
		}
		ft := deref(f.Type)
		if ft.Kind() == reflect.Slice {
			ft, child = deref(ft.Elem()), child+"[]"
		}
		// policy.Ignored takes any form: nothing below it to compare.
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[policy.Ignored]() && !reflect.PointerTo(ft).Implements(jsonMarshaler) && !ft.Implements(jsonMarshaler) {
			walkFields(ft, tag, child, out)
		}
	}
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}
