//go:build e2e

// Package e2e runs nri-armor against a real containerd, runc and crictl:
// what a user of a node sees. `make e2e` runs it (as root) after
// hack/e2e/setup.sh has installed the tools and built the local images.
//
// The tests share one private containerd (hack/e2e/containerd.sh, its own
// sockets and NRI socket) and start the real nri-armor binary against it
// with their own bpffs pin path, policy directory and metrics port, so that
// they never touch the node's nri-armor or other test runs. TestMain tears
// everything down, whatever happened: pods, containerd and its shims and
// mounts, the pins, the pods' cgroups.
package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/ocihook"
)

const (
	// podNamespace is the Kubernetes namespace of the test pods and of the
	// KubeArmorPolicy documents they name.
	podNamespace = "e2e"

	// In the VM (make vmtest-e2e, hack/vmtest/e2e.sh) there is neither a
	// checkout nor Go: these name the copied scripts' root (default: the
	// repository, "..") and the prebuilt nri-armor (default: go build).
	rootVar     = "NRI_ARMOR_E2E_ROOT"
	armorBinVar = "NRI_ARMOR_E2E_ARMOR_BIN"
)

// env is what TestMain set up; setupErr says why it could not be.
var (
	env      environment
	setupErr error
)

type environment struct {
	root      string // the repository
	tmp       string // this run's scratch directory, .cache/e2e/run/test
	bin       string // containerd, crictl … (hack/e2e/setup.sh)
	crictlCfg string
	// containerdSock is the private containerd's CRI socket (a kubelet's
	// containerRuntimeEndpoint).
	containerdSock string
	nriSock        string
	busybox        string // the local busybox image's name
	usrmerge       string // the local merged-/usr image's name (hack/e2e/setup.sh)
	armorBin       string // nri-armor built from this checkout
	tracerBin      string // armor-tracer built from this checkout
	hookBin        string // nri-armor-hook built from this checkout
	// gate holds what a node has in /opt/nri-armor/bin and
	// /run/nri-armor: the guard's hook (config/containerd-base-spec.json,
	// containerd.sh), its trust file and the gate socket.
	gate     string
	policies string // nri-armor's policy directory
	stateDir string // where nri-armor publishes state for armor-tracer
	// pinPath is nri-armor's bpffs directory in these tests, never the
	// node's /sys/fs/bpf/nri-armor: /sys/fs/bpf/nri-armor-e2e-ID.
	pinPath string
	// cgroupParent holds every test pod's cgroups: nri-armor-e2e-ID, ID
	// naming this checkout (hack/e2e/lib.sh); containerd.sh stop removes it.
	cgroupParent string
}

// criRuntime is a container runtime the tests run against: its CRI socket,
// NRI socket, crictl configuration, pod cgroup parent, and the script that
// starts and stops it. The private containerd (hack/e2e/containerd.sh) is
// every test's; the private CRI-O (hack/e2e/crio.sh) is the one of the
// subtests named crio (forEachRuntime).
type criRuntime struct {
	name      string // the subtest's name: containerd or crio
	script    string // hack/e2e/containerd.sh or hack/e2e/crio.sh
	criSock   string
	nriSock   string
	crictlCfg string
	// cgroupParent holds the runtime's test pods' cgroups.
	cgroupParent string
	log          string // the runtime's own log
	// setupErr says why the runtime could not be started.
	setupErr error
}

var (
	containerdRuntime = &criRuntime{name: "containerd", script: "hack/e2e/containerd.sh"}
	crioRuntime       = &criRuntime{name: "crio", script: "hack/e2e/crio.sh"}
)

// runtimeTests maps a forEachRuntime subtest's name to its runtime.
var runtimeTests sync.Map

// runtimeOf is the runtime of the test t (or of the forEachRuntime subtest
// it is part of): containerd unless it runs under a crio subtest.
func runtimeOf(t testing.TB) *criRuntime {
	name := t.Name()
	for {
		if rt, ok := runtimeTests.Load(name); ok {
			return rt.(*criRuntime)
		}
		i := strings.LastIndex(name, "/")
		if i < 0 {
			return containerdRuntime
		}
		name = name[:i]
	}
}

