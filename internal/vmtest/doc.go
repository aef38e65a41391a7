// Package vmtest is for tests that must run inside the nri-armor test VM:
// a stock Debian kernel booted by hack/vmtest/run.sh (`make vmtest`) with
// BPF-LSM and AppArmor active, where the test binary runs as root from the
// VM's /init.
//
// Such tests live in files with the build tag `vmtest`, so the host's
// `go test ./...` never compiles them, and start with Require(t). Where they
// run anywhere else they fail, unless NRI_ARMOR_ALLOW_SKIP_VM=1 explicitly
// allows the skip: a test that cannot run where it must is a failure.
package vmtest
