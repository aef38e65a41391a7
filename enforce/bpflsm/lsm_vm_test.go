//go:build vmtest

package bpflsm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/internal/cgroups"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/internal/vmtest"
	"github.com/nri-armor/nri-armor/policy"
)

// These tests run inside the QEMU VM (make vmtest), where BPF-LSM works:
// real processes in a real cgroup open, write and execute real files, and
// the kernel's verdicts and events are compared with policy.Decide.

// lsmFixture is an engine with LSM hooks, a test cgroup and a reader.
type lsmFixture struct {
	e  *Engine
	cg *testCgroup
	rd *ringbuf.Reader
}

func newLSMFixture(t *testing.T) *lsmFixture {
	t.Helper()
	vmtest.RequireLSM(t, "bpf")
	root, err := cgroups.Mount()
	if err != nil {
		t.Fatal(err)
	}
	e, err := OpenEngine(Config{PinPath: testPinPath(t), MaxContainers: 256, MaxRuleEntries: 1 << 18, RingBytes: 1 << 20, WakeupBytes: 1}, HooksLSM, root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	rd, err := ringbuf.NewReader(e.EventsMap())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return &lsmFixture{e: e, cg: testenv.NewCgroup(t), rd: rd}
}

// batch runs one helper process (as exe, with uid) in cg that performs ops,
// one per line ("read PATH", "write PATH", "exec PATH", "raw", "tcp" …), and
// returns one result per op: "ok" or an errno name.
func batch(t *testing.T, cg *testCgroup, exe string, uid int, ops []string) []string {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=batch")
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if cg != nil {
		cg.Into(cmd)
	}
	if uid != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}
	}
	cmd.Stdin = strings.NewReader(strings.Join(ops, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper %s: %v (%s)", exe, err, out)
	}
	res := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(res) != len(ops) {
		t.Fatalf("helper %s: %d results for %d ops: %q", exe, len(res), len(ops), res)
	}
	return res
}

// bypassOps are more batch operations, taking the rest of the line.
var bypassOps = map[string]func(arg string) error{}

func init() {
	extraHelpers["batch"] = func() int { return runBatch(os.Stdin) }
}

// runBatch is the helper side of batch.
func runBatch(in io.Reader) int {
	runBatchTo(in, os.Stdout)
	return 0
}

// runBatchTo performs the ops read from in, writing one result a line to out.
func runBatchTo(in io.Reader, out io.Writer) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		op, arg, _ := strings.Cut(sc.Text(), " ")
		var err error
		switch op {
		case "read", "write":
			flag := os.O_RDONLY
			if op == "write" {
				flag = os.O_WRONLY
			}
			var f *os.File
			if f, err = os.OpenFile(arg, flag, 0); err == nil {
				f.Close()
			}
		case "exec":
			err = exec.Command(arg).Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = nil // it ran
			}
		default:
			if f := bypassOps[op]; f != nil {
				err = f(arg)
			} else {
				err = helperOp(op)
			}
		}
		if err != nil {
			fmt.Fprintln(out, errName(err))
		} else {
			fmt.Fprintln(out, "ok")
		}
	}
}

