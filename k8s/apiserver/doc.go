// Package apiserver holds no code: its tests (build tag k8s, run by `make
// k8s`) put nri-armor's Kubernetes parts in front of a real kube-apiserver
// and etcd (internal/k8stest starts them): the CRDs, the policy webhook
// with the conformance corpus through kubectl, the agent's watch, the pod
// webhook, and the chart's RBAC.
package apiserver
