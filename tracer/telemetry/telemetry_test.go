package telemetry

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/nri-armor/nri-armor/internal/testenv"
)

// childEnv makes the test binary a child process that performs one
// scenario (childOps) and exits; TestMain dispatches it.
const childEnv = "NRI_ARMOR_TELEMETRY_CHILD"

func TestMain(m *testing.M) {
	if op := os.Getenv(childEnv); op != "" {
		// One OS thread does every syscall, so that each event's PID
		// (the thread id) is known.
		runtime.LockOSThread()
		if err := childOps[op](); err != nil {
			fmt.Fprintln(os.Stderr, op+":", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var childOps = map[string]func() error{
	"script": script,
	"burst":  burst,
	"true":   func() error { return nil },
}

// script makes one syscall of each traced kind and prints, as JSON, the
// events it expects (the fields only the child knows: pid, fds, ports).
func script() error {
	dir, closedPort := os.Getenv("T_DIR"), os.Getenv("T_CLOSED_PORT")
	tid := uint32(unix.Gettid())
	var want []Event
	expect := func(e Event) { e.PID = tid; want = append(want, e) }
	check := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	const cloexec = unix.O_CLOEXEC

	// Files: a success, an ENOENT, openat2, and a mode-000 file that root
	// reads only through CAP_DAC_READ_SEARCH.
	file, missing, locked := filepath.Join(dir, "file"), filepath.Join(dir, "missing"), filepath.Join(dir, "locked")
	openat := func(e Event) Event { e.Kind, e.Call, e.DirFD = KindOpen, CallOpenat, AtFDCWD; return e }
	fd, err := unix.Openat(unix.AT_FDCWD, file, unix.O_RDONLY|cloexec, 0)
	if err := check("openat", err); err != nil {
		return err
	}
	unix.Close(fd)
	expect(openat(Event{Path: file, Flags: cloexec, Ret: int64(fd)}))
	if _, err := unix.Openat(unix.AT_FDCWD, missing, unix.O_RDONLY|cloexec, 0); err != unix.ENOENT {
		return fmt.Errorf("openat %s: %v, want ENOENT", missing, err)
	}
	expect(openat(Event{Path: missing, Flags: cloexec, Ret: -int64(unix.ENOENT)}))
	fd, err = unix.Openat2(unix.AT_FDCWD, file, &unix.OpenHow{Flags: unix.O_WRONLY | cloexec})
	if err := check("openat2", err); err != nil {
		return err
	}
	unix.Close(fd)
	expect(Event{Kind: KindOpen, Call: CallOpenat2, DirFD: AtFDCWD, Path: file, Flags: unix.O_WRONLY | cloexec, Ret: int64(fd)})
	fd, err = unix.Openat(unix.AT_FDCWD, locked, unix.O_RDONLY|cloexec, 0)
	if err := check("openat locked", err); err != nil {
		return err
	}
	unix.Close(fd)
	expect(Event{Kind: KindCapable, Capability: unix.CAP_DAC_READ_SEARCH})
	expect(openat(Event{Path: locked, Flags: cloexec, Ret: int64(fd)}))
	// open(2) of a directory, then a path relative to it: the event
	// carries the dirfd.
	dirp, _ := unix.BytePtrFromString(dir)
	r, _, en := unix.Syscall(unix.SYS_OPEN, uintptr(unsafe.Pointer(dirp)), unix.O_RDONLY|unix.O_DIRECTORY|cloexec, 0)
	runtime.KeepAlive(dirp)
	if en != 0 {
		return fmt.Errorf("open dir: %w", en)
	}
	dfd := int(r)
	expect(Event{Kind: KindOpen, Call: CallOpen, DirFD: AtFDCWD, Path: dir, Flags: unix.O_DIRECTORY | cloexec, Ret: int64(dfd)})
	fd, err = unix.Openat(dfd, "file", unix.O_RDONLY|cloexec, 0)
	if err := check("openat dirfd", err); err != nil {
		return err
	}
	unix.Close(fd)
	expect(Event{Kind: KindOpen, Call: CallOpenat, DirFD: int32(dfd), Path: "file", Flags: cloexec, Ret: int64(fd)})
	unix.Close(dfd)
	// creat(2): open's flags O_CREAT|O_WRONLY|O_TRUNC.
	created := filepath.Join(dir, "created")
	createdp, _ := unix.BytePtrFromString(created)
	r, _, en = unix.Syscall(unix.SYS_CREAT, uintptr(unsafe.Pointer(createdp)), 0o600, 0)
	runtime.KeepAlive(createdp)
	if en != 0 {
		return fmt.Errorf("creat: %w", en)
	}
	unix.Close(int(r))
	expect(Event{Kind: KindOpen, Call: CallCreat, DirFD: AtFDCWD, Path: created, Flags: unix.O_CREAT | unix.O_WRONLY | unix.O_TRUNC, Ret: int64(r)})
	// A path in a mapped page the process has not touched yet: the enter
	// program cannot fault it in; the exit program reads it once the
	// kernel has.
	pf, err := os.Open(filepath.Join(dir, "pathname"))
	if err := check("pathname", err); err != nil {
		return err
	}
	mem, err := unix.Mmap(int(pf.Fd()), 0, 4096, unix.PROT_READ, unix.MAP_PRIVATE)
	if err := check("mmap", err); err != nil {
		return err
	}
	cwd := unix.AT_FDCWD
	r, _, en = unix.Syscall6(unix.SYS_OPENAT, uintptr(cwd), uintptr(unsafe.Pointer(&mem[0])), unix.O_RDONLY, 0, 0, 0)
	if en != 0 {
		return fmt.Errorf("openat from a mapped page: %w", en)
	}
	unix.Close(int(r))
	expect(openat(Event{Path: file, Ret: int64(r)}))

	// TCP: a listener bound to 127.0.0.1:0, a client connecting to it, the
	// accept (accept4, then accept(2) with no address buffer).
	tcp := func(e Event) Event {
		e.Family, e.SockType, e.Protocol = unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP
		return e
	}
	lo := [4]byte{127, 0, 0, 1}
	ls, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err := check("socket", err); err != nil {
		return err
	}
	expect(tcp(Event{Kind: KindSocket, Flags: unix.SOCK_CLOEXEC, Ret: int64(ls)}))
	if err := check("bind", unix.Bind(ls, &unix.SockaddrInet4{Addr: lo})); err != nil {
		return err
	}
	expect(tcp(Event{Kind: KindBind, Addr: netip.AddrPortFrom(netip.AddrFrom4(lo), 0)}))
	if err := check("listen", unix.Listen(ls, 8)); err != nil {
		return err
	}
	sa, _ := unix.Getsockname(ls)
	lport := uint16(sa.(*unix.SockaddrInet4).Port)
	connectLo := func(port uint16) (int, error) {
		cs, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			return -1, err
		}
		expect(tcp(Event{Kind: KindSocket, Ret: int64(cs)}))
		err = unix.Connect(cs, &unix.SockaddrInet4{Addr: lo, Port: int(port)})
		ret := int64(0)
		if en, ok := err.(unix.Errno); ok {
			ret = -int64(en)
		}
		expect(tcp(Event{Kind: KindConnect, Addr: netip.AddrPortFrom(netip.AddrFrom4(lo), port), Ret: ret}))
		return cs, err
	}
	cs, err := connectLo(lport)
	if err := check("connect", err); err != nil {
		return err
	}
	csa, _ := unix.Getsockname(cs)
	afd, _, err := unix.Accept4(ls, unix.SOCK_CLOEXEC)
	if err := check("accept4", err); err != nil {
		return err
	}
	expect(tcp(Event{Kind: KindAccept, Flags: unix.SOCK_CLOEXEC, Ret: int64(afd),
		Addr: netip.AddrPortFrom(netip.AddrFrom4(lo), uint16(csa.(*unix.SockaddrInet4).Port))}))
	if _, err := connectLo(lport); err != nil {
		return fmt.Errorf("second connect: %w", err)
	}
	r, _, en = unix.Syscall(unix.SYS_ACCEPT, uintptr(ls), 0, 0)
	if en != 0 {
		return fmt.Errorf("accept: %w", en)
	}
	expect(tcp(Event{Kind: KindAccept, Ret: int64(r)}))

	// A refused connection: nothing listens on the parent's closed port.
	port, _ := strconv.Atoi(closedPort)
	if _, err := connectLo(uint16(port)); err != unix.ECONNREFUSED {
		return fmt.Errorf("connect to closed port %d: %v, want ECONNREFUSED", port, err)
	}
	// IPv6: the same port on ::1 (refused, or unreachable where the
	// loopback has no IPv6: the event carries what the call returned).
	s6, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
	if err := check("socket6", err); err != nil {
		return err
	}
	tcp6 := func(e Event) Event {
		e.Family, e.SockType, e.Protocol = unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_TCP
		return e
	}
	expect(tcp6(Event{Kind: KindSocket, Ret: int64(s6)}))
	ret := int64(0)
	if en, ok := unix.Connect(s6, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16(), Port: port}).(unix.Errno); ok {
		ret = -int64(en)
	}
	expect(tcp6(Event{Kind: KindConnect, Addr: netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port)), Ret: ret}))

	// A raw socket (root: CAP_NET_RAW is checked) and a unix socket bound to a path.
	raw, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	if err := check("raw socket", err); err != nil {
		return err
	}
	expect(Event{Kind: KindCapable, Capability: unix.CAP_NET_RAW})
	expect(Event{Kind: KindSocket, Family: unix.AF_INET, SockType: unix.SOCK_RAW, Protocol: unix.IPPROTO_ICMP, Ret: int64(raw)})
	us, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err := check("unix socket", err); err != nil {
		return err
	}
	expect(Event{Kind: KindSocket, Family: unix.AF_UNIX, SockType: unix.SOCK_STREAM, Ret: int64(us)})
	sock := filepath.Join(dir, "sock")
	if err := check("unix bind", unix.Bind(us, &unix.SockaddrUnix{Name: sock})); err != nil {
		return err
	}
	expect(Event{Kind: KindBind, Family: unix.AF_UNIX, SockType: unix.SOCK_STREAM, Path: sock})
	return json.NewEncoder(os.Stdout).Encode(want)
}

