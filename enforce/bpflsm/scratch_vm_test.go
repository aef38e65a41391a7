//go:build vmtest

package bpflsm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

// The scratch race (bpf/enforce/match.h, struct scratch): two decisions on
// one CPU, one preempted halfway, must not share memory.

// requirePreemptFull fails the test unless the kernel runs preempt=full
// (run.sh --preempt full; make vmtest boots so): with Debian's default,
// voluntary, a BPF program is never preempted and the race cannot happen.
func requirePreemptFull(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/sys/kernel/debug/sched/preempt") // "none voluntary (full)"
	if err == nil && strings.Contains(string(b), "(full)") {
		return
	}
	// Without debugfs: the boot message of CONFIG_PREEMPT_DYNAMIC.
	buf := make([]byte, 1<<20)
	n, kerr := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if kerr == nil && strings.Contains(string(buf[:n]), "Dynamic Preempt: full") {
		return
	}
	t.Fatalf("the kernel is not preempt=full (sched/preempt %q, %v; boot with hack/vmtest/run.sh --preempt full)", b, err)
}

// raceResult is one racer's count of acts, by outcome.
type raceResult struct{ acts, ok, eperm, other int }

// raceAct is one act of a racer: an open of a file, or with "sock:" a
// socket of socketOps (sock:raw: a raw ICMP socket).
func raceAct(arg string) func() syscall.Errno {
	if name, ok := strings.CutPrefix(arg, "sock:"); ok {
		s := socketOps[name]
		return func() syscall.Errno {
			fd, _, errno := syscall.RawSyscall(syscall.SYS_SOCKET, uintptr(s[0]), uintptr(s[1]), uintptr(s[2]))
			if errno == 0 {
				syscall.Close(int(fd))
			}
			return errno
		}
	}
	p, _ := syscall.BytePtrFromString(arg)
	return func() syscall.Errno {
		fd, _, errno := syscall.Syscall(syscall.SYS_OPEN, uintptr(unsafe.Pointer(p)), syscall.O_RDONLY, 0)
		if errno == 0 {
			syscall.Close(int(fd))
		}
		return errno
	}
}

func init() {
	// race does each act of ARG (separated by '|', as raceAct takes
	// them) in turn, for NRI_ARMOR_RACE_MS, and prints how many
	// succeeded, were refused (EPERM) or failed otherwise.
	extraHelpers["race"] = func() int {
		var acts []func() syscall.Errno
		for _, a := range strings.Split(os.Getenv("NRI_ARMOR_LOOP_ARG"), "|") {
			acts = append(acts, raceAct(a))
		}
		end := time.Now().Add(time.Duration(envInt("NRI_ARMOR_RACE_MS", 1000)) * time.Millisecond)
		var r raceResult
		for time.Now().Before(end) {
			for _, act := range acts {
				r.acts++
				switch errno := act(); errno {
				case 0:
					r.ok++
				case syscall.EPERM:
					r.eperm++
				default:
					r.other++
				}
			}
		}
		fmt.Println(r.acts, r.ok, r.eperm, r.other)
		return 0
	}
}

// startPinned starts cmd with every thread of it on cpu: the child
// inherits the affinity of the thread that forks it.
func startPinned(t *testing.T, cmd *exec.Cmd, cpu int) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &old)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

// race runs one race helper in cg per list of acts, all at once on CPU 0,
// for d, and returns their counts.
func race(t *testing.T, cg *testCgroup, exe string, d time.Duration, files ...[]string) []raceResult {
	t.Helper()
	cmds := make([]*exec.Cmd, len(files))
	outs := make([]strings.Builder, len(files))
	for i, f := range files {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=race", "NRI_ARMOR_LOOP_ARG="+strings.Join(f, "|"),
			fmt.Sprintf("NRI_ARMOR_RACE_MS=%d", d.Milliseconds()))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		cg.Into(cmd)
		startPinned(t, cmd, 0)
		cmds[i] = cmd
	}
	res := make([]raceResult, len(files))
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("racer %d: %v (%s)", i, err, outs[i].String())
		}
		r := &res[i]
		if _, err := fmt.Sscan(outs[i].String(), &r.acts, &r.ok, &r.eperm, &r.other); err != nil {
			t.Fatalf("racer %d: %q", i, outs[i].String())
		}
	}
	return res
}