// runtimesFor are the runtimes the forEachRuntime test named test (its
// top-level name) runs against: both on the host; the VM's builds choose
// per test (runtimes_vme2e_test.go, runtimes_vm_test.go).
var runtimesFor = func(test string) []*criRuntime {
	return []*criRuntime{containerdRuntime, crioRuntime}
}

// forEachRuntime runs f as a subtest per runtime of runtimesFor, containerd
// and crio, each against its runtime: crictl, runPod and startArmor in f
// reach that runtime. The crio subtest fails when CRI-O did not start: it
// never skips.
func forEachRuntime(t *testing.T, f func(t *testing.T, rt *criRuntime)) {
	t.Helper()
	test, _, _ := strings.Cut(t.Name(), "/")
	for _, rt := range runtimesFor(test) {
		t.Run(rt.name, func(t *testing.T) {
			runtimeTests.Store(t.Name(), rt)
			f(t, rt)
		})
	}
}

// isCRIO says whether t runs against CRI-O.
func isCRIO(t testing.TB) bool { return runtimeOf(t) == crioRuntime }

func TestMain(m *testing.M) {
	code := 1
	if os.Geteuid() == 0 {
		setupErr = setup()
		if setupErr != nil {
			fmt.Fprintf(os.Stderr, "e2e: set-up failed: %v\n", setupErr)
		}
		code = m.Run()
		if err := teardown(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: teardown: %v\n", err)
			code = 1
		}
	} else {
		// Not root: each test fails, or skips when that is explicitly
		// allowed (testenv.RequireRoot); nothing to set up or tear down.
		code = m.Run()
	}
	os.Exit(code)
}

// need makes a test fail (or, not root and explicitly allowed, skip) when
// the environment is not there.
func need(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t)
	if setupErr != nil {
		t.Fatalf("e2e environment: %v (run hack/e2e/setup.sh first; make e2e does)", setupErr)
	}
	if rt := runtimeOf(t); rt == crioRuntime {
		// Started by the first test that needs it (a crio subtest), so
		// that a run without one never waits for CRI-O.
		crioOnce.Do(func() {
			crioRuntime.setupErr = setupCRIO(env.root)
			if crioRuntime.setupErr != nil {
				fmt.Fprintf(os.Stderr, "e2e: CRI-O set-up failed: %v\n", crioRuntime.setupErr)
			}
		})
		if rt.setupErr != nil {
			t.Fatalf("e2e environment: CRI-O: %v (run hack/e2e/setup.sh first; make e2e does)", rt.setupErr)
		}
	}
}

