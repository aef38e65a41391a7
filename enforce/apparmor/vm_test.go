//go:build vmtest

package apparmor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nri-armor/nri-armor/internal/attackops"
	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/vmtest"
	"github.com/nri-armor/nri-armor/policy"
)

// The VM tests of the AppArmor backend (make vmtest-apparmor, and the
// benchmarks of make vmbench): profiles compiled from rule sets, loaded
// into the VM's kernel by the Loader, confining real processes started as
// runc starts a container's first process.

const (
	// confineEnv makes the test binary, at its start, set no_new_privs,
	// ask for the profile it names at the next execve
	// (/proc/thread-self/attr/apparmor/exec) and execve os.Args[1:]: what
	// runc does before the container's program runs (see confined).
	confineEnv = "NRI_ARMOR_AA_EXEC"
	// confineWaitEnv, with confineEnv, makes it print "ready" once the
	// label is pending and wait for a line on its standard input before
	// the execve.
	confineWaitEnv = "NRI_ARMOR_AA_WAIT"
	// helperEnv makes the test binary a helper: "batch" performs the ops
	// read from its standard input, one result a line (runBatch).
	helperEnv = "NRI_ARMOR_AA_HELPER"
)

// init, not TestMain: during package initialisation the main goroutine is
// locked to the main thread, so the label is written for the thread that
// execs, and is the one /proc/PID/attr/apparmor/exec shows.
func init() {
	if name := os.Getenv(confineEnv); name != "" {
		os.Exit(confineExec(name))
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "batch" {
		runBatch(os.Stdin, os.Stdout)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// confineExec is the runtime's part (runc's apparmor.ApplyProfile after
// PR_SET_NO_NEW_PRIVS): it returns only on failure.
func confineExec(name string) int {
	os.Unsetenv(confineEnv)
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "confine:", err)
		return 126
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail(err)
	}
	if err := writeAttr("/proc/thread-self/attr/apparmor/exec", "exec "+name); err != nil {
		return fail(err)
	}
	if os.Getenv(confineWaitEnv) == "1" {
		os.Unsetenv(confineWaitEnv)
		// Its own pending label, as ExecLabel reads it.
		l, err := ExecLabel("/proc", os.Getpid())
		fmt.Printf("ready %q %v\n", l, err)
		// One byte at a time: what follows the line is the program's.
		b := make([]byte, 1)
		for {
			if n, err := os.Stdin.Read(b); err != nil || n == 1 && b[0] == '\n' {
				break
			}
		}
	}
	argv := os.Args[1:]
	return fail(syscall.Exec(argv[0], argv, os.Environ()))
}

// writeAttr writes an AppArmor process attribute in one write, as the
// kernel wants it.
func writeAttr(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(text))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// confined is the one way these tests start a process under a profile:
// argv runs as the container's first process does under runc, with
// no_new_privs and profile as its pending exec label; "" runs it
// unconfined (the same process outside the profile).
func confined(profile string, argv ...string) *exec.Cmd {
	if profile == "" {
		return exec.Command(argv[0], argv[1:]...)
	}
	self, err := os.Executable()
	if err != nil {
		panic(err)
	}
	cmd := exec.Command(self, argv...)
	cmd.Env = append(os.Environ(), confineEnv+"="+profile)
	return cmd
}

// helper is a batch helper (this binary) under profile ("" unconfined),
// answering one op at a time.
type helper struct {
	t   testing.TB
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startHelper(t testing.TB, profile string, mod func(*exec.Cmd)) *helper {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := confined(profile, self, "-test.run=^$")
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, helperEnv+"=batch")
	cmd.Stderr = os.Stderr
	if mod != nil {
		mod(cmd)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{t: t, cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(h.stop)
	return h
}

// do performs op in the helper: "ok", an errno's name, or another result.
func (h *helper) do(op string) string {
	h.t.Helper()
	if _, err := fmt.Fprintln(h.in, op); err != nil {
		h.t.Fatalf("helper: %s: %v", op, err)
	}
	line, err := h.out.ReadString('\n')
	if err != nil {
		h.t.Fatalf("helper: %s: no result (%v)", op, err)
	}
	return strings.TrimSuffix(line, "\n")
}

func (h *helper) stop() {
	if h.in != nil {
		h.in.Close()
		h.cmd.Wait()
		h.in = nil
	}
}

// batch performs ops in a new helper under profile ("" unconfined), one
// result each.
func batch(t testing.TB, profile string, ops ...string) []string {
	t.Helper()
	h := startHelper(t, profile, nil)
	defer h.stop()
	var res []string
	for _, op := range ops {
		res = append(res, h.do(op))
	}
	return res
}

// ops are the helper's operations, each taking the rest of the line;
// nil means it was done ("ok"). More are added by the other files.
var ops = map[string]func(arg string) error{
	"read": func(arg string) error { return openClose(arg, os.O_RDONLY) },
	// write PATH: open PATH for writing (nothing is written).
	"write": func(arg string) error { return openClose(arg, os.O_WRONLY) },
	// exec PATH ARGS...: run it; a program that ran and failed ran.
	"exec": func(arg string) error {
		f := strings.Fields(arg)
		return ranOK(exec.Command(f[0], f[1:]...).Run())
	},
	// label-is NAME: this process runs under NAME.
	"label-is": func(arg string) error {
		if l := ownLabel(); l != arg {
			return opResult("label " + l)
		}
		return nil
	},
}

func openClose(path string, flag int) error {
	f, err := os.OpenFile(path, flag, 0)
	if err == nil {
		f.Close()
	}
	return err
}

// ownLabel is this process's AppArmor label, without its mode.
func ownLabel() string {
	l, err := CurrentLabel("/proc", os.Getpid())
	if err != nil {
		return "error: " + err.Error()
	}
	return l
}

// runBatch is the helper's side: one result line per op line.
func runBatch(in io.Reader, out io.Writer) {
	runtime.LockOSThread() // thread-self attributes, ptrace
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		op, arg, _ := strings.Cut(sc.Text(), " ")
		f := ops[op]
		if f == nil {
			fmt.Fprintf(out, "unknown op %q\n", op)
			continue
		}
		fmt.Fprintln(out, resultOf(f(arg)))
	}
}

func resultOf(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &errno):
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
		return errno.Error()
	default:
		return strings.ReplaceAll(err.Error(), "\n", " ")
	}
}

