package daemon

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/internal/nritest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
)

const noRaw = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-raw, namespace: shop}
spec:
  network:
    matchProtocols:
    - protocol: raw
  action: Block
`

// runtimeEnv makes the test binary a runtime side of its own (NRI's
// adaptation on DIR/nri.sock) until it is killed: killing it is a runtime
// restart as the daemon sees one.
const runtimeEnv = "NRI_ARMOR_TEST_RUNTIME"

func TestMain(m *testing.M) {
	if dir := os.Getenv(runtimeEnv); dir != "" {
		sync := func(ctx context.Context, cb adaptation.SyncCB) error { _, err := cb(ctx, nil, nil); return err }
		update := func(context.Context, []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) { return nil, nil }
		r, err := adaptation.New("containerd", "v2.4.2", sync, update,
			adaptation.WithSocketPath(filepath.Join(dir, "nri.sock")),
			adaptation.WithPluginPath(filepath.Join(dir, "plugins")),
			adaptation.WithPluginConfigPath(filepath.Join(dir, "conf.d")))
		if err == nil {
			err = r.Start()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		select {}
	}
	os.Exit(m.Run())
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDaemon runs the daemon as a node would: against a runtime (NRI's own
// adaptation) it connects to, with policies from a directory (one file
// invalid), metrics and readiness; a pod naming a policy is enforced in the
// kernel at StartContainer; when the runtime restarts, the daemon connects
// again by itself and synchronizes.
func TestDaemon(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	testenv.WriteFile(t, dir, "policies/no-raw.yaml", noRaw)
	testenv.WriteFile(t, dir, "policies/bad.yaml", "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: bad}\nspec:\n  file: {matchPaths: [{path: relative}]}\n")
	rtDir := filepath.Join(dir, "runtime")
	os.Mkdir(rtDir, 0o755)
	// The first runtime is a process of its own, so that it can die.
	first := exec.Command(os.Args[0], "-test.run=^$")
	first.Env = append(os.Environ(), runtimeEnv+"="+rtDir)
	first.Stderr = os.Stderr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { first.Process.Kill(); first.Wait() }()
	sock := filepath.Join(rtDir, "nri.sock")
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	pin := fmt.Sprintf("/sys/fs/bpf/nri-armor-daemon-test-%d", os.Getpid())
	defer bpflsm.Unpin(pin)
	cfg := Default()
	cfg.Socket = sock
	cfg.PolicyDirs = []string{filepath.Join(dir, "policies")}
	cfg.MetricsAddress = "127.0.0.1:0"
	cfg.BPFFS = pin
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.MaxContainers = 64
	cfg.MaxRuleEntries = 1024
	cfg.ReconnectMax = 200 * time.Millisecond
	log := logrus.New()
	log.SetOutput(io.Discard)
	d, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.ServeMetrics(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + d.MetricsAddr()
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz before Synchronize: %d, want 503", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for i := 0; ; i++ {
		if code, _ := get(t, base+"/readyz"); code == http.StatusOK {
			break
		}
		if i == 500 {
			t.Fatal("readyz never 200: the daemon did not synchronize with the runtime")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The runtime restarts (it dies, a new one listens on the same socket):
	// the daemon reconnects by itself and is synchronized again.
	first.Process.Kill()
	first.Wait()
	rt := nritest.NewAt(t, rtDir)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	rt.WaitSynced(wctx)

	// A pod naming the policy, its container's process in a real cgroup.
	cg := testenv.NewCgroup(t)
	sleep := exec.Command("sleep", "60")
	cg.Into(sleep)
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	sb := rt.RunPod("pod-1", "shop", "web-0", nil, map[string]string{policy.AnnotationPolicies: "no-raw"})
	ctr, resp, err := rt.Create(sb, "ctr-1", "web")
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAdjust().GetAnnotations()[policy.AnnotationPolicySet] == "" {
		t.Fatal("no policy-set annotation")
	}
	if err := rt.Start(sb, ctr, sleep.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if got := enforcedCgroups(d)[cg.ID]; got == "" {
		t.Fatalf("cgroup %d not enforced: %v", cg.ID, enforcedCgroups(d))
	}
	// Published for armor-tracer under the configured directory.
	sd, err := state.Open(cfg.StateDir, false)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := sd.Container(cg.ID)
	if err != nil || rec.PodName != "web-0" || rec.PolicySet != resp.GetAdjust().GetAnnotations()[policy.AnnotationPolicySet] || rec.Enforcers[policy.ClassNetwork] != "CgroupBPF" {
		t.Fatalf("state record %+v %v", rec, err)
	}
	_, m := get(t, base+"/metrics")
	for _, want := range []string{
		`nri_armor_nri_events_total{event="StartContainer",result="ok"} 1`,
		`nri_armor_nri_events_total{event="Synchronize",result="ok"} 2`,
		`nri_armor_containers_enforced{backend="CgroupBPF",class="network"} 1`,
		`nri_armor_policy_files_rejected_total 1`,
		`nri_armor_policy_sets_loaded 1`,
		`nri_armor_state_publish_errors_total 0`,
		`nri_armor_kernel_scratch_contended_total{outcome="refused"} 0`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The policy file is edited: the running container gets the new set.
	before := enforcedCgroups(d)[cg.ID]
	testenv.WriteFile(t, dir, "policies/no-raw.yaml", strings.Replace(noRaw, "- protocol: raw", "- protocol: raw\n    - protocol: udp", 1))
	waitFor(t, "the edited policy to reach the running container", func() bool {
		got := enforcedCgroups(d)[cg.ID]
		return got != "" && got != before
	})
	edited := enforcedCgroups(d)[cg.ID]
	waitFor(t, "the record to name the edited set", func() bool {
		rec, err := sd.Container(cg.ID)
		return err == nil && rec.PolicySet != "" && rec.PolicySet != resp.GetAdjust().GetAnnotations()[policy.AnnotationPolicySet]
	})
	// A bad edit: rejected, counted, and the last good version stays.
	testenv.WriteFile(t, dir, "policies/no-raw.yaml", noRaw+"    recurive: true\n")
	waitFor(t, "the bad edit to be counted", func() bool {
		_, m := get(t, base+"/metrics")
		return strings.Contains(m, "nri_armor_policy_files_rejected_total 2\n")
	})
	if got := enforcedCgroups(d)[cg.ID]; got != edited {
		t.Fatalf("set %s after a bad edit, want the last good %s", got, edited)
	}

	// An unknown policy: the container is refused with the annotation named.
	sb2 := rt.RunPod("pod-2", "shop", "web-1", nil, map[string]string{policy.AnnotationPolicies: "nope"})
	if _, _, err := rt.Create(sb2, "ctr-2", "web"); err == nil || !strings.Contains(err.Error(), `annotation nri-armor.dev/policies="nope"`) {
		t.Fatalf("unknown policy: %v", err)
	}

	cancel()
	if err := <-done; err != nil && err != context.Canceled {
		t.Fatalf("Run: %v", err)
	}
}

func TestConfigStrict(t *testing.T) {
	dir := t.TempDir()
	p := testenv.WriteFile(t, dir, "c.yaml", "socket: /x.sock\nfailmode: open\n")
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "failmode") {
		t.Fatalf("unknown key: %v", err)
	}
	p = testenv.WriteFile(t, dir, "d.yaml", "defaultPosture: file=deny\n")
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "file=deny") {
		t.Fatalf("bad posture: %v", err)
	}
	p = testenv.WriteFile(t, dir, "e.yaml", "socket: /x.sock\nfailMode: open\n")
	c, err := Load(p)
	if err != nil || c.Socket != "/x.sock" || c.FailMode != "open" || c.PluginName != "nri-armor" {
		t.Fatalf("%+v %v", c, err)
	}
	// The shipped default config is the built-in default.
	c, err = Load(filepath.Join(testenv.RepoRoot(t), "config", "nri-armor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c) != fmt.Sprint(Default()) {
		t.Fatalf("config/nri-armor.yaml differs from Default():\n%+v\n%+v", c, Default())
	}
}

// enforcedCgroups is what the daemon's engine enforces, by cgroup id (the
// digest of each one's set).
func enforcedCgroups(d *Daemon) map[uint64]string {
	return d.Backend.(*bpflsm.Backend).Engine().Cgroups()
}

// A Go memory limit under what the agent holds after its start is
// named in a warning (the chart's agent.goMemoryLimit); none or a roomy
// one says nothing.
func TestMemoryLimitWarning(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	for _, tc := range []struct {
		limit int64
		warn  bool
	}{{math.MaxInt64, false}, {1 << 40, false}, {1 << 16, true}} {
		log, hook := logtest.NewNullLogger()
		debug.SetMemoryLimit(tc.limit)
		debug.FreeOSMemory() // as the daemon does before: the live heap is measured
		checkMemoryLimit(log)
		warned := len(hook.Entries) == 1 && strings.Contains(hook.LastEntry().Message, "raise it (the chart's agent.goMemoryLimit")
		if warned != tc.warn || len(hook.Entries) > 1 {
			t.Errorf("limit %d: log %v, want a warning: %v", tc.limit, hook.AllEntries(), tc.warn)
		}
	}
}
