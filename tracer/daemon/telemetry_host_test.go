package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer/alert"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

const activityEnv = "NRI_ARMOR_TRACER_ACTIVITY"

// secretSpellings are how the activity helper opens SECRET (in DIR, where
// the test made the directory x and the symlink link to SECRET): each is
// an alert naming SECRET.
func secretSpellings(dir, name string) []string {
	return []string{dir + "/" + name, dir + "//./" + name, dir + "/x/../" + name, dir + "/link", "./" + name}
}

func init() {
	// The activity helper: exec TOOL, open SECRET as secretSpellings and
	// relative to a directory fd, connect over TCP to ADDR, print "done",
	// and stay alive until stdin closes (so that the tracer can read its
	// /proc entry, and resolve its paths).
	if args := os.Getenv(activityEnv); args != "" {
		f := strings.Fields(args) // TOOL SECRET ADDR
		_ = exec.Command(f[0]).Run()
		dir, name := filepath.Split(f[1])
		dir = filepath.Clean(dir)
		_ = os.Chdir(dir)
		for _, p := range secretSpellings(dir, name) {
			if fh, err := os.Open(p); err == nil {
				fh.Close()
			}
		}
		// The directory fd stays open: the tracer resolves the event by it.
		if d, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			if fd, err := unix.Openat(d, name, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
				unix.Close(fd)
			}
		}
		if c, err := net.Dial("tcp4", f[2]); err == nil {
			c.Close()
		}
		fmt.Println("done")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(0)
	}
}

const auditPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: shop-audit, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  severity: 4
  tags: [PCI]
  message: watched
  process:
    matchPaths:
    - path: %[1]s/tool
  file:
    matchPaths:
    - path: %[1]s/secret
  network:
    matchProtocols:
    - protocol: tcp
  action: Audit
`

// TestTelemetryAlerts: on the host's own kernel, with the real telemetry
// programs and the whole tracer (Serve): a process in a test cgroup
// published as a container execs, opens and connects, and each Audit rule
// the kernel does not enforce (this node: none of these classes) gives an
// alert naming the pod, the container, the process and its parent, the
// resource, the policy, its severity, the action and "eBPF Monitor" —
// exactly one per open, whichever way the open spelled the file (//, /./,
// x/.., a symlink, relative to the cwd or to a directory fd). The same
// activity from an unpublished cgroup gives nothing.
func TestTelemetryAlerts(t *testing.T) {
	testenv.RequireRoot(t)
	work, err := filepath.EvalSymlinks(t.TempDir()) // the rules name the file itself
	if err != nil {
		t.Fatal(err)
	}
	tool, secret := filepath.Join(work, "tool"), filepath.Join(work, "secret")
	if err := os.Mkdir(filepath.Join(work, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(work, "link")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	testenv.WriteFile(t, work, "secret", "s")
	if err := os.WriteFile(tool, b, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	cg, other := testenv.NewCgroup(t), testenv.NewCgroup(t)
	dir, err := state.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	rs := policytest.Compile(t, fmt.Sprintf(auditPolicy, work))
	if err := dir.PutSet(rs); err != nil {
		t.Fatal(err)
	}
	if err := dir.PutContainer(state.Container{CgroupID: cg.ID, ContainerID: "c0ffee", ContainerName: "app", PodName: "web-2",
		PodNamespace: "shop", PodLabels: map[string]string{"app": "web"}, PolicySet: rs.Digest, Mode: policy.ModeEnforce}); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig()
	cfg.ProcRoot, cfg.StateDir, cfg.RetryInterval = "/proc", dir.Root(), 50*time.Millisecond
	cfg.BPFFS = filepath.Join(t.TempDir(), "no-nri-armor") // no enforcement pins: telemetry only
	cfg.TelemetryPinPath = fmt.Sprintf("/sys/fs/bpf/nri-armor-tracer-telemetry-%d", os.Getpid())
	t.Cleanup(func() { _ = telemetry.Unpin(cfg.TelemetryPinPath) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k, err := OpenTelemetry(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	srv := serve(t, cfg, k)
	testenv.WaitFor(t, "the tracer to watch the published cgroup", func() bool {
		w, err := k.Watched()
		return err == nil && w[cg.ID] != (policy.Visibility{})
	})

	self, _ := os.Executable()
	for _, c := range []*testenv.Cgroup{cg, other} {
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), activityEnv+"="+tool+" "+secret+" "+ln.Addr().String())
		c.Into(cmd)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { stdin.Close(); _ = cmd.Wait() }()
		if line, _ := bufio.NewReader(stdout).ReadString('\n'); strings.TrimSpace(line) != "done" {
			t.Fatalf("activity: %q", line)
		}
		if c == cg {
			defer checkActivityAlerts(t, srv.stream, cmd.Process.Pid, self, tool, secret, ln.Addr().String())
		}
	}
}

func checkActivityAlerts(t *testing.T, stream string, pid int, self, tool, secret, addr string) {
	t.Helper()
	var alerts []alert.Alert
	opens := len(secretSpellings("", "")) + 1 // and openat(dirfd)
	testenv.WaitFor(t, "the alerts (exec, opens, tcp)", func() bool {
		alerts = alerts[:0]
		for _, line := range strings.Split(strings.TrimSpace(get(t, stream+alert.StreamPath+"?type=alert")), "\n") {
			var a alert.Alert
			if line != "" && json.Unmarshal([]byte(line), &a) == nil && a.Type == alert.TypeMatchedPolicy {
				alerts = append(alerts, a)
			}
		}
		return len(alerts) >= opens+2
	})
	time.Sleep(300 * time.Millisecond) // anything more would be a duplicate
	alerts = alerts[:0]
	for _, line := range strings.Split(strings.TrimSpace(get(t, stream+alert.StreamPath+"?type=alert")), "\n") {
		var a alert.Alert
		if line != "" && json.Unmarshal([]byte(line), &a) == nil && a.Type == alert.TypeMatchedPolicy {
			alerts = append(alerts, a)
		}
	}
	count := map[string]int{}
	for _, a := range alerts {
		if a.NamespaceName != "shop" || a.PodName != "web-2" || a.ContainerName != "app" || a.PolicyName != "shop-audit" ||
			a.Severity != "4" || a.Action != "Audit" || a.Enforcer != alert.EnforcerMonitor || a.Message != "watched" || a.Tags != "PCI" {
			t.Errorf("alert %+v: want pod shop/web-2, container app, policy shop-audit, severity 4, Audit, %s", a, alert.EnforcerMonitor)
		}
		switch {
		case a.Operation == alert.OpProcess && a.Resource == tool:
			if a.ParentProcessName != self || a.HostPPID != int64(pid) {
				t.Errorf("exec alert %+v: want parent %s (pid %d)", a, self, pid)
			}
			count["exec"]++
		case a.Operation == alert.OpFile && a.Resource == secret:
			if a.ProcessName != self || a.HostPID != int64(pid) {
				t.Errorf("open alert %+v: want process %s (pid %d)", a, self, pid)
			}
			count["open"]++
		case a.Operation == alert.OpNetwork:
			count["network"]++
		default:
			t.Errorf("unexpected alert %+v", a)
		}
	}
	if count["exec"] != 1 || count["open"] != opens || count["network"] != 1 {
		t.Errorf("alerts by kind %v: want one exec, one per open (%d), one tcp socket; the unpublished cgroup none", count, opens)
	}
}
