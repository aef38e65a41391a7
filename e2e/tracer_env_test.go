//go:build e2e

package e2e

// armor-tracer in the end-to-end tests: started beside nri-armor on its
// pins and state, read through its stream as `armorctl logs` would.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/testenv"
)

// alert is what a user reads of armor-tracer's alerts (KubeArmor's keys).
type alert struct {
	Type          string
	Severity      string
	NamespaceName string
	PodName       string
	ContainerName string
	PolicyName    string
	Message       string
	Data          string
	Operation     string
	Resource      string
	ProcessName   string
	Enforcer      string
	Action        string
	Result        string
}

func (a alert) String() string {
	return fmt.Sprintf("%s %s/%s/%s %s %s by %s policy=%s %s → %s [%s]", a.Type, a.NamespaceName, a.PodName, a.ContainerName,
		a.Operation, a.Resource, a.ProcessName, a.PolicyName, a.Action, a.Result, a.Enforcer)
}

// tracer is a running armor-tracer.
type tracer struct {
	addr   string // its /metrics and /readyz (host:port)
	stream string // its /v1/logs (host:port, loopback)
	stdout string // the file its stdout (alerts, NDJSON) goes to
}

// startTracer starts armor-tracer on nri-armor's pins and state and waits
// until it reads the enforcement ring buffer (/readyz).
func startTracer(t *testing.T) *tracer {
	t.Helper()
	// Free ports, picked here: armor-tracer logs the addresses it was
	// given. The stream has a listener of its own, never the metrics'.
	suffix := randomSuffix()
	tr := &tracer{addr: testenv.FreeAddr(t), stream: testenv.FreeAddr(t), stdout: filepath.Join(env.tmp, "armor-tracer-"+suffix+".out")}
	logPath := filepath.Join(env.tmp, "armor-tracer-"+suffix+".log")
	out, err := os.Create(tr.stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(env.tracerBin,
		"-bpffs", env.pinPath,
		"-stateDir", env.stateDir,
		"-clusterName", "e2e",
		"-nodeName", "e2e-node",
		"-metricsAddress", tr.addr,
		"-streamAddress", tr.stream,
		"-retryInterval", "200ms")
	cmd.Stdout, cmd.Stderr = out, logf
	done := startProcess(t, "armor-tracer", cmd, logPath, 10*time.Second, 0)
	t.Cleanup(func() {
		if t.Failed() {
			tr.dump(t) // before it stops (cleanups run last first)
		}
	})
	waitFor(t, "armor-tracer to read nri-armor's ring buffer (/readyz)", 30*time.Second, func() bool {
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("armor-tracer exited: %v\n%s", cmd.ProcessState, b)
		default:
		}
		resp, err := http.Get("http://" + tr.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return tr
}

// dump logs everything armor-tracer streamed and the event counts of its
// metrics: what a missing alert is looked for in.
func (tr *tracer) dump(t *testing.T) {
	t.Helper()
	b, _ := os.ReadFile(tr.stdout)
	t.Logf("armor-tracer's stdout:\n%s", b)
	resp, err := http.Get("http://" + tr.addr + "/metrics")
	if err != nil {
		t.Logf("armor-tracer's /metrics: %v", err)
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "nri_armor_tracer_events") || strings.HasPrefix(l, "nri_armor_tracer_alerts") {
			t.Logf("armor-tracer metric: %s", l)
		}
	}
}

// alerts returns the alerts armor-tracer's stream holds for a pod, as
// `armorctl logs --namespace e2e --pod POD --type alert -o json` reads them.
func (tr *tracer) alerts(t *testing.T, pod string) []alert {
	t.Helper()
	q := url.Values{"namespace": {podNamespace}, "pod": {pod}, "type": {"alert"}}
	resp, err := http.Get("http://" + tr.stream + "/v1/logs?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/logs: %s", resp.Status)
	}
	return decodeAlerts(t, bufio.NewScanner(resp.Body))
}

func decodeAlerts(t *testing.T, sc *bufio.Scanner) []alert {
	t.Helper()
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var as []alert
	for sc.Scan() {
		var a alert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("an alert that is not JSON: %q: %v", sc.Text(), err)
		}
		as = append(as, a)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return as
}

// waitAlertLike waits for armor-tracer's alert of want's operation on
// want's resource in a pod's container, and checks that it says what want
// says besides: the pod's identity, the policy, the enforcer, the action
// and the result.
func (tr *tracer) waitAlertLike(t *testing.T, p pod, want alert) alert {
	t.Helper()
	var found *alert
	for deadline := time.Now().Add(20 * time.Second); found == nil; time.Sleep(100 * time.Millisecond) {
		for _, a := range tr.alerts(t, p.name) {
			if a.ContainerName == want.ContainerName && a.Operation == want.Operation && a.Resource == want.Resource {
				found = &a
				break
			}
		}
		if found == nil && time.Now().After(deadline) {
			tr.dump(t)
			t.Fatalf("no alert from armor-tracer for %s %s in %s/%s container %s within 20s", want.Operation, want.Resource, podNamespace, p.name, want.ContainerName)
		}
	}
	a := *found
	t.Logf("alert: %s", a)
	// The process and the event's data are the kernel's, not asserted.
	want.Type, want.NamespaceName, want.PodName, want.ProcessName, want.Data = "MatchedPolicy", podNamespace, p.name, a.ProcessName, a.Data
	if a != want {
		t.Errorf("alert for %s %s:\n got  %s\n want %s", want.Operation, want.Resource, a, want)
	}
	return a
}