// opResult is a result other than an error number.
type opResult string

func (r opResult) Error() string { return string(r) }

// ranOK treats a program that ran and exited non-zero as run.
var ranOK = attackops.RanOK

// fixture is a loader on the VM's kernel, whose profiles go after the test.
type fixture struct {
	l *Loader
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	vmtest.RequireLSM(t, "apparmor")
	l, err := NewLoader(t.TempDir(), Parser{})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{l: l}
}

// profile compiles the node's profile of the policies in doc (Restrict:
// process, file and capability rules).
func profile(t testing.TB, name, doc string) Profile {
	t.Helper()
	return compileSet(t, name, policytest.Compile(t, doc))
}

func compileSet(t testing.TB, name string, rs *policy.RuleSet) Profile {
	t.Helper()
	p, err := Compile(name, Restrict(rs), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// load loads p (it must load) and unloads it after the test.
func (f *fixture) load(t testing.TB, p Profile) {
	t.Helper()
	if _, err := f.l.Load(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.l.Unload(p.Name) })
}

// mkfile writes a file (mode 0755, so that a copied program runs), making
// its directory.
func mkfile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(path[:strings.LastIndex(path, "/")], 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	mkfile(t, to, b)
}

const loaderPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: loader, namespace: default}
spec:
  selector: {matchLabels: {app: t}}
  file:
    matchPaths:
    - path: /tmp/vml/a
  action: Block
