//go:build e2e && (vme2e || vmapparmor || vmk8s)

package e2e

// The VM's root has containerd only: CRI-O, pinns, conmon and skopeo are
// not in it yet (issue 17), so the tests run one subtest, containerd, there
// instead of skipping crio's.
func init() { runtimes = []*criRuntime{containerdRuntime} }
