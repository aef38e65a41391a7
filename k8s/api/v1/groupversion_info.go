package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is KubeArmor's API group: the same group as KubeArmor's CRDs,
// so that either set of CRDs serves the other's clients.
const GroupName = "security.kubearmor.com"

var (
	// GroupVersion is security.kubearmor.com/v1.
	GroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1"}

	// SchemeGroupVersion is GroupVersion under the name client-go's
	// generated code and KubeArmor's package use.
	SchemeGroupVersion = GroupVersion

	// SchemeBuilder registers the three kinds and their lists. It is
	// apimachinery's, not controller-runtime's, so that importing the
	// types pulls in no controller framework.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Resource qualifies an unqualified resource name (kubearmorpolicies) with
// the group, as listers and API errors want it.
func Resource(resource string) schema.GroupResource {
	return GroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&KubeArmorPolicy{}, &KubeArmorPolicyList{},
		&KubeArmorClusterPolicy{}, &KubeArmorClusterPolicyList{},
		&KubeArmorHostPolicy{}, &KubeArmorHostPolicyList{},
	)
	// The meta types (ListOptions, WatchEvent …) that clients and
	// informers of this group-version need.
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
