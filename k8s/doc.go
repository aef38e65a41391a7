// Package k8s holds what nri-armor's Kubernetes parts share: the three
// KubeArmor policy resources (k8s/api/v1 has their Go types and CRDs), the
// name a policy object goes by in the policy store and in errors, and the
// form an object is loaded in. The agent's watch is k8s/source; the
// admission webhooks are k8s/webhook.
package k8s
