// Package nritest is a runtime side for tests: NRI's own adaptation (what
// containerd and CRI-O embed) on a temporary socket, with helpers that send
// pod and container events as containerd 2.4 does.
package nritest
