package plugin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	validator "github.com/containerd/nri/plugins/default-validator"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/nritest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

// helperEnv makes the test binary act as a container's process: it reads
// lines from stdin and answers each "raw" with the outcome of opening a raw
// socket ("ok" or the errno name) and each "chroot DIR" with the outcome of
// changing its root to DIR; it exits when stdin closes.
const helperEnv = "NRI_ARMOR_PLUGIN_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helper())
	}
	os.Exit(m.Run())
}

func helper() int {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if dir, ok := strings.CutPrefix(sc.Text(), "chroot "); ok {
			// A container's root of its own: /proc/<pid>/root is dir.
			if err := syscall.Chroot(dir); err != nil {
				fmt.Println(err)
				continue
			}
			fmt.Println("ok")
			continue
		}
		if sc.Text() != "raw" {
			fmt.Println("unknown op", sc.Text())
			continue
		}
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
		switch {
		case err == nil:
			syscall.Close(fd)
			fmt.Println("ok")
		case errors.Is(err, syscall.EPERM):
			fmt.Println("EPERM")
		default:
			fmt.Println(err)
		}
	}
	return 0
}

const policies = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-raw, namespace: shop}
spec:
  selector: {matchLabels: {app: armored}}
  network:
    matchProtocols:
    - protocol: raw
  action: Block
