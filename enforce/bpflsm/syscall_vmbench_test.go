//go:build vmtest

package bpflsm

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
)

func init() {
	// "fchmodloop N FILE": N fchmod calls by number; prints ns per call.
	extraHelpers["fchmodloop"] = func() int {
		n, _ := strconv.Atoi(os.Getenv("LOOP_N"))
		fd, err := syscall.Open(os.Getenv("LOOP_FILE"), syscall.O_RDONLY, 0)
		if err != nil {
			println(err.Error())
			return 1
		}
		start := time.Now()
		for i := 0; i < n; i++ {
			syscall.Syscall(syscall.SYS_FCHMOD, uintptr(fd), 0o644, 0)
		}
		os.Stdout.WriteString(strconv.FormatInt(time.Since(start).Nanoseconds()/int64(n), 10) + "\n")
		return 0
	}
}

// BenchmarkSyscallFromSource: what a fromSource syscall rule costs a call
// of the system call it names (fchmod) made by a process it does not
// match — another executable of the same container, and a process of a
// container without the rules — against the same call when no loaded set
// names the call (armor_sys is then not attached at all). Figures: ns per
// call (with run.sh --icount, instructions), and armor_sys's own time per
// run from the kernel's statistics.
func BenchmarkSyscallFromSource(b *testing.B) {
	root := testPinPath(b)
	cg2, err := cgroups.Mount()
	if err != nil {
		b.Fatal(err)
	}
	e, err := OpenEngine(Config{PinPath: root, MaxContainers: 64, MaxRuleEntries: 1 << 12, RingBytes: 1 << 16}, HooksLSM, cg2)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	self, _ := os.Executable()
	a, other := "/tmp/vmb/a", "/tmp/vmb/b"
	copyFile(b, self, a)
	copyFile(b, self, other)
	file := "/tmp/vmb/file"
	touch(b, file, 0)
	cg := testenv.NewCgroup(b)
	plain := testenv.NewCgroup(b)
	const n = 200000
	loop := func(c *testenv.Cgroup, exe string) float64 {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=fchmodloop", "LOOP_N="+strconv.Itoa(n), "LOOP_FILE="+file)
		c.Into(cmd)
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("loop: %v %s", err, out)
		}
		v, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		return v
	}
	stats, err := ebpf.EnableStats(uint32(0)) // BPF_STATS_RUN_TIME
	if err != nil {
		b.Fatal(err)
	}
	defer stats.Close()
	rounds := 4
	var none, setOnly, named, namedPlain, progNs, chmodNs []float64
	for r := 0; r < rounds; r++ {
		if len(e.SysHooks()) != 0 {
			b.Fatal("armor_sys attached with no set")
		}
		none = append(none, loop(cg, other))
		// The same container with a set that names no system call: what
		// being in a set costs fchmod without armor_sys.
		if _, err := e.Apply(cg.ID, policytest.Compile(b, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: bench-file, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  file:
    matchPaths:
    - path: /tmp/vmb/nothing
  action: Block
`)); err != nil {
			b.Fatal(err)
		}
		setOnly = append(setOnly, loop(cg, other))
		rs := policytest.Compile(b, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: bench, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  syscalls:
    matchSyscalls:
    - syscall: [fchmod]
      fromSource: [{path: /tmp/vmb/a}]
  action: Block
`)
		if _, err := e.Apply(cg.ID, rs); err != nil {
			b.Fatal(err)
		}
		st0 := e.ProgramStats()
		named = append(named, loop(cg, other))
		st1 := e.ProgramStats()
		for k, out := range map[string]*[]float64{armorProgArmorSys + "/path_chmod": &progNs, armorProgArmorPathChmod: &chmodNs} {
			if runs := st1[k].RunCount - st0[k].RunCount; runs > 0 {
				*out = append(*out, float64(st1[k].Runtime-st0[k].Runtime)/float64(runs))
			}
		}
		namedPlain = append(namedPlain, loop(plain, other))
		if err := e.Remove(cg.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(median(none), "ns/call-not-named")
	b.ReportMetric(median(setOnly), "ns/call-set-without-syscall-rules")
	b.ReportMetric(median(chmodNs), "ns/armor_path_chmod-run")
	b.ReportMetric(median(named), "ns/call-named-other-exe")
	b.ReportMetric(median(namedPlain), "ns/call-named-no-set")
	b.ReportMetric(median(progNs), "ns/armor_sys-run")
	b.Logf("fchmod ns per call, %d rounds of %d: no set %v; a set naming no syscall %v; named, other exe of the container %v; named, container without rules %v; armor_sys ns per run %v; armor_path_chmod ns per run %v",
		rounds, n, none, setOnly, named, namedPlain, progNs, chmodNs)
}
