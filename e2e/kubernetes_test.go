//go:build e2e && !vme2e && !vmapparmor

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/k8stest"
	"github.com/nri-armor/nri-armor/internal/testenv"
)

// Host only: the VM's root has no API server (the one-node test brings
// one, with a kubelet).

const k8sPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: e2e-k8s-no-raw, namespace: e2e}
spec:
  selector: {matchLabels: {app: web}}
  network:
    matchProtocols: [{protocol: raw}]
  action: Block
`

// startCluster starts a real kube-apiserver and etcd (internal/k8stest,
// built by hack/k8s/build.sh; make e2e builds them) with nri-armor's CRDs
// and the e2e namespace.
func startCluster(t *testing.T) *k8stest.Cluster {
	t.Helper()
	c := k8stest.StartT(t, k8stest.Options{})
	kubectl := func(stdin string, args ...string) {
		t.Helper()
		var in []byte
		if stdin != "" {
			in = []byte(stdin)
		}
		if out, errOut, err := c.Kubectl(t.Context(), in, args...); err != nil {
			t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
	}
	kubectl("", "apply", "--server-side", "-f", filepath.Join(testenv.RepoRoot(t), "config", "crd"))
	kubectl("", "wait", "--for=condition=Established", "--timeout=60s", "crd/kubearmorpolicies.security.kubearmor.com")
	if err := c.Namespace(t.Context(), podNamespace, nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestKubernetesPolicy: nri-armor follows the API server on a real node
// (containerd, runc, the kernel): a KubeArmorPolicy applied with kubectl
// reaches a running pod it selects by label — its raw sockets are refused
// by the kernel, and armor-tracer's alert names the pod and the policy —
// and deleting it lets them through again. Both changes are counted in
// nri_armor_policy_update_seconds, from the watch event to the kernel.
func TestKubernetesPolicy(t *testing.T) {
	need(t)
	c := startCluster(t)
	a := startArmor(t, "-kubernetesPolicies", "-kubeconfig", c.Kubeconfig)
	tr := startTracer(t)
	p := runPodLabelled(t, "", podNamespace, "web", map[string]string{"app": "web"}, nil)
	id := startContainer(t, p, "main", sleeper...)
	other := runPodLabelled(t, "", podNamespace, "db", map[string]string{"app": "db"}, nil)
	otherID := startContainer(t, other, "main", sleeper...)
	wantOK(t, execIn(t, id, "nettool", "raw"), "raw socket before the policy", "ok: raw socket created")

	if out, errOut, err := c.Kubectl(t.Context(), []byte(k8sPolicy), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, errOut)
	}
	waitFor(t, "the policy to reach the running pod", 10*time.Second, func() bool {
		return execIn(t, id, "nettool", "raw").code != 0
	})
	wantDenied(t, execIn(t, id, "nettool", "raw"), "socket raw")
	wantOK(t, execIn(t, otherID, "nettool", "raw"), "raw socket in the pod the policy does not select", "ok: raw socket created")
	got := tr.waitAlertLike(t, p, alert{ContainerName: "main", Operation: "Network", Resource: "domain=AF_INET type=SOCK_RAW protocol=1",
		PolicyName: "e2e-k8s-no-raw", Severity: "", Enforcer: networkBackend(), Action: "Block", Result: "Permission denied"})
	if got.PodName != p.name || got.NamespaceName != podNamespace {
		t.Errorf("alert names pod %s/%s, want %s/%s", got.NamespaceName, got.PodName, podNamespace, p.name)
	}

	if out, errOut, err := c.Kubectl(t.Context(), nil, "delete", "ksp", "-n", podNamespace, "e2e-k8s-no-raw"); err != nil {
		t.Fatalf("kubectl delete: %v\n%s%s", err, out, errOut)
	}
	waitFor(t, "the deletion to reach the running pod", 10*time.Second, func() bool {
		return execIn(t, id, "nettool", "raw").code == 0
	})
	wantOK(t, execIn(t, id, "nettool", "raw"), "raw socket after kubectl delete", "ok: raw socket created")

	waitFor(t, "both changes in nri_armor_policy_update_seconds", 5*time.Second, func() bool {
		return a.metric(t, "nri_armor_policy_update_seconds_count") >= 2
	})
	n, sum := a.metric(t, "nri_armor_policy_update_seconds_count"), a.metric(t, "nri_armor_policy_update_seconds_sum")
	t.Logf("policy updates: %v, %s on average from the watch event to the kernel", n, time.Duration(sum/n*float64(time.Second)).Round(time.Microsecond))
	if within := a.metric(t, fmt.Sprintf(`nri_armor_policy_update_seconds_bucket{le=%q}`, "1")); within != n {
		t.Errorf("%v of %v policy updates took over a second from the watch event to the kernel", n-within, n)
	}
}
