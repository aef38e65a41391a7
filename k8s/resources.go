package k8s

import (
	"encoding/json"
	"fmt"

	"github.com/nri-armor/nri-armor/policy"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group is the API group of KubeArmor's policy resources; nri-armor serves
// the same resources so that a cluster with KubeArmor's CRDs works as is.
const Group = "security.kubearmor.com"

// Resource is one of the three policy resources.
type Resource struct {
	Kind       policy.Kind
	GVR        schema.GroupVersionResource
	Namespaced bool
}

// Resources are the three policy resources, as KubeArmor names them.
var Resources = []Resource{
	{policy.KindPolicy, schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "kubearmorpolicies"}, true},
	{policy.KindClusterPolicy, schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "kubearmorclusterpolicies"}, false},
	{policy.KindHostPolicy, schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "kubearmorhostpolicies"}, false},
}

// DocumentName is what a policy object is called in the policy store and
// in the errors about it: "kubernetes:KIND/NAMESPACE/NAME", or
// "kubernetes:KIND/NAME" for the cluster-scoped kinds. It is never a file
// path, so a file and an object cannot be taken for each other.
func DocumentName(kind, namespace, name string) string {
	if namespace == "" {
		return fmt.Sprintf("kubernetes:%s/%s", kind, name)
	}
	return fmt.Sprintf("kubernetes:%s/%s/%s", kind, namespace, name)
}

// lastApplied is kubectl's copy of the whole object, in an annotation.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Strip removes from a policy object what the API server and kubectl add
// and nri-armor never reads: managed fields and kubectl's last-applied
// copy, each as large as the policy. The watch keeps objects stripped,
// which halves the memory a policy costs.
func Strip(u *unstructured.Unstructured) {
	u.SetManagedFields(nil)
	if a := u.GetAnnotations(); a[lastApplied] != "" {
		delete(a, lastApplied)
		u.SetAnnotations(a)
	}
}

// Document is the form a policy object is loaded in: its JSON without the
// status, which the policy loader reads as YAML, so that an object and a
// file are checked by the same code and their errors name the same
// fields.
func Document(u *unstructured.Unstructured) ([]byte, error) {
	c := u.DeepCopy()
	Strip(c)
	unstructured.RemoveNestedField(c.Object, "status")
	return json.Marshal(c.Object)
}
