// Package policy turns KubeArmor-style policy YAML into a verdict: it loads and
// validates policy documents (with file and line in every error), selects the
// policies that apply to a container, compiles them into one canonical,
// content-addressed rule set, and decides events against that set.
//
// The Go types below mirror KubeArmor's security.kubearmor.com/v1 CRDs field for
// field (yaml tags are the CRD's JSON names), so that existing policies load
// unchanged. The decoder in decode.go is strict: an unknown field is an error.
package policy