// burst says it is ready (its runtime has started: no more opens of its
// own), waits for a line on stdin, then opens T_FILE T_N times.
func burst() error {
	n, _ := strconv.Atoi(os.Getenv("T_N"))
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		fd, err := unix.Openat(unix.AT_FDCWD, os.Getenv("T_FILE"), unix.O_RDONLY, 0)
		if err != nil {
			return err
		}
		unix.Close(fd)
	}
	return nil
}

// child returns the command that runs op in cg.
func child(t testing.TB, cg *testenv.Cgroup, op string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+op), env...)
	cmd.Stderr = os.Stderr
	cg.Into(cmd)
	return cmd
}

func openTelemetry(t testing.TB, cfg Config) *Telemetry {
	t.Helper()
	testenv.RequireRoot(t)
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	tl, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	return tl
}

// collect reads events until stop says the last one is in, or a timeout.
func collect(t *testing.T, tl *Telemetry, stop func(Event) bool) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var evs []Event
	for {
		ev, err := tl.Read(ctx)
		if err != nil {
			t.Fatalf("after %d events: %v", len(evs), err)
		}
		evs = append(evs, ev)
		if stop(ev) {
			return evs
		}
	}
}

func exitOf(pid int) func(Event) bool {
	return func(ev Event) bool { return ev.Kind == KindExit && ev.TGID == uint32(pid) }
}

