// Package policytest turns policy YAML written in a test into what the
// code under test takes, failing the test on any load error. (It is not
// part of internal/testenv, which the policy package's own tests use.)
package policytest
