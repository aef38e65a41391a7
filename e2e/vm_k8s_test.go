//go:build e2e && vmk8s

package e2e

// The one-node Kubernetes test (make k8s-node; hack/vmtest/e2e.sh with
// VME2E_K8S=1): in the QEMU VM, where BPF-LSM enforces, a real etcd and
// kube-apiserver (internal/k8stest), a real kubelet registering the node
// and running pods through the e2e's private containerd and runc, pod
// networking from the standard CNI plugins, nri-armor as the node agent
// watching KubeArmorPolicy objects, and armor-tracer. Everything is driven
// as a user drives a cluster: kubectl apply, run, exec and delete.
//
// No scheduler and no controller manager run: the pod names its node
// (spec.nodeName, what the scheduler would write), and the test creates
// the namespace's default service account and kube-root-ca.crt ConfigMap,
// which the controller manager would.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/k8stest"
	"github.com/nri-armor/nri-armor/internal/vmtest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// nodeName is the kubelet's name for the node (--hostname-override),
	// and its client certificate's user system:node:k8s-node.
	nodeName = "k8s-node"
	// nodeIP is the node's address, on lo: the kubelet refuses a loopback
	// address (127/8) as the node's, and the VM has no other interface.
	// kube-apiserver reaches the kubelet there (exec) without leaving the
	// VM.
	nodeIP = "10.87.0.1"
	// podCIDR is the CNI bridge's range (hack/e2e/containerd.sh).
	podCIDR = "10.88.0.0/16"

	k8sPolicyName = "web-no-apt"
	// k8sPolicy blocks the package manager in pods labelled app=web of
	// namespace e2e (podNamespace: armor-tracer's alerts are read there).
	k8sPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: ` + k8sPolicyName + `
  namespace: ` + podNamespace + `
spec:
  selector:
    matchLabels:
      app: web
  process:
    matchPaths:
    - path: /usr/bin/apt-get
  action: Block