`

func testCatalog(t *testing.T) *policy.Catalog { return catalogOf(t, policies) }

// recorder is an enforce.Backend that records what it is asked to do.
type recorder struct {
	mu       sync.Mutex
	calls    []string
	applyErr error
}

func (r *recorder) Name() string            { return "recorder" }
func (r *recorder) Classes() []policy.Class { return policy.Classes }
func (r *recorder) Close() error            { return nil }

func (r *recorder) Apply(id uint64, rs *policy.RuleSet) (enforce.Report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("apply %d %s", id, rs.Digest))
	return enforce.Report{}, r.applyErr
}

func (r *recorder) Remove(id uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("remove %d", id))
	return nil
}

// take returns the calls since the last take.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func expectCalls(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	got := r.take()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("backend calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// runtime is the runtime side as containerd embeds it: the real NRI
// adaptation on a temporary socket, with the pods and containers it reports
// to plugins in Synchronize.
// runtime is the test runtime side (internal/nritest), with connect for a
// Plugin.
type runtime struct{ *nritest.Runtime }

func newRuntime(t *testing.T) *runtime { return &runtime{nritest.New(t)} }

// connect starts p's stub against the runtime, once synchronized.
func (r *runtime) connect(p *Plugin) stub.Stub {
	s, err := p.NewStub("", "", stub.WithSocketPath(r.Sock))
	if err != nil {
		panic(err)
	}
	r.Connect(s)
	return s
}

// proc is a process in a cgroup of its own, as a container's init is.
type proc struct {
	cgroupID uint64
	cmd      *exec.Cmd
	in       io.WriteCloser
	out      *bufio.Reader
}

// startProc starts the helper in a test cgroup of its own; both go when
// the test ends.
func startProc(t *testing.T) *proc {
	t.Helper()
	cg := testenv.NewCgroup(t)
	p := &proc{cgroupID: cg.ID}
	t.Cleanup(func() {
		if p.in != nil {
			p.in.Close()
		}
		if p.cmd != nil && p.cmd.Process != nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), helperEnv+"=1")
	cg.Into(p.cmd)
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.out = bufio.NewReader(stdout)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func newPlugin(t *testing.T, b enforce.Backend) *Plugin {
	t.Helper()
	p, err := New(Config{Catalog: testCatalog(t), Defaults: trusting("shop"), Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAnnotatedPodIsEnforcedAtStart: the lifecycle as containerd drives it.
// CreateContainer names the set on the container; StartContainer applies it
// to exactly the cgroup of the container's process; RemoveContainer
// releases that cgroup.
func TestAnnotatedPodIsEnforcedAtStart(t *testing.T) {
	testenv.RequireRoot(t)
	rt := newRuntime(t)
	b := &recorder{}
	p := newPlugin(t, b)
	rt.connect(p)

	sb := rt.RunPod("pod-1", "shop", "web-0", map[string]string{"app": "web"}, map[string]string{policy.AnnotationPolicies: "no-raw"})
	ctr, resp, err := rt.Create(sb, "ctr-1", "nginx")
	if err != nil {
		t.Fatal(err)
	}
	st, ok := p.containerState("ctr-1")
	if !ok || st.digest == "" || st.pod != "pod-1" || st.name != "nginx" {
		t.Fatalf("state after create: %+v %v", st, ok)
	}
	if got := resp.GetAdjust().GetAnnotations()[policy.AnnotationPolicySet]; got != st.digest {
		t.Fatalf("annotation %s = %q, want %q (adjust %v)", policy.AnnotationPolicySet, got, st.digest, resp.GetAdjust())
	}
	expectCalls(t, b) // nothing before the process exists

	pr := startProc(t)
	if err := rt.Start(sb, ctr, pr.pid()); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, b, fmt.Sprintf("apply %d %s", pr.cgroupID, st.digest))
	if st, _ := p.containerState("ctr-1"); st.cgroupID != pr.cgroupID {
		t.Fatalf("recorded cgroup %d, want %d", st.cgroupID, pr.cgroupID)
	}

	if err := rt.Remove(sb, ctr); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, b, fmt.Sprintf("remove %d", pr.cgroupID))
	if _, ok := p.containerState("ctr-1"); ok {
		t.Fatal("container still known after RemoveContainer")
	}
}

// TestUnselectedPodCostsNothing: no annotation and no selecting policy: no
// annotation on the container and no backend call at any point.
func TestUnselectedPodCostsNothing(t *testing.T) {
	testenv.RequireRoot(t)
	rt := newRuntime(t)
	b := &recorder{}
	p := newPlugin(t, b)
	rt.connect(p)

	for i, tc := range []struct {
		ns  string
		ann map[string]string
	}{
		{"shop", nil},
		{"other", nil}, // the policy lives in shop
		{"shop", map[string]string{policy.AnnotationPolicies: "no-raw", policy.AnnotationMode: "disabled"}},
	} {
		sb := rt.RunPod(fmt.Sprintf("pod-%d", i), tc.ns, "plain", map[string]string{"app": "plain"}, tc.ann)
		ctr, resp, err := rt.Create(sb, fmt.Sprintf("ctr-%d", i), "app")
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := resp.GetAdjust().GetAnnotations()[policy.AnnotationPolicySet]; ok {
			t.Fatalf("case %d: policy-set annotation %q on a container without policies", i, v)
		}
		pr := startProc(t)
		if err := rt.Start(sb, ctr, pr.pid()); err != nil {
			t.Fatal(err)
		}
		if err := rt.Remove(sb, ctr); err != nil {
			t.Fatal(err)
		}
		expectCalls(t, b)
	}
}

// TestSelectedByLabel: a policy whose selector matches the pod's labels
// applies without any annotation.
func TestSelectedByLabel(t *testing.T) {
	testenv.RequireRoot(t)
	rt := newRuntime(t)
	b := &recorder{}
	p := newPlugin(t, b)
	rt.connect(p)
	sb := rt.RunPod("pod-1", "shop", "db-0", map[string]string{"app": "armored"}, nil)
	ctr, resp, err := rt.Create(sb, "ctr-1", "db")
	if err != nil {
		t.Fatal(err)
	}
	d := resp.GetAdjust().GetAnnotations()[policy.AnnotationPolicySet]
	if d == "" {
		t.Fatal("no policy-set annotation for a label-selected pod")
	}
	pr := startProc(t)
	if err := rt.Start(sb, ctr, pr.pid()); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, b, fmt.Sprintf("apply %d %s", pr.cgroupID, d))
}

// TestUnknownPolicyRefusesContainer: a name no policy has fails
// CreateContainer, and the error the runtime sees names the annotation and
// its value.
func TestUnknownPolicyRefusesContainer(t *testing.T) {
	testenv.RequireRoot(t)
	rt := newRuntime(t)
	b := &recorder{}
	p := newPlugin(t, b)
	rt.connect(p)
	sb := rt.RunPod("pod-1", "shop", "web-0", nil, map[string]string{policy.AnnotationPolicies: "no-raw, no-such"})
	_, _, err := rt.Create(sb, "ctr-1", "nginx")
	if err == nil {
		t.Fatal("CreateContainer succeeded with an unknown policy name")
	}
	for _, want := range []string{policy.AnnotationPolicies, `"no-raw, no-such"`, `no policy named "no-such"`} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not contain %q", err, want)
		}
	}
	t.Logf("runtime sees: %v", err)
	if _, ok := p.containerState("ctr-1"); ok {
		t.Fatal("refused container is tracked")
	}
	expectCalls(t, b)
}

// TestApplyFailureRefusesStart: in enforce mode an error from the backend
// fails StartContainer at the runtime; in audit mode the start goes on.
func TestApplyFailureRefusesStart(t *testing.T) {
	testenv.RequireRoot(t)
	rt := newRuntime(t)
	b := &recorder{applyErr: errors.New("map full")}
	p := newPlugin(t, b)
	rt.connect(p)

	sb := rt.RunPod("pod-1", "shop", "web-0", nil, map[string]string{policy.AnnotationPolicies: "no-raw"})
	ctr, _, err := rt.Create(sb, "ctr-1", "nginx")
	if err != nil {
		t.Fatal(err)
	}
	pr := startProc(t)
	err = rt.Start(sb, ctr, pr.pid())
	if err == nil || !strings.Contains(err.Error(), "map full") || !strings.Contains(err.Error(), "shop/web-0") {
		t.Fatalf("StartContainer: %v, want the backend's error naming the pod", err)
	}
	t.Logf("runtime sees: %v", err)

	sb2 := rt.RunPod("pod-2", "shop", "web-1", nil, map[string]string{policy.AnnotationPolicies: "no-raw", policy.AnnotationMode: "audit"})
	ctr2, _, err := rt.Create(sb2, "ctr-2", "nginx")
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(sb2, ctr2, startProc(t).pid()); err != nil {
		t.Fatalf("audit mode: StartContainer: %v", err)
	}

	// A container without a process cannot be enforced: refused too.
	ctr3, _, err := rt.Create(sb, "ctr-3", "sidecar")
	if err != nil {
		t.Fatal(err)
	}
	b.applyErr = nil
	if err := rt.Start(sb, ctr3, 0); err == nil {
		t.Fatal("StartContainer without a pid succeeded")
	}
}

// TestSynchronizeReappliesExisting: a new plugin instance (nri-armor
// restarted) connecting to the same runtime rebuilds its state in
// Synchronize: it applies the set of every running container again to the
// right cgroup, knows the rest, and can release them later.
func TestSynchronizeReappliesExisting(t *testing.T) {
	testenv.RequireRoot(t)
	rt := newRuntime(t)
	b1 := &recorder{}
	p1 := newPlugin(t, b1)
	s1 := rt.connect(p1)

	sbA, ctrA, prA := rt.runStarted(t, "pod-a", "web-0", nil, map[string]string{policy.AnnotationPolicies: "no-raw"}, "ctr-a", "nginx")
	sbB := rt.RunPod("pod-b", "shop", "plain-0", map[string]string{"app": "plain"}, nil)
	ctrB, _, err := rt.Create(sbB, "ctr-b", "app")
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(sbB, ctrB, startProc(t).pid()); err != nil {
		t.Fatal(err)
	}
	stA, _ := p1.containerState("ctr-a")
	expectCalls(t, b1, fmt.Sprintf("apply %d %s", prA.cgroupID, stA.digest))

	// A second instance connects while the first is still there, then the
	// first goes away: the second must know everything by itself.
	b2 := &recorder{}
	p2 := newPlugin(t, b2)
	rt.connect(p2)
	expectCalls(t, b2, fmt.Sprintf("apply %d %s", prA.cgroupID, stA.digest))
	if st, ok := p2.containerState("ctr-a"); !ok || st != stA {
		t.Fatalf("rebuilt state %+v %v, want %+v", st, ok, stA)
	}
	if !p2.hasPod("pod-b") {
		t.Fatal("pod-b unknown after Synchronize")
	}
	s1.Stop()
	rt.Settle()

	// Synchronize is idempotent: once more gives the same state and the same call.
	if _, err := p2.Synchronize(context.Background(), []*api.PodSandbox{sbA, sbB}, []*api.Container{ctrA, ctrB}); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, b2, fmt.Sprintf("apply %d %s", prA.cgroupID, stA.digest))
	if st, _ := p2.containerState("ctr-a"); st != stA {
		t.Fatalf("state after second sync %+v, want %+v", st, stA)
	}

	if err := rt.Remove(sbA, ctrA); err != nil {
		t.Fatal(err)
	}
	if err := rt.Remove(sbB, ctrB); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, b2, fmt.Sprintf("remove %d", prA.cgroupID))
}

// TestCgroupID: the id is the inode of the cgroup2 directory the process is in.
func TestCgroupID(t *testing.T) {
	testenv.RequireRoot(t)
	root, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	pr := startProc(t)
	id, err := cgroups.IDOfPID("/proc", root, pr.pid())
	if err != nil {
		t.Fatal(err)
	}
	if id != pr.cgroupID {
		t.Fatalf("cgroup id %d, want %d", id, pr.cgroupID)
	}
	if _, err := cgroups.IDOfPID("/proc", root, 0); err == nil {
		t.Fatal("pid 0 gave a cgroup id")
	}
	if _, err := cgroups.IDOfPID("/proc", root, 1<<30); err == nil {
		t.Fatal("a missing pid gave a cgroup id")
	}
}

// TestSynchronizeForgetsVanished: a container that went away while the
// plugin was not listening (its RemoveContainer missed) is released by the
// next Synchronize; a pod removed with its containers still known releases
// them.
func TestSynchronizeForgetsVanished(t *testing.T) {
	testenv.RequireRoot(t)
	rt := newRuntime(t)
	b := &recorder{}
	p := newPlugin(t, b)
	rt.connect(p)
	ann := map[string]string{policy.AnnotationPolicies: "no-raw"}
	_, _, prA := rt.runStarted(t, "pod-a", "web-0", nil, ann, "ctr-a", "nginx")
	sbB, ctrB, prB := rt.runStarted(t, "pod-b", "web-1", nil, ann, "ctr-b", "nginx")
	b.take()

	// ctr-a and pod-a vanish without a word to the plugin.
	if _, err := p.Synchronize(context.Background(), []*api.PodSandbox{sbB}, []*api.Container{ctrB}); err != nil {
		t.Fatal(err)
	}
	st, _ := p.containerState("ctr-b")
	expectCalls(t, b, fmt.Sprintf("apply %d %s", prB.cgroupID, st.digest), fmt.Sprintf("remove %d", prA.cgroupID))
	if _, ok := p.containerState("ctr-a"); ok || p.hasPod("pod-a") {
		t.Fatal("vanished container or pod still known")
	}

	if err := rt.NRI.RemovePodSandbox(context.Background(), &api.RemovePodSandboxRequest{Pod: sbB}); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, b, fmt.Sprintf("remove %d", prB.cgroupID))
	if _, ok := p.containerState("ctr-b"); ok || p.hasPod("pod-b") {
		t.Fatal("container or pod still known after RemovePodSandbox")
	}
}

// catalogOf loads docs into a catalog, or fails the test.
func catalogOf(t testing.TB, docs string) *policy.Catalog {
	t.Helper()
	res := policy.LoadBytes("policies.yaml", []byte(docs))
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	c, err := policy.NewCatalog(res.Policies)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const editedNoRaw = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-raw, namespace: shop}
spec:
  network:
    matchProtocols:
    - protocol: raw
    - protocol: udp
  action: Block
`