// closedPort returns a local TCP port that nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestEvents: a real process in a watched test cgroup forks, execs, opens
// files (success, ENOENT, openat2, one needing a capability, open, one
// relative to a directory fd, creat), makes TCP,
// raw and unix sockets, binds, connects (accepted and refused) and
// accepts; every event is decoded exactly as the process saw it.
func TestEvents(t *testing.T) {
	tl := openTelemetry(t, Config{})
	// Every tracepoint attaches; cap_capable exists on recent kernels only
	// (Debian 12's 6.1 has none): where tracefs lacks it, it is only
	// reported, and no capability event is expected.
	caps := checkCapCapableFormat() == nil
	for k, err := range tl.Attached() {
		if err != nil && (caps || k != "capability/cap_capable") {
			t.Errorf("%s not attached: %v", k, err)
		}
	}
	cg := testenv.NewCgroup(t)
	if err := tl.Watch(cg.ID, VisAll); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	testenv.WriteFile(t, dir, "file", "x")
	testenv.WriteFile(t, dir, "pathname", filepath.Join(dir, "file")+"\x00")
	if err := os.Chmod(testenv.WriteFile(t, dir, "locked", "x"), 0); err != nil {
		t.Fatal(err)
	}
	cmd := child(t, cg, "script", "T_DIR="+dir, fmt.Sprint("T_CLOSED_PORT=", closedPort(t)))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	var want []Event
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("child said %q: %v", out, err)
	}
	pid := cmd.Process.Pid
	got := collect(t, tl, exitOf(pid))

	comm := filepath.Base(cmd.Path)
	if len(comm) > 15 {
		comm = comm[:15]
	}
	// The process's own events, in order: fork (reported with the parent's
	// comm), exec, the script's syscalls, exit (by whichever thread ends
	// last). Opens of other files (the Go runtime's) are left out, and
	// capability checks other than the script's.
	parentComm := readComm(t, os.Getpid())
	wantAll := []Event{
		{Kind: KindFork, PID: uint32(pid), Comm: parentComm},
		{Kind: KindExec, PID: uint32(pid), Path: cmd.Path, Comm: comm},
	}
	for _, e := range want {
		if e.Kind == KindCapable && !caps {
			continue
		}
		e.Comm = comm
		wantAll = append(wantAll, e)
	}
	wantAll = append(wantAll, Event{Kind: KindExit, Comm: comm})
	paths := map[string]bool{}
	for _, e := range want {
		paths[e.Path] = true
	}
	var mine []Event
	for _, e := range got {
		if e.TGID != uint32(pid) {
			continue
		}
		if e.Kind == KindOpen && !paths[e.Path] ||
			e.Kind == KindCapable && e.Capability != unix.CAP_DAC_READ_SEARCH && e.Capability != unix.CAP_NET_RAW {
			continue
		}
		if e.BootNs == 0 {
			t.Errorf("event without time: %+v", e)
		}
		if e.Kind == KindExit && e.PID != 0 {
			e.PID = 0
		}
		e.BootNs = 0
		mine = append(mine, e)
	}
	for i := range wantAll {
		wantAll[i].CgroupID, wantAll[i].TGID, wantAll[i].PPID = cg.ID, uint32(pid), uint32(os.Getpid())
	}
	if !reflect.DeepEqual(mine, wantAll) {
		t.Errorf("events of the child differ:")
		for i := 0; i < max(len(mine), len(wantAll)); i++ {
			var g, w Event
			if i < len(mine) {
				g = mine[i]
			}
			if i < len(wantAll) {
				w = wantAll[i]
			}
			mark := "  "
			if !reflect.DeepEqual(g, w) {
				mark = "!="
			}
			t.Logf("%s got  %+v\n   want %+v", mark, g, w)
		}
	}
	if tl.Lost() != 0 {
		t.Errorf("lost %d events", tl.Lost())
	}
}