`
)

// TestK8sNode: one real node. The kubelet registers it and it reports
// Ready; a KubeArmorPolicy applied with kubectl makes `kubectl exec` of
// apt-get in a pod labelled app=web fail with the kernel's refusal
// (BPF-LSM, EPERM: exit status 126 in a shell); armor-tracer's alert names
// the pod, its namespace and the policy; after `kubectl delete` of the
// policy the same exec runs.
func TestK8sNode(t *testing.T) {
	vmtest.RequireLSM(t, "bpf")
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// Where the time goes, emulated: each step's time since the start.
	begin := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(begin).Seconds(), what) }

	// The CNI bridge needs these (the root's modprobe has them, and
	// nothing else: hack/vmtest/e2e.sh); loading them here names the
	// problem when they are missing, where the bridge plugin would not.
	if out, err := exec.Command("modprobe", "-a", "bridge", "veth").CombinedOutput(); err != nil {
		t.Fatalf("modprobe bridge veth: %v: %s", err, out)
	}
	if out, err := exec.Command("ip", "addr", "add", nodeIP+"/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add %s dev lo: %v: %s", nodeIP, err, out)
	}

	dir := filepath.Join(env.tmp, "k8s")
	cluster := k8stest.StartT(t, k8stest.Options{
		Dir: dir,
		// Emulated without KVM, the API server takes a while to be ready.
		Timeout: 4 * time.Minute,
		APIServerArgs: []string{
			// exec and logs go to the kubelet at the node's InternalIP
			// (its Hostname resolves nowhere), authenticated with the
			// admin certificate, which the kubelet's webhook
			// authorizer lets through (system:masters). The kubelet's
			// serving certificate is self-signed: with no
			// --kubelet-certificate-authority it is not verified, as in
			// a cluster without serving-certificate bootstrap.
			"--kubelet-preferred-address-types=InternalIP",
			"--kubelet-client-certificate=" + filepath.Join(dir, "admin.crt"),
			"--kubelet-client-key=" + filepath.Join(dir, "admin.key"),
		},
	})
	step("API server ready")
	kubectl := func(args ...string) string {
		t.Helper()
		out, _, err := cluster.Kubectl(ctx, nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	kubectl("apply", "--server-side", "-f", filepath.Join(env.root, "config", "crd"))
	kubectl("wait", "--for=condition=Established", "--timeout=120s",
		"crd/kubearmorpolicies.security.kubearmor.com", "crd/kubearmorclusterpolicies.security.kubearmor.com", "crd/kubearmorhostpolicies.security.kubearmor.com")
	prepareNamespace(ctx, t, cluster)
	step("CRDs established, namespace e2e prepared")

	// nri-armor before the kubelet runs anything: containerd is
	// fail-closed and refuses containers while no nri-armor is connected.
	// The admin identity: the agent's least-privilege RBAC is the chart's,
	// tested in k8s/apiserver.
	a := startArmor(t, "-kubernetesPolicies", "-kubeconfig", cluster.Kubeconfig)
	tr := startTracer(t)
	step("nri-armor and armor-tracer ready")
	startKubelet(ctx, t, cluster, dir)
	step("kubelet listening")
	waitNodeReady(ctx, t, cluster)
	step("node Ready")

	applyPolicy(ctx, t, cluster)
	waitFor(t, "nri-armor to hold the policy object", 60*time.Second, func() bool {
		return a.metric(t, "nri_armor_kubernetes_policy_objects") == 1
	})
	step("nri-armor holds the policy")

	kubectl("run", "web", "-n", podNamespace, "--image="+env.busybox, "--image-pull-policy=Never", "--restart=Never",
		"--labels=app=web", `--overrides={"apiVersion":"v1","spec":{"nodeName":"`+nodeName+`"}}`,
		"--command", "--", "sleep", "3600")
	t.Cleanup(func() {
		// The pod's containers are removed by TestMain's teardown
		// (containerd.sh stop) in any case; deleting it is the kubelet's.
		_, _, _ = cluster.Kubectl(context.Background(), nil, "delete", "pod", "web", "-n", podNamespace, "--wait=false")
	})
	kubectl("wait", "--for=condition=Ready", "--timeout=180s", "-n", podNamespace, "pod/web")
	step("pod web Ready")
	// On the pod network of the CNI bridge (hack/e2e/containerd.sh), not
	// the node's.
	web, err := cluster.Clientset().CoreV1().Pods(podNamespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, podNet, _ := net.ParseCIDR(podCIDR); !podNet.Contains(net.ParseIP(web.Status.PodIP)) {
		t.Errorf("pod web has IP %q; want one of the CNI bridge's %s", web.Status.PodIP, podCIDR)
	}

	// The kernel refuses the exec: runc's exec of the binary itself, and
	// a shell's (busybox sh prints the kernel's message, status 126).
	direct := kubectlExec(ctx, t, cluster, "apt-get", "install", "x")
	if direct.code == 0 || !strings.Contains(direct.stderr+direct.stdout, denied) || strings.Contains(direct.stdout, "apt-get (fake)") {
		t.Errorf("kubectl exec web -- apt-get install x: %v; want a failure saying %q", direct, denied)
	}
	viaShell := kubectlExec(ctx, t, cluster, "sh", "-c", "apt-get install x")
	if viaShell.code != 126 || !strings.Contains(viaShell.stderr, "sh: apt-get: Operation not permitted") {
		t.Errorf("kubectl exec web -- sh -c 'apt-get install x': %v; want exit 126 and %q", viaShell, "sh: apt-get: Operation not permitted")
	}
	// What the policy does not name still runs.
	if r := kubectlExec(ctx, t, cluster, "cat", "/etc/passwd"); r.code != 0 || !strings.Contains(r.stdout, "root:") {
		t.Errorf("kubectl exec web -- cat /etc/passwd: %v; want it to run", r)
	}

	// armor-tracer's alert names the pod, its namespace, the container
	// and the KubeArmorPolicy (waitAlertLike checks namespace and pod).
	tr.waitAlertLike(t, pod{name: "web"}, alert{ContainerName: "web", Operation: "Process", Resource: "/usr/bin/apt-get",
		PolicyName: k8sPolicyName, Enforcer: "BPFLSM", Action: "Block", Result: "Permission denied"})

	step("exec refused, alert read")
	// kubectl delete of the policy: the same exec runs again, in the
	// running pod, once nri-armor has followed the deletion.
	kubectl("delete", "kubearmorpolicy", k8sPolicyName, "-n", podNamespace)
	var last result
	waitFor(t, "kubectl exec of apt-get to run after the policy's deletion", 60*time.Second, func() bool {
		last = kubectlExec(ctx, t, cluster, "apt-get", "install", "x")
		return last.code == 0
	})
	if !strings.Contains(last.stdout, "apt-get (fake): install x") {
		t.Errorf("kubectl exec web -- apt-get install x after the deletion: %v; want the fake apt-get's output", last)
	}
	step("exec runs after the policy's deletion")
	// And the node is still Ready after all that.
	waitNodeReady(ctx, t, cluster)
}

// prepareNamespace creates namespace e2e with what kube-controller-manager
// would add to it: the default service account (the ServiceAccount
// admission plugin refuses pods without it) and the kube-root-ca.crt
// ConfigMap (the kubelet mounts it into every pod's service-account
// volume).
func prepareNamespace(ctx context.Context, t *testing.T, c *k8stest.Cluster) {
	t.Helper()
	if err := c.Namespace(ctx, podNamespace, nil); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: podNamespace},
		Data: map[string]string{"ca.crt": string(c.CAData)}}
	if _, err := c.Clientset().CoreV1().ConfigMaps(podNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// applyPolicy is `kubectl apply` of k8sPolicy.
func applyPolicy(ctx context.Context, t *testing.T, c *k8stest.Cluster) {
	t.Helper()
	if _, _, err := c.Kubectl(ctx, []byte(k8sPolicy), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

// kubectlExec runs `kubectl exec web -- CMD` in namespace e2e; a non-zero
// exit is a result (kubectl passes on the command's status).
func kubectlExec(ctx context.Context, t *testing.T, c *k8stest.Cluster, cmd ...string) result {
	t.Helper()
	stdout, stderr, err := c.Kubectl(ctx, nil, append([]string{"exec", "-n", podNamespace, "web", "--"}, cmd...)...)
	r := result{stdout: stdout, stderr: stderr}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	t.Logf("kubectl exec web -- %s → %v", strings.Join(cmd, " "), r)
	return r
}

// startKubelet starts the kubelet as the node's agent of the cluster: the
// private containerd as its runtime (cgroupfs, as containerd's runc is
// configured), its own client certificate (system:node:k8s-node, checked
// by the Node authorizer and NodeRestriction), and the API server's
// requests authenticated by the cluster's CA and authorized by webhook,
// as kubeadm configures a kubelet. It is stopped when the test ends; its
// log is shown when the test failed.
func startKubelet(ctx context.Context, t *testing.T, c *k8stest.Cluster, dir string) {
	t.Helper()
	bin, err := k8stest.BinDir(k8stest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := c.UserKubeconfig("kubelet.kubeconfig", "system:node:"+nodeName, "system:nodes")
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
containerRuntimeEndpoint: unix://%[2]s
cgroupDriver: cgroupfs
failSwapOn: false
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[3]s
authorization:
  mode: Webhook
# No DNS in the VM: pods get no resolv.conf from the node.
resolvConf: ""
# The VM's root is a small image: the default thresholds (10%% of the
# disk free) would report disk pressure and evict the test's pod; and
# the local images can never be pulled again, so none is collected.
evictionHard:
  memory.available: 50Mi
  nodefs.available: 1%%
  imagefs.available: 1%%
  nodefs.inodesFree: 1%%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`, nodeIP, env.containerdSock, filepath.Join(dir, "ca.crt"))
	cfgPath := filepath.Join(dir, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "kubelet.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "kubelet"),
		"--config="+cfgPath,
		"--kubeconfig="+kubeconfig,
		"--hostname-override="+nodeName,
		"--node-ip="+nodeIP,
		"--root-dir="+filepath.Join(dir, "kubelet"),
		"--cert-dir="+filepath.Join(dir, "kubelet-pki"),
		"--v=2")
	cmd.Stdout, cmd.Stderr = logf, logf
	done := startProcess(t, "kubelet", cmd, logPath, 20*time.Second, 80)
	kubeletDone = done
	// The kubelet serves the API server's exec on the node's address.
	waitFor(t, "the kubelet to listen on "+nodeIP+":10250", 3*time.Minute, func() bool {
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("kubelet exited: %v\n%s", cmd.ProcessState, tail(string(b), 80))
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		default:
		}
		conn, err := net.DialTimeout("tcp", nodeIP+":10250", time.Second)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
}

// kubeletDone is closed when the kubelet exits.
var kubeletDone <-chan struct{}

// waitNodeReady waits until the kubelet has registered the Node and it
// reports Ready=True, as `kubectl get nodes` shows it.
func waitNodeReady(ctx context.Context, t *testing.T, c *k8stest.Cluster) {
	t.Helper()
	why := "not registered"
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		select {
		case <-kubeletDone:
			t.Fatal("the kubelet exited")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not Ready within 3m: %s", nodeName, why)
		}
		n, err := c.Clientset().CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		ready := false
		why = "no Ready condition"
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				why = fmt.Sprintf("Ready=%s %s: %s", cond.Status, cond.Reason, cond.Message)
				ready = cond.Status == corev1.ConditionTrue
			}
		}
		if ready {
			break
		}
	}
	out, _, _ := c.Kubectl(ctx, nil, "get", "nodes", "-o", "wide")
	t.Logf("node %s is Ready (%s):\n%s", nodeName, why, out)
}