// copyFile copies the test binary (or any file) to dst, executable.
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func touch(t testing.TB, path string, uid int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// drain reads every pending event.
func drain(t *testing.T, rd *ringbuf.Reader) []events.Event {
	t.Helper()
	var out []events.Event
	for {
		rd.SetDeadline(time.Now().Add(300 * time.Millisecond))
		rec, err := rd.Read()
		if err != nil {
			return out
		}
		ev, err := events.DecodeEvent(rec.RawSample)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
}

// probeOp is one operation and what policy.Decide says of it.
type probeOp struct {
	op   string // as batch takes it
	ev   policy.Event
	want policy.Decision
}

// checkAgainstDecide runs ops from exe as uid in the cgroup, and checks that
// each result and each event is what Decide says: EPERM exactly for Block,
// one event for each Audit and Block, carrying the deciding rule.
func checkAgainstDecide(t *testing.T, f *lsmFixture, rs *policy.RuleSet, exe string, uid int, ops []probeOp) {
	t.Helper()
	lines := make([]string, len(ops))
	for i, o := range ops {
		lines[i] = o.op
	}
	drain(t, f.rd)
	got := batch(t, f.cg, exe, uid, lines)
	var wantEvents []probeOp
	for i, o := range ops {
		wantRes := "ok"
		if o.want.Action == policy.Block {
			wantRes = "EPERM"
		}
		if got[i] != wantRes {
			t.Errorf("%s (exe %s uid %d): kernel %s, Decide %s by %s", o.op, exe, uid, got[i], o.want.Action, describe(o.want))
		}
		if o.want.Action != policy.Allow {
			wantEvents = append(wantEvents, o)
		}
	}
	evs := drain(t, f.rd)
	// The helper's own start (exec of exe, its runtime's opens) may add
	// events; match the expected ones in order among them.
	j := 0
	for _, ev := range evs {
		if j < len(wantEvents) && eventMatches(ev, wantEvents[j]) {
			j++
		}
	}
	if j < len(wantEvents) {
		var got []string
		for _, ev := range evs {
			got = append(got, fmt.Sprintf("%s %s %q rule %d posture %t", ev.Class, ev.Action, ev.Resource, ev.RuleID, ev.Posture))
		}
		w := wantEvents[j]
		t.Errorf("missing event for %s: want %s by %s; events:\n%s", w.op, w.want.Action, describe(w.want), strings.Join(got, "\n"))
	}
}

func describe(d policy.Decision) string {
	switch {
	case d.Rule != nil:
		return fmt.Sprintf("rule %d (%s)", d.Rule.ID, d.Rule.Describe())
	case d.DefaultPosture:
		return "DefaultPosture"
	}
	return "no rule"
}

func eventMatches(ev events.Event, o probeOp) bool {
	if ev.Action != o.want.Action || ev.Posture != o.want.DefaultPosture || ev.Class != o.ev.Class {
		return false
	}
	if o.want.Rule != nil && ev.RuleID != uint32(o.want.Rule.ID) {
		return false
	}
	if o.ev.Class == policy.ClassFile || o.ev.Class == policy.ClassProcess {
		return ev.Resource == o.ev.Path
	}
	return true
}

func fileOp(rs *policy.RuleSet, path string, write bool, exe string, uid, owner int) probeOp {
	op := "read " + path
	if write {
		op = "write " + path
	}
	ev := policy.Event{Class: policy.ClassFile, Path: path, Write: write, Source: exe, UID: uint32(uid), Owner: uint32(owner)}
	return probeOp{op: op, ev: ev, want: policy.Decide(rs, ev)}
}

func execOp(rs *policy.RuleSet, path string, exe string) probeOp {
	ev := policy.Event{Class: policy.ClassProcess, Path: path, Source: exe}
	return probeOp{op: "exec " + path, ev: ev, want: policy.Decide(rs, ev)}
}

const vmPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: vm, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  severity: 5
  process:
    matchPaths:
    - path: /tmp/vmt/bin/blocked
    - execname: audited-tool
      action: Audit
  file:
    matchPaths:
    - path: /tmp/vmt/secret
    - path: /tmp/vmt/audited
      action: Audit
    - path: /tmp/vmt/mine
      ownerOnly: true
    matchDirectories:
    - dir: /tmp/vmt/etc/
      recursive: true
      readOnly: true
    - dir: /tmp/vmt/flat/
    - dir: /tmp/vmt/guarded/
    - dir: /tmp/vmt/guarded/
      action: Allow
      fromSource:
      - path: /tmp/vmt/bin/trusted
    - dir: %s
      recursive: true
    - dir: /
      action: Audit
    matchPatterns:
    - pattern: /tmp/vmt/pat/*.key
    - pattern: /tmp/vmt/logs/**
      action: Audit
    - pattern: /tmp/vmt/q/file?
  action: Block
`

// TestLSMFileAndProcess: every modifier, from processes in a test cgroup,
// against Decide; and processes outside the cgroup untouched.
func TestLSMFileAndProcess(t *testing.T) {
	f := newLSMFixture(t)
	self, _ := os.Executable()
	// A directory deeper than 20 components and longer than 200 bytes.
	var deep strings.Builder
	deep.WriteString("/tmp/vmt/deep")
	for i := 0; i < 24; i++ {
		fmt.Fprintf(&deep, "/component-%02d", i)
	}
	deepDir := deep.String() + "/"
	rs := policytest.Compile(t, fmt.Sprintf(vmPolicy, deepDir))

	trusted, other := "/tmp/vmt/bin/trusted", "/tmp/vmt/bin/other"
	copyFile(t, self, trusted)
	copyFile(t, self, other)
	copyFile(t, "/bin/busybox", "/tmp/vmt/bin/blocked")
	copyFile(t, "/bin/busybox", "/tmp/vmt/bin/audited-tool")
	copyFile(t, "/bin/busybox", "/tmp/vmt/bin/fine")
	deepFile := deepDir + "a/b/c/file-beyond-200-bytes"
	patFiles := []string{"/tmp/vmt/pat/a.key", "/tmp/vmt/pat/a.keys", "/tmp/vmt/pat/sub/b.key", "/tmp/vmt/logs/x/y.log",
		"/tmp/vmt/q/file1", "/tmp/vmt/q/file12"}
	for _, p := range append([]string{"/tmp/vmt/secret", "/tmp/vmt/audited", "/tmp/vmt/etc/conf", "/tmp/vmt/etc/sub/conf",
		"/tmp/vmt/flat/x", "/tmp/vmt/flat/sub/y", "/tmp/vmt/guarded/token", "/tmp/vmt/free", deepFile}, patFiles...) {
		touch(t, p, 0)
	}
	touch(t, "/tmp/vmt/mine", 1000)
	if len(deepFile) < 300 || strings.Count(deepFile, "/") < 25 {
		t.Fatalf("deep path too short: %d bytes", len(deepFile))
	}
	if _, err := f.e.Apply(f.cg.ID, rs); err != nil {
		t.Fatal(err)
	}

	for _, exe := range []string{trusted, other} {
		for _, uid := range []int{0, 1000} {
			var ops []probeOp
			for _, p := range append([]string{"/tmp/vmt/secret", "/tmp/vmt/audited", "/tmp/vmt/etc/conf", "/tmp/vmt/etc/sub/conf",
				"/tmp/vmt/flat/x", "/tmp/vmt/flat/sub/y", "/tmp/vmt/guarded/token", "/tmp/vmt/free", "/tmp/vmt/mine", deepFile, "/tmp/vmt/etc", "/"}, patFiles...) {
				for _, w := range []bool{false, true} {
					owner := 0
					if p == "/tmp/vmt/mine" {
						owner = 1000
					}
					if (p == "/tmp/vmt/etc" || p == "/") && w {
						continue // a directory cannot be opened for writing
					}
					ops = append(ops, fileOp(rs, p, w, exe, uid, owner))
				}
			}
			if uid == 0 {
				for _, p := range []string{"/tmp/vmt/bin/blocked", "/tmp/vmt/bin/audited-tool", "/tmp/vmt/bin/fine"} {
					ops = append(ops, execOp(rs, p, exe))
				}
			}
			t.Run(fmt.Sprintf("%s-uid%d", filepath.Base(exe), uid), func(t *testing.T) {
				checkAgainstDecide(t, f, rs, exe, uid, ops)
			})
		}
	}
	// Sanity of the expectations themselves: the policy does block.
	if d := policy.Decide(rs, policy.Event{Class: policy.ClassFile, Path: deepFile}); d.Action != policy.Block {
		t.Fatalf("Decide on the deep path: %s", d.Action)
	}
	// Outside the cgroup nothing is enforced.
	res := batch(t, nil, other, 0, []string{"read /tmp/vmt/secret", "exec /tmp/vmt/bin/blocked", "read " + deepFile})
	for i, r := range res {
		if r != "ok" {
			t.Errorf("outside the cgroup, op %d: %s", i, r)
		}
	}
	if evs := drain(t, f.rd); len(evs) != 0 {
		t.Errorf("events from outside the cgroup: %+v", evs)
	}
}

const postureBlockPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: allow-only, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  file:
    matchDirectories:
    - dir: /
      recursive: true
      action: Allow
    - dir: /tmp/vmp/
      action: Audit
  process:
    matchDirectories:
    - dir: /tmp/vmp/bin/
      recursive: true
      action: Allow
  network:
    matchProtocols:
    - protocol: udp
      action: Allow
  capabilities:
    matchCapabilities:
    - capability: chown
      action: Allow
`

// TestLSMAllowListPosture: allow-list mode per class, with posture block and
// with posture audit, for process, file, network and capabilities.
func TestLSMAllowListPosture(t *testing.T) {
	f := newLSMFixture(t)
	self, _ := os.Executable()
	exe := "/tmp/vmp/bin/app"
	copyFile(t, self, exe)
	copyFile(t, "/bin/busybox", "/tmp/vmp/bin/tool")
	copyFile(t, "/bin/busybox", "/tmp/vmp/elsewhere")
	touch(t, "/tmp/vmp/data", 0)
	pols := policytest.Load(t, postureBlockPolicy)
	for _, posture := range []policy.Action{policy.Block, policy.Audit} {
		rs := policy.Compile(pols, policy.Options{Postures: policy.Postures{File: posture, Network: posture, Capabilities: posture}, Mode: policy.ModeEnforce})
		if _, err := f.e.Apply(f.cg.ID, rs); err != nil {
			t.Fatal(err)
		}
		t.Run(string(posture), func(t *testing.T) {
			ops := []probeOp{
				execOp(rs, "/tmp/vmp/bin/tool", exe),
				execOp(rs, "/tmp/vmp/elsewhere", exe),
				fileOp(rs, "/tmp/vmp/data", false, exe, 0, 0),
			}
			for _, n := range []struct{ op, proto, st string }{{"udp", "udp", "dgram"}, {"tcp", "tcp", "stream"}} {
				ev := policy.Event{Class: policy.ClassNetwork, Protocol: n.proto, SocketType: n.st, Source: exe}
				ops = append(ops, probeOp{op: n.op, ev: ev, want: policy.Decide(rs, ev)})
			}
			checkAgainstDecide(t, f, rs, exe, 0, ops)
		})
	}
}

// TestLSMDifferential: many generated rule sets and operations; the kernel's
// verdict and event equal Decide's for every one.
func TestLSMDifferential(t *testing.T) {
	f := newLSMFixture(t)
	self, _ := os.Executable()
	exes := []string{"/tmp/vmx/a", "/tmp/vmx/b"} // outside /tmp/vmd: "/tmp/vmd/**" rules must not stop the helpers
	for _, e := range exes {
		copyFile(t, self, e)
	}
	comps := []string{"x", "y", "zz", "a-very-long-directory-name-that-goes-on-and-on-and-on"}
	var files []string
	for _, c1 := range comps {
		for _, c2 := range comps {
			files = append(files, "/tmp/vmd/t/"+c1+"/"+c2, "/tmp/vmd/t/"+c1+"/"+c2+"/f")
		}
	}
	for _, p := range files {
		if strings.HasSuffix(p, "/f") {
			touch(t, p, 1000)
		}
	}
	rng := rand.New(rand.NewSource(int64(os.Getpid())))
	pick := func(list []string) string { return list[rng.Intn(len(list))] }
	actions := []string{"Allow", "Audit", "Block"}
	patterns := []string{"/tmp/vmd/t/*/f", "/tmp/vmd/t/x/**", "/tmp/vmd/t/?/*", "/tmp/vmd/t/*z*/**", "/tmp/vmd/t/a-very-*-on/?/f",
		"/tmp/vmd/t/*y", "/tmp/vmd/**", "/tmp/vmd/t/*/*/f", "/tmp/vmd/t/a-*-*-on/*", "/tmp/vmd/t/*-*n/?*/**", "/tmp/vmd/t/*z/**",
		"/tmp/vmd/t/{x,zz}/*", "/tmp/vmd/t/[xy]/[xy]/f", "/tmp/vmd/t/{y/**,x/?}"}
	sets := 12
	if testing.Short() {
		sets = 4
	}
	for s := 0; s < sets; s++ {
		var y strings.Builder
		fmt.Fprintf(&y, "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: d%d}\nspec:\n  selector: {matchLabels: {a: b}}\n  file:\n    matchPaths:\n", s)
		for i := 0; i < 6; i++ {
			fmt.Fprintf(&y, "    - path: %s\n      action: %s\n      readOnly: %t\n      ownerOnly: %t\n", pick(files), pick(actions), rng.Intn(3) == 0, rng.Intn(4) == 0)
			if rng.Intn(3) == 0 {
				fmt.Fprintf(&y, "      fromSource: [{path: %s}]\n", pick(exes))
			}
		}
		y.WriteString("    matchDirectories:\n")
		for i := 0; i < 6; i++ {
			dir := pick(files)
			dir = dir[:strings.LastIndexByte(dir, '/')+1]
			fmt.Fprintf(&y, "    - dir: %s\n      recursive: %t\n      action: %s\n      readOnly: %t\n", dir, rng.Intn(2) == 0, pick(actions), rng.Intn(3) == 0)
			if rng.Intn(3) == 0 {
				fmt.Fprintf(&y, "      fromSource: [{path: %s}]\n", pick(exes))
			}
		}
		y.WriteString("    matchPatterns:\n")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(&y, "    - pattern: %s\n      action: %s\n      readOnly: %t\n", pick(patterns), pick(actions), rng.Intn(3) == 0)
		}
		rs := policytest.Compile(t, y.String())
		unenforced, err := f.e.Apply(f.cg.ID, rs)
		if err != nil {
			t.Fatal(err)
		}
		if len(unenforced) > 0 {
			t.Fatalf("set %d: rules not enforced in the kernel: %+v", s, unenforced)
		}
		for _, exe := range exes {
			for _, uid := range []int{0, 1000} {
				var ops []probeOp
				for i := 0; i < 16; i++ {
					p := pick(files)
					isFile := strings.HasSuffix(p, "/f")
					owner := 0 // directories are root's; the files are uid 1000's
					if isFile {
						owner = 1000
					}
					ops = append(ops, fileOp(rs, p, rng.Intn(2) == 0 && isFile, exe, uid, owner))
				}
				t.Run(fmt.Sprintf("set%d-%s-uid%d", s, filepath.Base(exe), uid), func(t *testing.T) {
					checkAgainstDecide(t, f, rs, exe, uid, ops)
				})
			}
		}
	}
}

