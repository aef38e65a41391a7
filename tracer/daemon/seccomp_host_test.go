package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer/alert"
)

const seccompEnv = "NRI_ARMOR_TRACER_SECCOMP"

func init() {
	// The seccomp helper: install the filter nri-armor would set for
	// seccompPolicy (with seccompLogRefusals: SECCOMP_FILTER_FLAG_LOG) on
	// this thread, make the four calls, print "done" and stay until stdin
	// closes (the tracer finds its cgroup by its pid).
	if os.Getenv(seccompEnv) == "" {
		return
	}
	runtime.LockOSThread()
	ret := func(nr uintptr, action uint32) []unix.SockFilter {
		return []unix.SockFilter{
			{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: uint32(nr)},
			{Code: unix.BPF_RET | unix.BPF_K, K: action},
		}
	}
	f := []unix.SockFilter{{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}}
	f = append(f, ret(unix.SYS_GETCPU, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))...)
	for _, nr := range []uintptr{unix.SYS_GETPGID, unix.SYS_GETPPID, unix.SYS_UNAME} {
		f = append(f, ret(nr, unix.SECCOMP_RET_LOG)...)
	}
	f = append(f, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW})
	prog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println("no_new_privs:", err)
		os.Exit(1)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_LOG, uintptr(unsafe.Pointer(&prog))); e != 0 {
		fmt.Println("seccomp:", e)
		os.Exit(1)
	}
	var uts unix.Utsname
	_, _, cpu := unix.RawSyscall(unix.SYS_GETCPU, 0, 0, 0)
	unix.RawSyscall(unix.SYS_GETPGID, 0, 0, 0)
	unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
	unix.RawSyscall(unix.SYS_UNAME, uintptr(unsafe.Pointer(&uts)), 0, 0)
	fmt.Println("done", cpu == unix.EPERM)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

// seccompPolicy: getcpu blocked and getpgid audited (the filter decides
// both), getppid blocked for another program and uname for this one
// (fromSource: the filter logs them, the tracer decides).
const seccompPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: shop-seccomp, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  severity: 6
  syscalls:
    matchSyscalls:
    - syscall: [getcpu]
      action: Block
    - syscall: [getpgid]
      action: Audit
    - syscall: [getppid]
      fromSource: [{path: /usr/bin/other}]
      action: Block
    - syscall: [uname]
      fromSource: [{path: %s}]
      action: Block
`

// TestSeccompAlerts: on the host's kernel, through the audit log's
// multicast group and the whole tracer (Serve): the seccomp records of a
// process in a test cgroup published as a container become alerts — the
// refusal of a Block rule (the filter logs it under FLAG_LOG) and the log
// of an Audit rule by Seccomp, a fromSource Block rule matching the
// process by eBPF Monitor with unenforced=true — and a fromSource rule of
// another program none.
func TestSeccompAlerts(t *testing.T) {
	testenv.RequireRoot(t)
	if runtime.GOARCH != "amd64" {
		t.Fatalf("the helper's filter uses x86_64's system call numbers; %s has other ones (give the test its numbers before running it there)", runtime.GOARCH)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cg := testenv.NewCgroup(t)
	dir, err := state.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	rs := policytest.Compile(t, fmt.Sprintf(seccompPolicy, self))
	if err := dir.PutSet(rs); err != nil {
		t.Fatal(err)
	}
	plan, err := seccomp.PlanFor(rs, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	var unenforced []int
	for _, u := range plan.Unenforced {
		unenforced = append(unenforced, u.Rule.ID)
	}
	if err := dir.PutContainer(state.Container{CgroupID: cg.ID, ContainerID: "5ecc0", ContainerName: "app", PodName: "web-3",
		PodNamespace: "shop", PolicySet: rs.Digest, Mode: policy.ModeEnforce,
		Enforcers: map[policy.Class]string{policy.ClassSyscalls: seccomp.Enforcer}, Unenforced: unenforced}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.ProcRoot, cfg.StateDir, cfg.RetryInterval = "/proc", dir.Root(), 50*time.Millisecond
	cfg.BPFFS = t.TempDir() // no enforcement pins
	cfg.Telemetry, cfg.SeccompAudit = false, true
	srv := serve(t, cfg, nil)
	time.Sleep(200 * time.Millisecond) // the audit socket joins the group as Serve starts

	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), seccompEnv+"=1")
	cg.Into(cmd)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); strings.TrimSpace(line) != "done true" {
		t.Fatalf("helper: %q (want getcpu refused)", line)
	}
	byCall := map[string]alert.Alert{}
	testenv.WaitFor(t, "the three alerts", func() bool {
		for _, line := range strings.Split(strings.TrimSpace(get(t, srv.stream+alert.StreamPath+"?type=alert")), "\n") {
			var a alert.Alert
			if line != "" && json.Unmarshal([]byte(line), &a) == nil && a.Operation == alert.OpSyscall {
				byCall[a.Resource] = a
			}
		}
		return len(byCall) >= 3
	})
	time.Sleep(300 * time.Millisecond) // getppid's would come by now
	for _, line := range strings.Split(strings.TrimSpace(get(t, srv.stream+alert.StreamPath+"?type=alert")), "\n") {
		var a alert.Alert
		if line != "" && json.Unmarshal([]byte(line), &a) == nil && a.Operation == alert.OpSyscall {
			byCall[a.Resource] = a
		}
	}
	want := map[string]struct{ action, result, enforcer, data string }{
		"SYS_GETCPU":  {"Block", alert.ResultPermissionDenied, seccomp.Enforcer, ""},
		"SYS_GETPGID": {"Audit", alert.ResultPassed, seccomp.Enforcer, ""},
		"SYS_UNAME":   {"Block", alert.ResultPassed, alert.EnforcerMonitor, "unenforced=true"},
	}
	for call := range want {
		if _, ok := byCall[call]; !ok {
			t.Errorf("no alert for %s", call)
		}
	}
	for call, a := range byCall {
		w, ok := want[call]
		if !ok {
			t.Errorf("unexpected alert %+v", a)
			continue
		}
		if a.Type != alert.TypeMatchedPolicy || a.NamespaceName != "shop" || a.PodName != "web-3" || a.ContainerName != "app" ||
			a.PolicyName != "shop-seccomp" || a.Severity != "6" || a.Action != w.action || a.Result != w.result || a.Enforcer != w.enforcer ||
			!strings.Contains(a.Data, w.data) || a.HostPID != int64(cmd.Process.Pid) || a.ProcessName != self {
			t.Errorf("%s: alert %+v; want pod shop/web-3 container app, policy shop-seccomp, severity 6, %s %s by %s (%s), process %s (%d)",
				call, a, w.action, w.result, w.enforcer, w.data, self, cmd.Process.Pid)
		}
	}
}
