// Package charts holds the Helm chart charts/nri-armor; its tests lint it
// with helm, render it with several sets of values, parse every rendered
// object strictly into its Kubernetes type, check the RBAC rules to the
// verb, and keep deploy/nri-armor.yaml (the chart rendered) and the
// chart's copies of config/ current. helm is built by hack/k8s/helm.sh
// (make unit builds it first); without it the tests fail, unless
// NRI_ARMOR_SKIP_HELM=1 lets them skip.
package charts
