//go:build k8s

package apiserver

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nri-armor/nri-armor/internal/k8stest"
	"github.com/nri-armor/nri-armor/k8s/agents"
)

// TestLogsKubernetes: armorctl logs --kubernetes finds the agent pods
// through the API server and says which node's stream it cannot read —
// no agent at all, an agent not running, one whose node does not answer —
// instead of printing fewer alerts without a word. (Reading a stream
// through a kubelet's port-forward needs a node: the one-node test.)
func TestLogsKubernetes(t *testing.T) {
	k8stest.Require(t, cluster)
	bin := filepath.Join(t.TempDir(), "armorctl")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nri-armor/nri-armor/cmd/armorctl").CombinedOutput(); err != nil {
		t.Fatalf("building armorctl: %v\n%s", err, out)
	}
	logs := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.CommandContext(ctxT(t, time.Minute), bin, append([]string{"logs", "--kubernetes", "--kubeconfig", cluster.Kubeconfig}, args...)...)
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return errOut.String(), code
	}

	if errOut, code := logs(); code != 1 || !strings.Contains(errOut, "no nri-armor agent pod in namespace nri-armor with labels "+agents.DefaultSelector) {
		t.Fatalf("no agent pods: exit %d, %s", code, errOut)
	}
	if err := cluster.Namespace(ctxT(t, time.Minute), agents.DefaultNamespace, nil); err != nil {
		t.Fatal(err)
	}
	pods := cluster.Clientset().CoreV1().Pods(agents.DefaultNamespace)
	for _, node := range []string{"node-a", "node-b"} {
		_, err := pods.Create(ctxT(t, time.Minute), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "agent-" + node, Labels: map[string]string{
				"app.kubernetes.io/name": "nri-armor", "app.kubernetes.io/instance": "nri-armor", "app.kubernetes.io/component": "agent"}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "armor-tracer", Image: "nri-armor:test"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	// No kubelet here: both stay Pending. --node picks one.
	errOut, code := logs("--node", "node-a")
	if code != 1 || !strings.Contains(errOut, `agent pod nri-armor/agent-node-a on node "node-a" is Pending, not running`) || strings.Contains(errOut, "node-b") {
		t.Fatalf("a pending agent: exit %d, %s", code, errOut)
	}
	// Running, as its kubelet would say; but the node is not there to
	// forward the port.
	p, err := pods.Get(ctxT(t, time.Minute), "agent-node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	if _, err := pods.UpdateStatus(ctxT(t, time.Minute), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	errOut, code = logs("--node", "node-a")
	if code != 1 || !strings.Contains(errOut, "armorctl logs: agent pod nri-armor/agent-node-a (node node-a): ") {
		t.Fatalf("an agent whose node does not answer: exit %d, %s", code, errOut)
	}
	t.Logf("armorctl logs --kubernetes --node node-a: %s", strings.TrimSpace(errOut))
	if errOut, code = logs("--node", "node-a", "--server", "http://127.0.0.1:9483"); code != 2 || !strings.Contains(errOut, "give one") {
		t.Fatalf("--kubernetes with --server: exit %d, %s", code, errOut)
	}
}