// raceTree makes a directory whose path is about 2,900 bytes long (so that
// every decision under it is a long walk, long enough to be preempted
// halfway), holding the blocked file and the allowed ones; each allowed one
// has a second name, so that no open of it is memoized (memo.h) and each
// is decided in full.
func raceTree(t *testing.T, root string) (blocked string, allowed []string) {
	t.Helper()
	dir := root
	for i := 0; i < 14; i++ {
		dir = filepath.Join(dir, fmt.Sprintf("%02d%s", i, strings.Repeat("r", 200)))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	blocked = filepath.Join(dir, "blocked")
	touch(t, blocked, 0)
	for i := 0; i < 4; i++ {
		p := filepath.Join(dir, fmt.Sprintf("allowed%d", i))
		touch(t, p, 0)
		os.Remove(p + ".link")
		if err := os.Link(p, p+".link"); err != nil {
			t.Fatal(err)
		}
		allowed = append(allowed, p)
	}
	return blocked, allowed
}

// scratchRace is TestBypassLSM/scratch-race-preempt: in one enforced cgroup,
// on one CPU of a preempt=full kernel, A does a blocked act and B allowed
// ones, in a loop for raceTime: with a scratch shared per CPU, a decision
// preempted halfway would be finished with the other's state, and A's Block
// become an Allow (then memoized, for an open). Every act of A must be
// refused, none of B's; outside the cgroup the blocked file opens. Three
// rounds: A opens a blocked file and B allowed ones, all with long walks,
// with the engine's default scratch slots (a preempted decision keeps its
// slot, the other takes the next) and with one slot (every contended
// decision takes the task's own scratch, scratch_spill); then the cgroup
// socket programs with one slot (a contended decision borrows another
// CPU's), A making ICMP sockets under an icmp Block and B UDP ones. Each
// round must have met contention (a decision finding its CPU's first slot
// taken), or the race was not exercised.
func scratchRace(t *testing.T, e *Engine, app string) {
	requirePreemptFull(t)
	raceTime := time.Duration(envInt("NRI_ARMOR_RACE_MS", 4000)) * time.Millisecond
	blocked, allowed := raceTree(t, "/tmp/vmrace")
	fileSet := policytest.Compile(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: race, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  file:
    matchPaths:
    - path: `+blocked+`
  action: Block
`)
	netSet := policytest.Compile(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: race-net, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  network:
    matchProtocols:
    - protocol: icmp
  action: Block
`)
	root, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	oneSlot := func(hooks Hooks, name string) *Engine {
		pin := fmt.Sprintf("/sys/fs/bpf/nri-armor-test-%d-%s", os.Getpid(), name)
		e, err := OpenEngine(Config{PinPath: pin, MaxContainers: 16, MaxRuleEntries: 1 << 10, RingBytes: 1 << 16, ScratchSlots: 1}, hooks, root)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close(); Unpin(pin) })
		return e
	}
	for _, c := range []struct {
		name string
		e    *Engine
		set  *policy.RuleSet
		a, b []string
	}{
		{fmt.Sprintf("%d slots", e.cfg.ScratchSlots), e, fileSet, []string{blocked}, allowed},
		{"1 slot", oneSlot(HooksLSM, "one-slot"), fileSet, []string{blocked}, allowed},
		{"cgroup programs, 1 slot", oneSlot(HooksCgroupNet, "cgroup-one-slot"), netSet, []string{"sock:raw"}, []string{"sock:udp"}},
	} {
		cg := testenv.NewCgroup(t)
		if _, err := c.e.Apply(cg.ID, c.set); err != nil {
			t.Fatal(err)
		}
		before := c.e.ScratchStats()
		res := race(t, cg, app, raceTime, c.a, c.b)
		after := c.e.ScratchStats()
		a, b := res[0], res[1]
		t.Logf("%s, %v on one CPU: A made %d decisions (%d refused, %d allowed, %d other errors), B %d (%d allowed, %d refused, %d other); scratch contended %d times, spilled %d, refused %d",
			c.name, raceTime, a.acts, a.eperm, a.ok, a.other, b.acts, b.ok, b.eperm, b.other,
			after.Contended-before.Contended, after.Spilled-before.Spilled, after.Refused-before.Refused)
		if a.ok != 0 || a.other != 0 || a.eperm == 0 {
			t.Errorf("%s: A's blocked acts: %d allowed, %d failed otherwise, want every one refused", c.name, a.ok, a.other)
		}
		if b.eperm != 0 || b.other != 0 || b.ok == 0 {
			t.Errorf("%s: B's allowed acts: %d refused, %d failed otherwise, want every one allowed", c.name, b.eperm, b.other)
		}
		if after.Contended == before.Contended {
			t.Errorf("%s: no decision met a taken scratch: the race was not exercised", c.name)
		}
		c.e.Remove(cg.ID)
	}
	if got := batch(t, nil, app, 0, []string{"read " + blocked, "raw"}); strings.Join(got, " ") != "ok ok" {
		t.Errorf("outside, the blocked file and an ICMP socket: %v, want ok ok", got)
	}
}