// TestReapplySwapsRunningContainers: a policy edit changes the set of the
// running containers that use it (through the backend's atomic swap); a
// policy that disappears while a pod names it leaves that pod's container
// with its last set, and says so; events are observed.
func TestReapplySwapsRunningContainers(t *testing.T) {
	testenv.RequireRoot(t)
	rt := newRuntime(t)
	b := &recorder{}
	var events []string
	var mu sync.Mutex
	p, err := New(Config{Catalog: testCatalog(t), Defaults: policy.DefaultDefaults(), Backend: b,
		Observe: func(ev string, _ time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, fmt.Sprintf("%s %t", ev, err == nil))
		}})
	if err != nil {
		t.Fatal(err)
	}
	rt.connect(p)
	if !p.Synchronized() {
		t.Fatal("not synchronized after connecting")
	}
	_, _, pr := rt.runStarted(t, "pod-1", "web-0", nil, map[string]string{policy.AnnotationPolicies: "no-raw"}, "ctr-1", "nginx")
	before, _ := p.containerState("ctr-1")
	b.take()

	if err := p.Reapply(context.Background(), catalogOf(t, editedNoRaw)); err != nil {
		t.Fatal(err)
	}
	after, _ := p.containerState("ctr-1")
	if after.digest == before.digest || after.digest == "" {
		t.Fatalf("digest %q after the edit, was %q", after.digest, before.digest)
	}
	expectCalls(t, b, fmt.Sprintf("apply %d %s", pr.cgroupID, after.digest))

	// The policy goes away: the pod still names it; the set stays.
	err = p.Reapply(context.Background(), catalogOf(t, ""))
	if err == nil || !strings.Contains(err.Error(), `no policy named "no-raw"`) || !strings.Contains(err.Error(), "keeps policy set") {
		t.Fatalf("error %v", err)
	}
	if st, _ := p.containerState("ctr-1"); st.digest != after.digest {
		t.Fatalf("digest %q after the policy went, want the last one %q", st.digest, after.digest)
	}
	expectCalls(t, b)
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"Synchronize true", "RunPodSandbox true", "CreateContainer true", "StartContainer true"} {
		found := false
		for _, e := range events {
			found = found || e == want
		}
		if !found {
			t.Errorf("event %q not observed: %v", want, events)
		}
	}
}

