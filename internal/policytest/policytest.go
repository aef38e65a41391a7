package policytest

import (
	"testing"

	"github.com/nri-armor/nri-armor/policy"
)

// Load loads the policies of doc, one or more YAML documents.
func Load(t testing.TB, doc string) []*policy.Policy {
	t.Helper()
	res := policy.LoadBytes("test.yaml", []byte(doc))
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return res.Policies
}

// Compile compiles every policy of doc into one rule set, with the default
// postures in enforce mode.
func Compile(t testing.TB, doc string) *policy.RuleSet {
	t.Helper()
	return policy.Compile(Load(t, doc), policy.Options{Postures: policy.DefaultDefaults().Postures, Mode: policy.ModeEnforce})
}
