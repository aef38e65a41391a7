// Package testenv holds what tests share about where they run: the repository
// root, the shared conformance corpus, and the rule that a test which cannot
// run where it must fails unless a variable explicitly allows the skip.
package testenv
