//go:build e2e && (vmapparmor || vmk8s)

package e2e

// The AppArmor boot (make vmtest-apparmor) and the one-node build (make
// k8s-node) run every test on containerd only: their tests are about
// containerd's AppArmor profiles and a kubelet on containerd, neither of
// which this harness sets up for CRI-O (hack/e2e/crio.sh runs containers
// unconfined by AppArmor; the node's kubelet talks to containerd), and
// each subtest costs 15–60 s under software emulation. The BPF-LSM build
// runs some tests on CRI-O too (runtimes_vme2e_test.go).
func init() {
	runtimesFor = func(string) []*criRuntime { return []*criRuntime{containerdRuntime} }
}
