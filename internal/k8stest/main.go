package k8stest

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// Main runs a package's tests against one cluster, started before them and
// stopped after; call it from TestMain:
//
//	var cluster *k8stest.Cluster
//
//	func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, &cluster)) }
//
// and begin each test with k8stest.Require(t, cluster). When the tests
// fail, the tails of the kube-apiserver and etcd logs are printed. When the
// cluster cannot start, Main prints why and returns 1 without running the
// tests; only when the binaries are missing and NRI_ARMOR_SKIP_K8S=1 are the
// tests run with a nil cluster, and Require skips them.
func Main(m *testing.M, c **Cluster) int {
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	cl, err := Start(Options{Logf: logf})
	if err != nil {
		if errors.Is(err, ErrNotBuilt) && os.Getenv(SkipVar) == "1" {
			logf("k8stest: %v; the tests that need it skip because %s=1", err, SkipVar)
			*c = nil
			return m.Run()
		}
		logf("%v", err)
		return 1
	}
	*c = cl
	code := m.Run()
	if code != 0 {
		logf("%s", cl.LogTail(40))
	}
	cl.Stop()
	return code
}

// Require skips the test when Main left no cluster because
// NRI_ARMOR_SKIP_K8S=1 allowed it, and fails it when there is none for
// another reason (TestMain does not call Main).
func Require(t testing.TB, c *Cluster) {
	t.Helper()
	if c != nil {
		return
	}
	if os.Getenv(SkipVar) == "1" {
		t.Skipf("no API server: its binaries are not built (hack/k8s/build.sh); skipped because %s=1", SkipVar)
	}
	t.Fatal("no API server: TestMain must call k8stest.Main(m, &cluster)")
}

// StartT starts a cluster for one test and stops it when the test ends,
// printing the log tails if the test failed. Missing binaries fail the
// test, naming hack/k8s/build.sh, unless NRI_ARMOR_SKIP_K8S=1 lets it skip.
func StartT(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	c, err := Start(opts)
	if err != nil {
		if errors.Is(err, ErrNotBuilt) && os.Getenv(SkipVar) == "1" {
			t.Skipf("%v; skipped because %s=1", err, SkipVar)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s", c.LogTail(40))
		}
		c.Stop()
	})
	return c
}