`

// TestLoaderAppArmor: the Loader against the kernel: load, see, confine,
// replace in place, skip an unchanged text, the pending exec label,
// unload.
func TestLoaderAppArmor(t *testing.T) {
	f := newFixture(t)
	const name = NamePrefix + "vmtest.loader.0000000000000001"
	mkfile(t, "/tmp/vml/a", []byte("a"))
	mkfile(t, "/tmp/vml/b", []byte("b"))
	p1 := profile(t, name, loaderPolicy)
	p2 := profile(t, name, strings.Replace(loaderPolicy, "/tmp/vml/a", "/tmp/vml/b", 1))
	t.Cleanup(func() { f.l.Unload(name) })

	if loaded, err := f.l.Load(p1); err != nil || !loaded {
		t.Fatalf("Load: %t, %v; want a load", loaded, err)
	}
	if in, err := f.l.Loaded(name); err != nil || !in {
		t.Fatalf("Loaded after Load: %t, %v", in, err)
	}
	if names, err := f.l.Names(); err != nil || !slices.Contains(names, name) {
		t.Fatalf("Names after Load: %q, %v", names, err)
	}
	if b, err := os.ReadFile(f.l.Dir + "/" + name); err != nil || string(b) != p1.Text {
		t.Errorf("the profile's file in Dir: %v (same text: %t)", err, string(b) == p1.Text)
	}

	h := startHelper(t, name, nil)
	if got := []string{h.do("label-is " + name), h.do("read /tmp/vml/a"), h.do("read /tmp/vml/b")}; strings.Join(got, " ") != "ok EACCES ok" {
		t.Fatalf("confined: label, the blocked file, another: %v, want ok EACCES ok", got)
	}
	if got := batch(t, "", "read /tmp/vml/a"); got[0] != "ok" {
		t.Errorf("unconfined, the blocked file: %s", got[0])
	}

	t.Run("same-text-no-reload", func(t *testing.T) {
		if loaded, err := f.l.Load(p1); err != nil || loaded {
			t.Errorf("Load of the same text: %t, %v; want no load", loaded, err)
		}
	})
	t.Run("replace-in-place", func(t *testing.T) {
		if loaded, err := f.l.Load(p2); err != nil || !loaded {
			t.Fatalf("Load of the edited profile: %t, %v", loaded, err)
		}
		// The running process, confined before, is under the new text.
		if got := []string{h.do("label-is " + name), h.do("read /tmp/vml/a"), h.do("read /tmp/vml/b")}; strings.Join(got, " ") != "ok ok EACCES" {
			t.Errorf("the same process after the replace: label, a, b: %v, want ok ok EACCES", got)
		}
	})
	t.Run("exec-label", func(t *testing.T) {
		testExecLabel(t, name)
	})
	t.Run("unload", func(t *testing.T) {
		if err := f.l.Unload(name); err != nil {
			t.Fatal(err)
		}
		if in, err := f.l.Loaded(name); err != nil || in {
			t.Errorf("Loaded after Unload: %t, %v", in, err)
		}
		if names, err := f.l.Names(); err != nil || slices.Contains(names, name) {
			t.Errorf("Names after Unload: %q, %v", names, err)
		}
		if _, err := os.Stat(f.l.Dir + "/" + name); !os.IsNotExist(err) {
			t.Errorf("the profile's file after Unload: %v", err)
		}
		// Its processes are unconfined now (docs/apparmor.md: the daemon
		// unloads only profiles no container uses).
		if got := []string{h.do("label-is unconfined"), h.do("read /tmp/vml/b")}; strings.Join(got, " ") != "ok ok" {
			t.Errorf("the confined process after Unload: %v, want ok ok", got)
		}
		if err := f.l.Unload(name); err != nil {
			t.Errorf("Unload of a profile not loaded: %v", err)
		}
		// Loaded again after an Unload: the loader's memory of the text
		// went with it.
		if loaded, err := f.l.Load(p2); err != nil || !loaded {
			t.Errorf("Load after Unload: %t, %v; want a load", loaded, err)
		}
	})
}

// testExecLabel: ExecLabel reads a label that is pending (written, not yet
// exec'd) — the process's own; another process's where the kernel shows
// it (not 6.1: ErrExecLabelUnseen) — and "" for none.
func testExecLabel(t *testing.T, name string) {
	self, _ := os.Executable()
	cmd := confined(name, self, "-test.run=^$")
	cmd.Env = append(cmd.Env, confineWaitEnv+"=1", helperEnv+"=batch")
	in, _ := cmd.StdinPipe()
	outp, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer in.Close()
	out := bufio.NewReader(outp)
	if l, err := out.ReadString('\n'); l != fmt.Sprintf("ready %q <nil>\n", name) {
		t.Fatalf("the confining child's own pending label: %q, %v; want ready %q <nil>", l, err, name)
	}
	switch got, err := ExecLabel("/proc", cmd.Process.Pid); {
	case errors.Is(err, ErrExecLabelUnseen):
		t.Logf("ExecLabel of another process's pending label: %v (this kernel does not show it)", err)
	case err != nil || got != name:
		t.Errorf("ExecLabel of a pending label: %q, %v; want %q or ErrExecLabelUnseen", got, err, name)
	}
	fmt.Fprintf(in, "go\nlabel-is %s\n", name)
	if l, _ := out.ReadString('\n'); l != "ok\n" {
		t.Errorf("after the execve, label-is: %q", l)
	}
	// Nothing pending: the test process; the child after its execve.
	if got, err := ExecLabel("/proc", os.Getpid()); err != nil || got != "" {
		t.Errorf("ExecLabel of this process, nothing pending: %q, %v; want \"\"", got, err)
	}
	if got, err := ExecLabel("/proc", cmd.Process.Pid); got != "" || err != nil && !errors.Is(err, ErrExecLabelUnseen) {
		t.Errorf("ExecLabel of the child after its execve: %q, %v; want \"\" or ErrExecLabelUnseen", got, err)
	}
}
