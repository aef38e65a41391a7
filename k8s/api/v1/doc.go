// Package v1 holds the Kubernetes API types of nri-armor's policy
// resources: KubeArmorPolicy (ksp, namespaced), KubeArmorClusterPolicy
// (csp) and KubeArmorHostPolicy (hsp), group security.kubearmor.com,
// version v1 — the group, kinds and schema of KubeArmor's own CRDs, so
// that a cluster that already runs KubeArmor's CRDs, and the public policy
// templates, work unchanged.
//
// The types mirror KubeArmor's Go API field for field (see the attribution
// in common.go); the CRDs under config/crd/ are generated from them by
// controller-gen (make generate-crds, the go:generate line below), never
// kept by hand. Tests hold the generated CRDs to a fresh controller-gen
// run, their schemas to KubeArmor's CRDs (testdata/kubearmor), and the
// field names to package policy's yaml types.
//
// These types are only the API's shape: the agent hands an object's JSON
// to policy.LoadBytes, where the one validation and the semantics live.
//
// +kubebuilder:object:generate=true
// +groupName=security.kubearmor.com
package v1

// controller-gen writes the deepcopy functions here and the CRDs, one file
// per kind, into config/crd; hack/generate-crds.sh copies them into the
// chart (charts/nri-armor/crds), so the two can never drift apart.
//go:generate ../../../hack/generate-crds.sh