// TestLSMPinnedStateSurvivesRestart: with BPF-LSM, enforcement goes on
// after the loader exits, and a new loader reuses the pinned links (the
// programs are unchanged), the sets, and the key of the path hash: the
// one the first loader drew (not zero), which the programs read from its
// pinned map. Under another key the same rules match nothing: with the
// pinned key zeroed (as if the sets had been pinned by programs before
// the key), a loader draws a new one, the old entries no longer block,
// and the set applied again does.
func TestLSMPinnedStateSurvivesRestart(t *testing.T) {
	vmtest.RequireLSM(t, "bpf")
	root, _ := cgroups.Mount()
	pin := testPinPath(t)
	cg := testenv.NewCgroup(t)
	touch(t, "/tmp/vmr/secret", 0)
	rs := policytest.Compile(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: r, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  file:
    matchPaths:
    - path: /tmp/vmr/secret
  action: Block
`)
	cfg := Config{PinPath: pin, MaxContainers: 16, MaxRuleEntries: 1024, RingBytes: 1 << 16}
	e, err := OpenEngine(cfg, HooksLSM, root)
	if err != nil {
		t.Fatal(err)
	}
	key := pinnedKey(t, e)
	if key == (PathKey{}) || key != e.key {
		t.Fatalf("pinned key %x, engine's %x: want the same, not zero", key, e.key)
	}
	if _, err := e.Apply(cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	copyFile(t, self, "/tmp/vmr/app")
	e.Close()
	if got := batch(t, cg, "/tmp/vmr/app", 0, []string{"read /tmp/vmr/secret"}); got[0] != "EPERM" {
		t.Fatalf("with the loader gone: %s, want EPERM", got[0])
	}
	e2, err := OpenEngine(cfg, HooksLSM, root)
	if err != nil {
		t.Fatal(err)
	}
	if e2.key != key {
		t.Fatalf("restarted engine's key %x, want the pinned %x", e2.key, key)
	}
	if got := e2.Cgroups()[cg.ID]; got != rs.Digest {
		t.Fatalf("recovered set %q, want %q", got, rs.Digest)
	}
	if got := batch(t, cg, "/tmp/vmr/app", 0, []string{"read /tmp/vmr/secret"}); got[0] != "EPERM" {
		t.Fatalf("after restart: %s, want EPERM", got[0])
	}
	links, _ := os.ReadDir(filepath.Join(pin, "links"))
	if len(links) != len(lsmPrograms) {
		t.Fatalf("%d pinned links, want one per LSM program (%d): the restart must reuse them", len(links), len(lsmPrograms))
	}
	if err := e2.maps.PathKey.Update(uint32(0), armorSipKey{}, 0); err != nil {
		t.Fatal(err)
	}
	e2.Close()
	e2, err = OpenEngine(cfg, HooksLSM, root)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if e2.key == key || e2.key == (PathKey{}) || pinnedKey(t, e2) != e2.key {
		t.Fatalf("engine finding no key: key %x, pinned %x, want a new one (not %x)", e2.key, pinnedKey(t, e2), key)
	}
	if got := batch(t, cg, "/tmp/vmr/app", 0, []string{"read /tmp/vmr/secret"}); got[0] != "ok" {
		t.Fatalf("rules hashed under another key: %s, want ok", got[0])
	}
	if _, err := e2.Apply(cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	if got := batch(t, cg, "/tmp/vmr/app", 0, []string{"read /tmp/vmr/secret"}); got[0] != "EPERM" {
		t.Fatalf("applied again under the new key: %s, want EPERM", got[0])
	}
	if err := e2.Remove(cg.ID); err != nil {
		t.Fatal(err)
	}
	if got := batch(t, cg, "/tmp/vmr/app", 0, []string{"read /tmp/vmr/secret"}); got[0] != "ok" {
		t.Fatalf("after Remove: %s, want ok", got[0])
	}
}

const kubeArmorPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: ka, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  file:
    matchPaths:
    - path: /tmp/vmk/db
      readOnly: true
      ownerOnly: true
  network:
    matchProtocols:
    - protocol: raw
    - protocol: tcp
    - protocol: udp
      action: Audit
  action: Block
`

// TestLSMKubeArmorSemantics: KubeArmor's meaning of the modifiers and
// protocols, in BPF-LSM as in policy.Decide. ownerOnly with readOnly on a
// Block rule: only the owner may read, nobody may write — root's read is
// refused, the owner's read passes, the owner's write is refused. `raw`
// covers AF_PACKET raw sockets (tcpdump), not other packet sockets; MPTCP
// is tcp and UDP-Lite udp.
func TestLSMKubeArmorSemantics(t *testing.T) {
	f := newLSMFixture(t)
	self, _ := os.Executable()
	exe := "/tmp/vmk/bin/app"
	copyFile(t, self, exe)
	touch(t, "/tmp/vmk/db", 1000)
	rs := policytest.Compile(t, kubeArmorPolicy)
	if _, err := f.e.Apply(f.cg.ID, rs); err != nil {
		t.Fatal(err)
	}
	want := map[string]policy.Action{
		"0 read /tmp/vmk/db": policy.Block, "1000 read /tmp/vmk/db": "", "1000 write /tmp/vmk/db": policy.Block,
		"packet-raw": policy.Block, "packet-legacy": policy.Block, "packet-dgram": "", "mptcp": policy.Block, "udplite": policy.Audit,
	}
	for _, uid := range []int{0, 1000} {
		var ops []probeOp
		for _, w := range []bool{false, true} {
			ops = append(ops, fileOp(rs, "/tmp/vmk/db", w, exe, uid, 1000))
		}
		for _, op := range []string{"packet-raw", "packet-legacy", "packet-dgram", "mptcp", "udplite", "tcp", "raw"} {
			if uid != 0 {
				break // packet and raw sockets need CAP_NET_RAW: EPERM whatever the rules
			}
			ev := socketEvent(t, op)
			ev.Source = exe
			ops = append(ops, probeOp{op: op, ev: ev, want: policy.Decide(rs, ev)})
		}
		for _, o := range ops {
			key := o.op
			if o.ev.Class == policy.ClassFile {
				key = fmt.Sprintf("%d %s", uid, o.op)
			}
			if w, ok := want[key]; ok && o.want.Action != w && !(w == "" && o.want.Action == policy.Allow) {
				t.Errorf("%s: policy.Decide says %q, want %q", key, o.want.Action, w)
			}
		}
		checkAgainstDecide(t, f, rs, exe, uid, ops)
	}
}