// TestFailClosed: with the runtime configured as config/containerd-nri.toml
// says (NRI's default validator requiring nri-armor), no container is
// created while nri-armor is not connected — except in a pod that
// tolerates it (nri-armor's own) — and containers are created again once
// it is.
func TestFailClosed(t *testing.T) {
	testenv.RequireRoot(t)
	rt := &runtime{nritest.New(t, adaptation.WithDefaultValidator(&validator.DefaultValidatorConfig{
		Enable:                    true,
		RequiredPlugins:           []string{Name},
		TolerateMissingAnnotation: policy.AnnotationTolerateMissing,
	}))}
	sb := rt.RunPod("pod-1", "shop", "web-0", nil, nil)
	if _, _, err := rt.Create(sb, "ctr-1", "web"); err == nil || !strings.Contains(err.Error(), Name) {
		t.Fatalf("created without nri-armor: %v", err)
	}
	own := rt.RunPod("pod-armor", "kube-system", "nri-armor-x", nil, map[string]string{policy.AnnotationTolerateMissing: "true"})
	if _, _, err := rt.Create(own, "ctr-armor", "nri-armor"); err != nil {
		t.Fatalf("nri-armor's own pod, tolerating: %v", err)
	}
	rt.connect(newPlugin(t, &recorder{}))
	if _, _, err := rt.Create(sb, "ctr-2", "web"); err != nil {
		t.Fatalf("with nri-armor connected: %v", err)
	}
}

// runStarted sends RunPodSandbox (namespace shop), CreateContainer and
// StartContainer for a pod with one container on a process of its own,
// failing the test on any error.
func (r *runtime) runStarted(t *testing.T, podID, podName string, labels, ann map[string]string, ctrID, ctrName string) (*api.PodSandbox, *api.Container, *proc) {
	t.Helper()
	sb := r.RunPod(podID, "shop", podName, labels, ann)
	ctr, _, err := r.Create(sb, ctrID, ctrName)
	if err != nil {
		t.Fatal(err)
	}
	pr := startProc(t)
	if err := r.Start(sb, ctr, pr.pid()); err != nil {
		t.Fatal(err)
	}
	return sb, ctr, pr
}

// trusting is the node's default settings, with the pods of namespaces ns
// allowed to weaken them by annotation.
func trusting(ns ...string) policy.Defaults {
	d := policy.DefaultDefaults()
	d.WeakenNamespaces = ns
	return d
}