func setup() error {
	root, err := filepath.Abs(cmp.Or(os.Getenv(rootVar), ".."))
	if err != nil {
		return err
	}
	env.root = root
	vars, out, err := scriptEnv(root, containerdRuntime.script)
	if err != nil {
		return err
	}
	env.bin, env.crictlCfg, env.nriSock, env.busybox = vars["E2E_BIN"], vars["E2E_CRICTL_CONFIG"], vars["E2E_NRI_SOCK"], vars["E2E_BUSYBOX_IMAGE"]
	env.usrmerge, env.gate, env.containerdSock = vars["E2E_USRMERGE_IMAGE"], vars["E2E_GATE"], vars["E2E_CONTAINERD_SOCK"]
	env.pinPath, env.cgroupParent = "/sys/fs/bpf/nri-armor-e2e-"+vars["E2E_ID"], vars["E2E_CGROUP_PARENT"]
	if env.bin == "" || env.crictlCfg == "" || env.nriSock == "" || env.busybox == "" || env.usrmerge == "" || vars["E2E_ID"] == "" || env.cgroupParent == "" || vars["E2E_RUN"] == "" || env.gate == "" || env.containerdSock == "" {
		return fmt.Errorf("hack/e2e/containerd.sh env printed %q", out)
	}
	// A run that was killed may have left its pins, containerd and pods,
	// and its scratch directory (kept until now: its logs).
	if err := teardownLeftovers(); err != nil {
		return err
	}
	env.tmp = filepath.Join(vars["E2E_RUN"], "test")
	if err := os.RemoveAll(env.tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(env.tmp, 0o755); err != nil {
		return err
	}
	if _, err := command(root, "hack/e2e/containerd.sh", "start"); err != nil {
		return err
	}
	*containerdRuntime = criRuntime{name: "containerd", script: "hack/e2e/containerd.sh", criSock: env.containerdSock, nriSock: env.nriSock,
		crictlCfg: env.crictlCfg, cgroupParent: env.cgroupParent, log: filepath.Join(vars["E2E_RUN"], "containerd.log")}
	// In the VM the binaries come built (NRI_ARMOR_E2E_ARMOR_BIN, the
	// others beside it); on the host they are built from this checkout.
	if env.armorBin = os.Getenv(armorBinVar); env.armorBin == "" {
		env.armorBin = filepath.Join(env.tmp, "nri-armor")
		if _, err := command(root, "go", "build", "-o", env.tmp, "./cmd/nri-armor", "./cmd/nri-armor-hook", "./cmd/armor-tracer"); err != nil {
			return err
		}
	}
	env.tracerBin = filepath.Join(filepath.Dir(env.armorBin), "armor-tracer")
	env.hookBin = filepath.Join(filepath.Dir(env.armorBin), "nri-armor-hook")
	env.stateDir = filepath.Join(env.tmp, "state")
	env.policies = filepath.Join(env.tmp, "policies")
	// Before CRI-O starts (need, at the first crio subtest): CRI-O drops a
	// hook whose program does not exist when it reads its hooks directory
	// (crio.sh refuses to start it so).
	if err := provisionGuard(); err != nil {
		return err
	}
	return os.MkdirAll(env.policies, 0o755)
}

// scriptEnv reads what a runtime's script (hack/e2e/containerd.sh,
// crio.sh) prints for `env`: its KEY='value' lines, and the output itself.
func scriptEnv(root, script string) (map[string]string, string, error) {
	out, err := command(root, script, "env")
	if err != nil {
		return nil, out, err
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, "=")
		vars[k] = strings.Trim(v, "'")
	}
	return vars, out, nil
}

// crioOnce starts CRI-O once (need); a failure fails the crio subtests
// only.
var crioOnce sync.Once

// setupCRIO starts the private CRI-O (hack/e2e/crio.sh) and fills in
// crioRuntime.
func setupCRIO(root string) error {
	vars, out, err := scriptEnv(root, crioRuntime.script)
	if err != nil {
		return err
	}
	crioRuntime.criSock, crioRuntime.nriSock, crioRuntime.crictlCfg = vars["E2E_CRIO_SOCK"], vars["E2E_CRIO_NRI_SOCK"], vars["E2E_CRIO_CRICTL_CONFIG"]
	crioRuntime.cgroupParent, crioRuntime.log = vars["E2E_CRIO_CGROUP_PARENT"], vars["E2E_CRIO_LOG"]
	if crioRuntime.criSock == "" || crioRuntime.nriSock == "" || crioRuntime.crictlCfg == "" || crioRuntime.cgroupParent == "" {
		return fmt.Errorf("%s env printed %q", crioRuntime.script, out)
	}
	_, err = command(root, crioRuntime.script, "start")
	return err
}

