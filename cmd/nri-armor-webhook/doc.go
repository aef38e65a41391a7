// Command nri-armor-webhook serves nri-armor's admission webhooks (package
// k8s/webhook) for the API server: it refuses invalid KubeArmor policies
// at `kubectl apply`, and sets the AppArmor profile of pods whose policies
// need one. One Deployment per cluster; the Helm chart (charts/nri-armor)
// installs it with its webhook configurations.
//
//	nri-armor-webhook --listen=:9443 --namespace=nri-armor \
//	    --service=nri-armor-webhook --webhook-config=nri-armor
package main