func readComm(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// runIn runs a child that only starts and exits in cg; returns its pid.
func runIn(t *testing.T, cg *testenv.Cgroup) int {
	t.Helper()
	cmd := child(t, cg, "true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestUnwatched: processes of an unwatched cgroup, and of a cgroup after
// Unwatch, produce no event; a watched sentinel's exit, produced after
// them, bounds the wait.
func TestUnwatched(t *testing.T) {
	tl := openTelemetry(t, Config{})
	watched, other, sentinel := testenv.NewCgroup(t), testenv.NewCgroup(t), testenv.NewCgroup(t)
	for _, cg := range []*testenv.Cgroup{watched, sentinel} {
		if err := tl.Watch(cg.ID, VisAll); err != nil {
			t.Fatal(err)
		}
	}
	// Watched first: it does produce events.
	pid := runIn(t, watched)
	evs := collect(t, tl, exitOf(pid))
	if n := count(evs, watched.ID); n < 3 {
		t.Fatalf("watched cgroup: %d events, want fork, exec, opens, exit", n)
	}
	if err := tl.Unwatch(watched.ID); err != nil {
		t.Fatal(err)
	}
	runIn(t, other)
	runIn(t, watched)
	evs = collect(t, tl, exitOf(runIn(t, sentinel)))
	if n := count(evs, other.ID); n != 0 {
		t.Errorf("unwatched cgroup: %d events", n)
	}
	if n := count(evs, watched.ID); n != 0 {
		t.Errorf("cgroup after Unwatch: %d events", n)
	}
	if n := count(evs, sentinel.ID); n < 3 {
		t.Errorf("sentinel cgroup: %d events", n)
	}
	w, err := tl.Watched()
	if err != nil || !reflect.DeepEqual(w, map[uint64]Visibility{sentinel.ID: VisAll}) {
		t.Errorf("Watched() = %v, %v; want only the sentinel", w, err)
	}
}

func count(evs []Event, cg uint64) int {
	n := 0
	for _, e := range evs {
		if e.CgroupID == cg {
			n++
		}
	}
	return n
}

// TestLost: a one-page ring buffer that nobody reads during a burst of
// opens loses events; each is counted: received + lost == produced.
func TestLost(t *testing.T) {
	tl := openTelemetry(t, Config{RingBytes: os.Getpagesize()})
	cg := testenv.NewCgroup(t)
	file := testenv.WriteFile(t, t.TempDir(), "f", "x")
	const n = 1000
	cmd := child(t, cg, "burst", "T_FILE="+file, fmt.Sprint("T_N=", n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	// Watched only once the child's runtime has started, for opens only:
	// the burst is then all it produces.
	if err := tl.Watch(cg.ID, VisFile); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(stdin, "go")
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	received := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		ev, err := tl.Read(ctx)
		cancel()
		if err != nil {
			break
		}
		if ev.Kind != KindOpen || ev.Path != file || ev.CgroupID != cg.ID {
			t.Errorf("unexpected event %+v", ev)
		}
		received++
	}
	lost := tl.Lost()
	t.Logf("received %d, lost %d of %d", received, lost, n)
	if lost == 0 || received == 0 || uint64(received)+lost != n {
		t.Errorf("received %d + lost %d != produced %d (want both > 0)", received, lost, n)
	}
}

// TestPinnedRestart: with a pin path, the programs keep reporting while the
// tracer is closed, and a tracer that opens the pins again finds the
// watched cgroups and the events produced meanwhile.
func TestPinnedRestart(t *testing.T) {
	pin := fmt.Sprintf("/sys/fs/bpf/nri-armor-telemetry-test-%d", os.Getpid())
	t.Cleanup(func() { _ = Unpin(pin) })
	tl := openTelemetry(t, Config{PinPath: pin})
	cg := testenv.NewCgroup(t)
	if err := tl.Watch(cg.ID, VisProcess); err != nil {
		t.Fatal(err)
	}
	tl.Close()
	pid := runIn(t, cg) // no tracer runs now
	tl2 := openTelemetry(t, Config{PinPath: pin})
	if w, err := tl2.Watched(); err != nil || w[cg.ID] != VisProcess {
		t.Fatalf("restarted tracer sees watched %v, %v", w, err)
	}
	evs := collect(t, tl2, exitOf(pid))
	var kinds []Kind
	for _, e := range evs {
		if e.TGID == uint32(pid) {
			kinds = append(kinds, e.Kind)
		}
	}
	if !reflect.DeepEqual(kinds, []Kind{KindFork, KindExec, KindExit}) {
		t.Errorf("events produced while no tracer ran: %v, want fork, exec, exit", kinds)
	}
	// After a restart, one program per tracepoint still: no duplicates.
	pid = runIn(t, cg)
	evs = collect(t, tl2, exitOf(pid))
	if n := count(evs, cg.ID); n != 3 {
		t.Errorf("after the restart, %d events for one run, want 3 (fork, exec, exit)", n)
	}
	// Unpin and Close detach the programs.
	if err := Unpin(pin); err != nil {
		t.Fatal(err)
	}
	tl2.Close()
	ents, _ := os.ReadDir("/sys/fs/bpf")
	for _, e := range ents {
		if e.Name() == filepath.Base(pin) {
			t.Errorf("pin folder left: %s", pin)
		}
	}
}

// TestStaleLinks: a link an older version pinned for a tracepoint this
// version no longer uses (syscalls/sys_enter_openat) is removed at Open,
// and with it detached.
func TestStaleLinks(t *testing.T) {
	testenv.RequireRoot(t)
	pin := fmt.Sprintf("/sys/fs/bpf/nri-armor-telemetry-stale-%d", os.Getpid())
	t.Cleanup(func() { _ = Unpin(pin) })
	if err := pinDir(pin); err != nil {
		t.Fatal(err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.TracePoint, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	l, err := link.Tracepoint("syscalls", "sys_enter_openat", prog, nil)
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(pin, "links", "syscalls_sys_enter_openat")
	if err := l.Pin(stale); err != nil {
		t.Fatal(err)
	}
	l.Close()
	openTelemetry(t, Config{PinPath: pin})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale link %s still pinned: %v", stale, err)
	}
}

// TestOneExitPerProcess: a Go process's threads all exit at once
// (exit_group), and more than one can see its live count at zero; each
// process is still reported once.
func TestOneExitPerProcess(t *testing.T) {
	tl := openTelemetry(t, Config{})
	cg := testenv.NewCgroup(t)
	if err := tl.Watch(cg.ID, VisProcess); err != nil {
		t.Fatal(err)
	}
	exits := map[uint32]int{}
	for i := 0; i < 20; i++ {
		pid := runIn(t, cg)
		for _, e := range collect(t, tl, exitOf(pid)) {
			if e.Kind == KindExit {
				exits[e.TGID]++
			}
		}
	}
	// A duplicate of the last process's exit would come after it.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for {
		e, err := tl.Read(ctx)
		if err != nil {
			break
		}
		if e.Kind == KindExit {
			exits[e.TGID]++
		}
	}
	if len(exits) != 20 {
		t.Errorf("exits of %d processes, want 20", len(exits))
	}
	for pid, n := range exits {
		if n != 1 {
			t.Errorf("process %d: %d exit events", pid, n)
		}
	}
}

// TestSkipCapabilities: the option leaves cap_capable alone and says so.
func TestSkipCapabilities(t *testing.T) {
	tl := openTelemetry(t, Config{SkipCapabilities: true})
	for k, err := range tl.Attached() {
		if (err != nil) != (k == "capability/cap_capable") {
			t.Errorf("%s: %v", k, err)
		}
	}
	if _, ok := tl.Stats()[telemetryProgTelCapable]; ok {
		t.Error("Stats reports tel_capable, which runs nowhere")
	}
}

// TestDecodeRejects: records that are too short or name an impossible
// path length or kind are errors, not garbage events.
func TestDecodeRejects(t *testing.T) {
	if _, err := decode(make([]byte, evHdr-1)); err == nil {
		t.Error("short record decoded")
	}
	b := make([]byte, evHdr+4)
	if _, err := decode(b); err == nil {
		t.Error("kind 0 decoded")
	}
	b[offKind] = byte(KindOpen)
	b[offPathLen] = 5
	if _, err := decode(b); err == nil {
		t.Error("path longer than the record decoded")
	}
	b[offPathLen] = 4
	copy(b[evHdr:], "/etc")
	// An older program's open: no call, no dirfd (the cwd is assumed).
	if ev, err := decode(b); err != nil || ev.Path != "/etc" || ev.Call != CallUnknown || ev.DirFD != AtFDCWD {
		t.Errorf("decode = %+v, %v", ev, err)
	}
}

// TestWakeup: with a poll interval far longer than the test, a burst of
// events larger than WakeupBytes still wakes the reader (a forced wake-up
// in the kernel).
func TestWakeup(t *testing.T) {
	tl := openTelemetry(t, Config{PollInterval: time.Minute, WakeupBytes: 4096})
	cg := testenv.NewCgroup(t)
	if err := tl.Watch(cg.ID, VisFile); err != nil {
		t.Fatal(err)
	}
	file := testenv.WriteFile(t, t.TempDir(), "f", "x")
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := tl.Read(ctx) // arms the one-minute deadline, then sleeps
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cmd := child(t, cg, "burst", "T_FILE="+file, "T_N=200")
	cmd.Stdin = strings.NewReader("go\n")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("reader woken %v after the burst began", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("a burst of 200 events did not wake the reader")
	}
}