// provisionGuard does what a node's provisioning does for the guard (the
// base spec's hook, docs/fail-closed.md): the hook binary is installed
// before any nri-armor ran, and no trust file is there yet (an earlier
// run's would trust what that run's nri-armor did).
func provisionGuard() error {
	if err := ocihook.InstallFrom(env.hookBin, filepath.Join(env.gate, "nri-armor-hook")); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(env.gate, ocihook.TrustFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// teardownLeftovers removes what an earlier run may have left: its
// containerd with its pods, shims, mounts and cgroups (containerd.sh stop),
// and its pins.
func teardownLeftovers() error {
	// Without the names (set-up failed early) there is nothing of ours to
	// find; guessing could reach the node's own pins (bpflsm.Unpin("") is the
	// default path).
	if env.root == "" || env.pinPath == "" {
		return nil
	}
	var errs []error
	// Whether or not this run started CRI-O: a killed run may have.
	if _, err := command(env.root, crioRuntime.script, "stop"); err != nil {
		errs = append(errs, err)
	}
	if _, err := command(env.root, "hack/e2e/containerd.sh", "stop"); err != nil {
		errs = append(errs, err)
	}
	// Unpinning detaches the cgroup programs pinned at the cgroup2 root.
	if err := bpflsm.Unpin(env.pinPath); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func teardown() error {
	armors.Lock()
	for _, a := range armors.running {
		a.stop()
	}
	armors.Unlock()
	err := teardownLeftovers()
	if env.tmp != "" {
		err = errors.Join(err, os.RemoveAll(env.tmp))
	}
	return err
}

// command runs a tool in dir and returns its stdout; an error carries its
// stderr.
func command(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// result is what a command printed and its exit status.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// crictl runs crictl against the test's runtime (runtimeOf: the private
// containerd, or CRI-O in a crio subtest). A non-zero exit is a result,
// not an error: tests assert on it.
func crictl(t testing.TB, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(env.bin, "crictl"), append([]string{"--config", runtimeOf(t).crictlCfg}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("crictl %v: %v", args, err)
	}
	return r
}

// mustCrictl runs crictl and fails the test unless it succeeds; it returns
// the trimmed stdout (an id, for runp and create).
func mustCrictl(t testing.TB, args ...string) string {
	t.Helper()
	r := crictl(t, args...)
	if r.code != 0 {
		t.Fatalf("crictl %s: %v", strings.Join(args, " "), r)
	}
	return strings.TrimSpace(r.stdout)
}

// pod is a running pod sandbox and the config it was created with (crictl
// create needs it again).
type pod struct {
	id, config, name, namespace string
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(env.tmp, "cfg-*.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// runPod starts a host-network pod (no CNI here) of namespace e2e with
// these annotations, removed when the test ends.
func runPod(t testing.TB, name string, annotations map[string]string) pod {
	t.Helper()
	return runPodIn(t, podNamespace, name, annotations)
}

// runPodIn is runPod in namespace ns.
func runPodIn(t testing.TB, ns, name string, annotations map[string]string) pod {
	t.Helper()
	return runPodOn(t, "", ns, name, annotations)
}

// runPodOn is runPodIn with containerd's runtime handler handler ("": the
// default, runc; runc-flags: the newer runc, hack/e2e/containerd.sh).
func runPodOn(t testing.TB, handler, ns, name string, annotations map[string]string) pod {
	t.Helper()
	return runPodLabelled(t, handler, ns, name, nil, annotations)
}

// runPodLabelled is runPodOn with the pod's labels.
func runPodLabelled(t testing.TB, handler, ns, name string, labels, annotations map[string]string) pod {
	t.Helper()
	name = name + "-" + randomSuffix()
	logs := filepath.Join(env.tmp, "logs", name)
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeJSON(t, map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": ns, "uid": name, "attempt": 0},
		"labels":        labels,
		"annotations":   annotations,
		"log_directory": logs,
		"linux": map[string]any{
			"cgroup_parent":    "/" + runtimeOf(t).cgroupParent,
			"security_context": map[string]any{"namespace_options": map[string]any{"network": 2}},
		},
	})
	args := []string{"runp", cfg}
	if handler != "" {
		args = []string{"runp", "--runtime", handler, cfg}
	}
	p := pod{id: mustCrictl(t, args...), config: cfg, name: name, namespace: ns}
	t.Cleanup(func() { crictl(t, "rmp", "-f", p.id) })
	return p
}

// createContainer creates a busybox container running cmd in p; crictl's
// failure is returned as a result for the tests that expect one.
func createContainer(t testing.TB, p pod, name string, cmd ...string) (string, result) {
	t.Helper()
	return createContainerWith(t, p, containerConfig(name, cmd))
}

// containerConfig is the CRI config of a busybox container running cmd.
func containerConfig(name string, cmd []string) map[string]any {
	return map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": env.busybox},
		"command":  cmd,
		"log_path": name + ".log",
	}
}

func createContainerWith(t testing.TB, p pod, config map[string]any) (string, result) {
	t.Helper()
	if isCRIO(t) {
		config = withKubeletLabels(p, config)
	}
	cfg := writeJSON(t, config)
	r := crictl(t, "create", p.id, cfg, p.config)
	if r.code != 0 {
		return "", r
	}
	return strings.TrimSpace(r.stdout), r
}

// withKubeletLabels is config with the labels a kubelet gives every
// container (kuberuntime's newContainerLabels). CRI-O tells NRI plugins a
// container's name from its io.kubernetes.container.name label alone (the
// spec annotation CRI-O copies it to; 1.36.3 server/nri-api.go), where
// containerd uses the CRI metadata: without it, every container is
// nameless to nri-armor.
func withKubeletLabels(p pod, config map[string]any) map[string]any {
	out := make(map[string]any, len(config)+1)
	for k, v := range config {
		out[k] = v
	}
	labels := map[string]string{}
	if l, ok := config["labels"].(map[string]string); ok {
		for k, v := range l {
			labels[k] = v
		}
	}
	name, _ := config["metadata"].(map[string]any)["name"].(string)
	labels["io.kubernetes.container.name"] = name
	labels["io.kubernetes.pod.name"] = p.name
	labels["io.kubernetes.pod.namespace"] = p.namespace
	labels["io.kubernetes.pod.uid"] = p.name
	out["labels"] = labels
	return out
}

// startContainer creates and starts a container and fails the test if
// either step fails.
func startContainer(t testing.TB, p pod, name string, cmd ...string) string {
	t.Helper()
	return startWith(t, p, containerConfig(name, cmd))
}

// startWith is startContainer with a whole CRI container config.
func startWith(t testing.TB, p pod, config map[string]any) string {
	t.Helper()
	id, r := createContainerWith(t, p, config)
	if id == "" {
		t.Fatalf("crictl create %v in pod %s: %v", config["metadata"], p.name, r)
	}
	mustCrictl(t, "start", id)
	return id
}

// sleeper is a container command that runs until the pod is removed.
var sleeper = []string{"sleep", "3600"}

// execIn runs a command in a running container (crictl exec) and returns
// its output and exit status.
func execIn(t testing.TB, id string, cmd ...string) result {
	t.Helper()
	return crictl(t, append([]string{"exec", id}, cmd...)...)
}

// armor is a running nri-armor process.
type armor struct {
	cmd     *exec.Cmd
	logPath string
	metrics string // host:port
	done    chan struct{}
}

var armors struct {
	sync.Mutex
	running []*armor
}

var metricsLine = regexp.MustCompile(`metrics and readiness on http://([0-9.:]+)/metrics`)

// startArmor starts the nri-armor binary against the test's runtime
// (runtimeOf) and waits until it is synchronized with it (/readyz), with extra flags
// after the environment's. It is killed when the test ends; its log is
// shown when the test failed.
func startArmor(t testing.TB, extra ...string) *armor {
	t.Helper()
	return startArmorEnv(t, nil, extra...)
}

// startArmorEnv is startArmor with variables added to nri-armor's
// environment (KEY=value).
func startArmorEnv(t testing.TB, environ []string, extra ...string) *armor {
	t.Helper()
	logPath := filepath.Join(env.tmp, fmt.Sprintf("nri-armor-%s.log", randomSuffix()))
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(env.armorBin,
		"-socket", runtimeOf(t).nriSock,
		"-policyDirs", env.policies,
		"-bpffs", env.pinPath,
		"-stateDir", env.stateDir,
		// The start gate's hook: nri-armor installs it there from beside
		// its own binary, where the guard (the base spec) runs it too,
		// and writes the trust file beside it.
		"-gateBinary", filepath.Join(env.gate, "nri-armor-hook"),
		"-gateSocket", filepath.Join(env.gate, "gate.sock"),
		// The kubelet's seccomp root, where the Localhost route writes
		// the profiles pods name (seccomp_test.go): the test's own.
		"-seccompProfileRoot", seccompRoot(),
		"-metricsAddress", "127.0.0.1:0",
		"-reconnectMax", "1s",
		"-logLevel", "debug")
	cmd.Args = append(cmd.Args, extra...)
	if environ != nil {
		cmd.Env = append(os.Environ(), environ...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// A test binary killed (timeout, ^C) takes nri-armor with it; the next
	// run removes what else it left (teardownLeftovers).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &armor{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(a.done) }()
	armors.Lock()
	armors.running = append(armors.running, a)
	armors.Unlock()
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("nri-armor log (%s):\n%s", logPath, b)
		}
	})
	// Generous: in the emulated VM on a busy machine, loading and
	// verifying the BPF programs has taken over 20 s.
	waitFor(t, "nri-armor to serve metrics", 60*time.Second, func() bool {
		select {
		case <-a.done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("nri-armor exited: %v\n%s", cmd.ProcessState, b)
		default:
		}
		b, _ := os.ReadFile(logPath)
		if m := metricsLine.FindSubmatch(b); m != nil {
			a.metrics = string(m[1])
			return true
		}
		return false
	})
	waitFor(t, "nri-armor to synchronize with containerd (/readyz)", 20*time.Second, func() bool {
		resp, err := http.Get("http://" + a.metrics + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return a
}

// kill ends nri-armor the hard way (SIGKILL), as a crash or an OOM kill
// would: no cleanup of its own runs.
func (a *armor) kill(t testing.TB) {
	t.Helper()
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatal("nri-armor did not exit after SIGKILL")
	}
}

func (a *armor) stop() {
	select {
	case <-a.done:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// metric returns the value of one series of nri-armor's /metrics, written
// as Prometheus prints it (labels sorted by name), 0 when it is absent.
func (a *armor) metric(t testing.TB, series string) float64 {
	t.Helper()
	return scrape(t, a.metrics, series)
}

// scrape returns the value of one series of the /metrics at addr.
func scrape(t testing.TB, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s: %s", resp.Status, body)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, value, ok := strings.Cut(line, " "); ok && name == series {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return 0
}

// wantMetric fails the test unless the series has the value.
func (a *armor) wantMetric(t testing.TB, series string, want float64) {
	t.Helper()
	if got := a.metric(t, series); got != want {
		t.Errorf("metric %s = %v, want %v", series, got, want)
	}
}

func waitFor(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writePolicy puts a policy file in nri-armor's policy directory (read at
// start; the store also follows edits).
func writePolicy(t testing.TB, name, content string) {
	t.Helper()
	p := testenv.WriteFile(t, env.policies, name, content)
	// The policy directory outlives the test: a policy left there (a host
	// policy above all) would apply in the tests after it.
	t.Cleanup(func() { os.Remove(p) })
}

// log is what nri-armor has logged so far.
func (a *armor) log(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startProcess starts cmd, a process the test runs beside the node (its
// output already pointed at logPath): the test binary's death kills it
// (Pdeathsig), and when the test ends it is stopped (SIGTERM, SIGKILL
// after grace) and, if the test failed, the last lines lines of its log
// are shown (0: all). done is closed when it exits.
func startProcess(t testing.TB, what string, cmd *exec.Cmd, logPath string, grace time.Duration, lines int) (done <-chan struct{}) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			text := string(b)
			if lines > 0 {
				text = tail(text, lines)
			}
			t.Logf("%s log (%s):\n%s", what, logPath, text)
		}
	})
	return exited
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
