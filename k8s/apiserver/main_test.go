//go:build k8s

package apiserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/k8stest"
	"github.com/nri-armor/nri-armor/internal/testenv"
)

var cluster *k8stest.Cluster

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, &cluster)) }

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// kubectl runs kubectl against the cluster; stdin may be nil.
func kubectl(t testing.TB, stdin string, args ...string) (string, error) {
	t.Helper()
	var in []byte
	if stdin != "" {
		in = []byte(stdin)
	}
	out, errOut, err := cluster.Kubectl(ctxT(t, time.Minute), in, args...)
	if err != nil {
		return out + errOut, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut))
	}
	return out, nil
}

func mustKubectl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	out, err := kubectl(t, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// crdDir holds the generated CRDs.
func crdDir(t testing.TB) string { return filepath.Join(testenv.RepoRoot(t), "config", "crd") }

var crdsOnce sync.Once

// installCRDs applies the generated CRDs (config/crd) once and waits for
// the API server to serve them.
func installCRDs(t testing.TB) {
	t.Helper()
	k8stest.Require(t, cluster)
	crdsOnce.Do(func() {
		mustKubectl(t, "", "apply", "--server-side", "-f", crdDir(t))
		mustKubectl(t, "", "wait", "--for=condition=Established", "--timeout=60s",
			"crd/kubearmorpolicies.security.kubearmor.com", "crd/kubearmorclusterpolicies.security.kubearmor.com", "crd/kubearmorhostpolicies.security.kubearmor.com")
	})
}

var webhookOnce sync.Once

// startWebhook runs nri-armor-webhook, built from this tree, on loopback,
// with the webhook configurations the chart installs pointed at it by URL;
// it makes its certificate and puts its CA in them, as in a cluster. The
// nodes are AppArmor nodes whose agents run where nri-armor.dev/agent=true.
func startWebhook(t *testing.T) {
	t.Helper()
	installCRDs(t)
	webhookOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nri-armor-webhook-")
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "nri-armor-webhook")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/nri-armor/nri-armor/cmd/nri-armor-webhook").CombinedOutput(); err != nil {
			t.Fatalf("building nri-armor-webhook: %v\n%s", err, out)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		mustKubectl(t, webhookConfigs(addr), "apply", "-f", "-")
		logPath := filepath.Join(cluster.Dir, "nri-armor-webhook.log")
		logFile, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--listen="+addr, "--kubeconfig="+cluster.Kubeconfig, "--hosts=127.0.0.1",
			"--webhook-config=nri-armor", "--apparmor", "--seccomp-localhost", "--node-selector=nri-armor.dev/agent=true", "--log-level=debug")
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		webhookLog = logPath
		// Serving once the API server, through it, gets an answer.
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, err := kubectl(t, probePolicy, "apply", "--dry-run=server", "-f", "-")
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(logPath)
				t.Fatalf("the webhook does not answer within 60 s: %v\n%s", err, log)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// webhookLog is the webhook's log file, for failures.
var webhookLog string

const probePolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: probe, namespace: default}
spec:
  selector: {matchLabels: {app: probe}}
  process:
    matchPaths: [{path: /bin/probe}]
  action: Block
`

// webhookConfigs are the chart's webhook configurations, by URL instead of
// by Service (no Service routes here).
func webhookConfigs(addr string) string {
	return fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: nri-armor}
webhooks:
- name: policies.nri-armor.dev
  clientConfig: {url: "https://%[1]s/validate-policy"}
  rules:
  - apiGroups: [security.kubearmor.com]
    apiVersions: [v1]
    operations: [CREATE, UPDATE]
    resources: [kubearmorpolicies, kubearmorclusterpolicies, kubearmorhostpolicies]
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 10
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: nri-armor}
webhooks:
- name: pods.nri-armor.dev
  clientConfig: {url: "https://%[1]s/mutate-pod"}
  rules:
  - apiGroups: [""]
    apiVersions: [v1]
    operations: [CREATE]
    resources: [pods]
  namespaceSelector:
    matchExpressions:
    - {key: kubernetes.io/metadata.name, operator: In, values: [webhook-pods]}
  failurePolicy: Fail
  sideEffects: None
  reinvocationPolicy: IfNeeded
  admissionReviewVersions: [v1]
  timeoutSeconds: 10
`, addr)
}
