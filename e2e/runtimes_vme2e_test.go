//go:build e2e && vme2e

package e2e

import (
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// crioInVM are the tests that the BPF-LSM VM (make vmtest-e2e) runs on
// CRI-O as well as on containerd; every other test runs on containerd only
// there. They prove on CRI-O what only the VM can: process and file Block
// rules enforced by BPF-LSM in CRI-O's containers (EPERM from the first
// instruction; the cgroup is crio-ID, the rules installed by the start
// gate at CRI-O's create), and fail-closed with BPF-LSM active — CRI-O's
// NRI validator refusing containers while nri-armor is down, the guard
// hook refusing a tolerating pod of an untrusted namespace, the crash
// window, and a restart (the pinned BPF-LSM rules keep CRI-O's running
// containers enforced while nri-armor is down). The host's `make e2e`
// runs the rest on CRI-O (network rules there by cgroup-BPF), and the
// containerd subtests here cover BPF-LSM for them: under software
// emulation each subtest costs 15–60 s, so the list stays short. Measured
// on a busy machine, these four cost about 155 s; TestStartWindow/crio
// (53 s) is left out: CRI-O has no start window (its hooks run at create,
// while nri-armor is up), so on CRI-O that test is no fail-closed case,
// and the host's run asserts it.
//
// Functions, not names: a test renamed or removed fails to compile here
// instead of silently leaving CRI-O out.
var crioInVM = []func(*testing.T){
	TestVMProcessFileBlock,
	TestFailClosed,
	TestCrashWindow,
	TestRestart,
}

func init() {
	runtimesFor = func(test string) []*criRuntime {
		for _, f := range crioInVM {
			if testName(f) == test {
				return []*criRuntime{containerdRuntime, crioRuntime}
			}
		}
		return []*criRuntime{containerdRuntime}
	}
}

// testName is the name of the test function f ("TestFailClosed").
func testName(f func(*testing.T)) string {
	name := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
	return name[strings.LastIndex(name, ".")+1:]
}
