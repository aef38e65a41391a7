//go:build e2e && !vme2e && !vmapparmor && !vmk8s

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

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
func startCluster(t testing.TB) *k8stest.Cluster {
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

// BenchmarkKubernetesScale: the whole agent with 10,000 KubeArmorPolicies
// across 1,000 namespaces from a real API server, on a real node: its
// resident memory (VmRSS after the first catalog and after the updates,
// VmHWM its peak) against the same agent with none, and, with containers running under some of
// them, the time from each update's watch event to every running
// container's kernel state having it (nri_armor_policy_update_seconds, one
// update at a time: the figure of each from nri-armor's log). make
// e2e-k8s-bench; -benchtime 1x.
func BenchmarkKubernetesScale(b *testing.B) {
	need(b)
	const namespaces, perNS, pods, updates = 1000, 10, 20, 200
	c := startCluster(b)
	// VmRSS, VmHWM (its peak) and RssFile (the binary's pages among them)
	rss := func(a *armor) (rss, hwm, file float64) {
		b.Helper()
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
		if err != nil {
			b.Fatal(err)
		}
		for line := range strings.Lines(string(status)) {
			if f := strings.Fields(line); len(f) == 3 {
				v, _ := strconv.ParseFloat(f[1], 64)
				switch f[0] {
				case "VmRSS:":
					rss = v / 1024
				case "VmHWM:":
					hwm = v / 1024
				case "RssFile:":
					file = v / 1024
				}
			}
		}
		return rss, hwm, file
	}
	empty := startArmor(b, "-kubernetesPolicies", "-kubeconfig", c.Kubeconfig)
	time.Sleep(2 * time.Second) // settled
	rss0, hwm0, _ := rss(empty)
	empty.stop()

	start := time.Now()
	if err := k8stest.Populate(b.Context(), c, namespaces, perNS); err != nil {
		b.Fatal(err)
	}
	b.Logf("created %d policies in %d namespaces in %v", namespaces*perNS, namespaces, time.Since(start))
	start = time.Now()
	// As the chart deploys it: with its Go memory limit.
	limit := chartValue(b, "agent", "goMemoryLimit")
	a := startArmorEnv(b, []string{"GOMEMLIMIT=" + limit}, "-kubernetesPolicies", "-kubeconfig", c.Kubeconfig)
	b.Logf("GOMEMLIMIT=%s (the chart's agent.goMemoryLimit)", limit)
	b.Logf("nri-armor ready with the 10,000 policies %v after its start", time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	rss1, hwm1, file1 := rss(a)
	heap := a.metric(b, "go_memstats_heap_inuse_bytes") / (1 << 20)
	b.ReportMetric(rss1, "rss-MiB")
	b.ReportMetric(hwm1, "peak-rss-MiB")
	b.ReportMetric(rss0, "rss-no-policies-MiB")
	b.ReportMetric(heap, "heap-inuse-MiB")
	b.Logf("nri-armor: RSS %.1f MiB (peak %.1f; %.1f MiB of it the binary's pages), heap in use %.1f MiB with the 10,000 policies; RSS %.1f MiB (peak %.1f) with none", rss1, hwm1, file1, heap, rss0, hwm0)

	// Pods under policies of namespace scale-0000 (app0 … app9, two each).
	ns := k8stest.ScaleNamespace(0)
	for i := range pods {
		p := runPodLabelled(b, "", ns, "scale", map[string]string{"app": fmt.Sprintf("app%d", i%perNS)}, nil)
		startContainer(b, p, "main", sleeper...)
	}
	cfg := rest.CopyConfig(c.Config)
	dyn := dynamic.NewForConfigOrDie(cfg)
	policies := dyn.Resource(k8stest.KubeArmorPolicies).Namespace(ns)
	updated := regexp.MustCompile(`running containers updated in (\S+), (\S+) after the change was seen`)
	var lat []time.Duration
	for i := range updates {
		before := a.metric(b, "nri_armor_policy_update_seconds_count")
		u, err := policies.Get(b.Context(), fmt.Sprintf("p%d", i%perNS), metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		// A change of the rules (not only of a tag): the kernel's sets change.
		_ = unstructured.SetNestedField(u.Object, []string{"Audit", "Block"}[i/perNS%2], "spec", "action")
		if _, err := policies.Update(b.Context(), u, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		waitFor(b, "the update in nri_armor_policy_update_seconds", 10*time.Second, func() bool {
			return a.metric(b, "nri_armor_policy_update_seconds_count") > before
		})
		m := updated.FindAllStringSubmatch(a.log(b), -1)
		d, err := time.ParseDuration(m[len(m)-1][2])
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, d)
	}
	rss2, hwm2, _ := rss(a)
	b.ReportMetric(rss2, "rss-after-updates-MiB")
	b.Logf("nri-armor after the updates: RSS %.1f MiB (peak %.1f)", rss2, hwm2)
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	b.ReportMetric(float64(p50.Microseconds())/1000, "update-p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "update-p99-ms")
	b.Logf("%d updates of a policy over %d running containers, watch event to kernel: p50 %v, p99 %v, max %v", updates, pods/perNS, p50, p99, lat[len(lat)-1])
}

// chartValue reads a string from the Helm chart's values.yaml.
func chartValue(t testing.TB, path ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.root, "charts", "nri-armor", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	s, ok := v.(string)
	if !ok || s == "" {
		t.Fatalf("values.yaml: %s is %v, not a string", strings.Join(path, "."), v)
	}
	return s
}
