package tracer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer/alert"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// fakeProc is a host /proc (the tracer's ProcRoot) whose processes live
// in a container root that is a temporary directory, seen from the host as
// a chroot's is: /proc/<pid>/root is a symlink to it, cwd and fd/N point
// into it. Beside the root, outside it, "outside" holds what a symlink
// escaping the root would reach.
type fakeProc struct {
	proc, root, outside string
}

const (
	spellPID   = 4100 // the process of the spelling tests: cwd /etc, fd 3 on /etc, container pid 7
	spellNSpid = 7
	spellExec  = 4101 // a process whose cwd is /usr/bin
)

func newFakeProc(t *testing.T) *fakeProc {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fp := &fakeProc{proc: filepath.Join(base, "proc"), root: filepath.Join(base, "root"), outside: base}
	for _, f := range []string{"etc/shadow", "etc/x/.keep", "usr/bin/curl", "proc/7/status", "proc/9/.keep", "proc/10/.keep"} {
		testenv.WriteFile(t, fp.root, f, "x")
	}
	// What the escaping links below would reach if they escaped: a
	// shadow next to the root.
	testenv.WriteFile(t, base, "etc/shadow", "host")
	testenv.WriteFile(t, base, "host-only/secret", "host")
	symlink(t, "/etc/shadow", fp.root, "tmp/abs")                            // absolute: from the root
	symlink(t, "../etc/shadow", fp.root, "tmp/rel")                          // relative
	symlink(t, "../../etc/shadow", fp.root, "tmp/up")                        // climbs above the root: stays at it
	symlink(t, filepath.Join(base, "host-only/secret"), fp.root, "tmp/host") // a host path: nothing in the root
	symlink(t, "../../bin/curl", fp.root, "usr/local/bin/curl")
	symlink(t, fp.root, fp.root, "proc/9/root")                           // another process of the same root
	symlink(t, filepath.Join(base, "host-only"), fp.root, "proc/10/root") // one of another root

	for pid, cwd := range map[int]string{spellPID: "/etc", spellExec: "/usr/bin"} {
		dir := filepath.Join(fp.proc, strconv.Itoa(pid))
		symlink(t, fp.root, dir, "root")
		symlink(t, fp.root+cwd, dir, "cwd")
		symlink(t, fp.root+"/usr/bin/curl", dir, "exe")
		symlink(t, fp.root+"/etc", dir, "fd/3")
		testenv.WriteFile(t, dir, "status", "Name:\tcat\nPPid:\t1\nNSpid:\t"+strconv.Itoa(pid)+"\t"+strconv.Itoa(spellNSpid)+"\n")
	}
	return fp
}

func symlink(t *testing.T, target, dir, name string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// TestSpellings: on an audit-only node the tracer matches the file an open
// or exec named, not its spelling. Each spelling of /etc/shadow (a Block
// rule of ShopPolicy) and of /usr/bin/curl (a process Block rule) raises
// the alert the rule asks for, naming the file and saying the spelling;
// symlinks resolve inside the process's root, never outside it.
func TestSpellings(t *testing.T) {
	fp := newFakeProc(t)
	cfg := testConfig()
	cfg.ProcRoot = fp.proc
	e := newEnv(t, cfg)
	open := func(path string) telemetry.Event { return openEv(e.cg, spellPID, path, syscall.O_RDONLY) }
	atFD := func(fd int32, path string) telemetry.Event {
		ev := open(path)
		ev.Call, ev.DirFD = telemetry.CallOpenat, fd
		return ev
	}
	exec := func(tgid uint32, path string) telemetry.Event {
		ev := execEv(e.cg, tgid, 1, path)
		ev.Comm = "curl"
		return ev
	}
	for _, c := range []struct {
		name string
		ev   telemetry.Event
		want string // the alert's Resource
		cwd  string
	}{
		{"double slash", open("/etc//shadow"), "/etc/shadow", ""},
		{"dot", open("/etc/./shadow"), "/etc/shadow", ""},
		{"dot-dot", open("/etc/x/../shadow"), "/etc/shadow", ""},
		{"proc self root", open("/proc/self/root/etc/shadow"), "/etc/shadow", ""},
		{"proc thread-self root", open("/proc/thread-self/root/etc/shadow"), "/etc/shadow", ""},
		{"proc own pid root", open("/proc/" + strconv.Itoa(spellNSpid) + "/root/etc/shadow"), "/etc/shadow", ""},
		{"proc same-root pid", open("/proc/9/root/etc/shadow"), "/etc/shadow", ""},
		{"proc task root", open("/proc/self/task/7/root/etc/shadow"), "/etc/shadow", ""},
		{"nested proc roots", open("/proc/self/root/proc/self/root//etc/shadow"), "/etc/shadow", ""},
		{"proc self cwd", open("/proc/self/cwd/shadow"), "/etc/shadow", ""},
		{"proc self fd", open("/proc/self/fd/3/shadow"), "/etc/shadow", ""},
		{"dev fd", open("/dev/fd/3/shadow"), "/etc/shadow", ""},
		{"relative to cwd", open("./shadow"), "/etc/shadow", "/etc"},
		{"relative dot-dot", open("../etc/shadow"), "/etc/shadow", "/etc"},
		{"relative to dirfd", atFD(3, "shadow"), "/etc/shadow", ""},
		{"absolute symlink", open("/tmp/abs"), "/etc/shadow", ""},
		{"relative symlink", open("/tmp/rel"), "/etc/shadow", ""},
		{"symlink climbing above the root", open("/tmp/up"), "/etc/shadow", ""},
		{"relative exec", exec(spellExec, "./curl"), "/usr/bin/curl", "/usr/bin"},
		{"exec through a symlink", exec(spellExec, "/usr/local/bin/curl"), "/usr/bin/curl", ""},
		{"exec of a closed fd", exec(spellExec, "/dev/fd/5"), "/usr/bin/curl", ""},
	} {
		e.t.Telemetry(&c.ev)
		got := e.alerts(t)
		if len(got) != 1 {
			t.Errorf("%s (%s): %d records, want 1: %+v", c.name, c.ev.Path, len(got), got)
			continue
		}
		a := got[0]
		if a.Type != alert.TypeMatchedPolicy || a.PolicyName != "shop-guard" || a.Action != "Block" || a.Result != alert.ResultPassed ||
			a.Resource != c.want || a.Cwd != c.cwd || !strings.Contains(a.Data, "unenforced=true") ||
			!strings.Contains(a.Data, " path="+c.ev.Path) || strings.Contains(a.Data, "unresolved") {
			t.Errorf("%s (%s): alert %+v, want Block of %s, cwd %q, path=%s", c.name, c.ev.Path, a, c.want, c.cwd, c.ev.Path)
		}
	}

	// Not the file: no alert. A symlink to a host path resolves inside the
	// root (where nothing is); another root's /proc/<pid>/root is not
	// this one; a final symlink with O_NOFOLLOW is the link itself.
	nofollow := openEv(e.cg, spellPID, "/tmp/abs", syscall.O_RDONLY|syscall.O_NOFOLLOW)
	nofollow.Ret = -int64(syscall.ELOOP)
	for _, ev := range []telemetry.Event{open("/tmp/host"), open("/proc/10/root/etc/shadow"), nofollow} {
		e.t.Telemetry(&ev)
		got := e.alerts(t)
		if len(got) != 1 || got[0].Type != alert.TypeContainerLog || strings.HasPrefix(got[0].Resource, fp.outside) {
			t.Errorf("%s: %+v, want one ContainerLog naming no host path", ev.Path, got)
		}
	}

	// /proc/self in the container's /proc is the process's own pid
	// directory, as the kernel names it.
	self := open("/proc/self/status")
	e.t.Telemetry(&self)
	if got := e.alerts(t); len(got) != 1 || got[0].Resource != "/proc/"+strconv.Itoa(spellNSpid)+"/status" || strings.Contains(got[0].Data, "unresolved") {
		t.Errorf("/proc/self/status: %+v", got)
	}

	// The process is gone: the spelling is cleaned, and the alert says its
	// symlinks could not be resolved.
	gone := openEv(e.cg, 1<<30, "/etc/x/..//./shadow", syscall.O_RDONLY)
	e.t.Telemetry(&gone)
	if got := e.alerts(t); len(got) != 1 || got[0].Resource != "/etc/shadow" || got[0].Action != "Block" ||
		!strings.Contains(got[0].Data, "symlinks=unresolved") || !strings.Contains(got[0].Data, "path=/etc/x/..//./shadow") {
		t.Errorf("gone process: %+v", got)
	}
}

// TestUnder: a /proc link's target is made relative to the process's root
// only when it is below it.
func TestUnder(t *testing.T) {
	for _, c := range []struct {
		p, root, want string
		ok            bool
	}{
		{"/etc/shadow", "/", "/etc/shadow", true},
		{"/rootfs/etc", "/rootfs", "/etc", true},
		{"/rootfs", "/rootfs", "/", true},
		{"/rootfs2/etc", "/rootfs", "", false},
		{"/other", "/rootfs", "", false},
		{"pipe:[42]", "/", "", false},
	} {
		if got, ok := under(c.p, c.root); got != c.want || ok != c.ok {
			t.Errorf("under(%q, %q) = %q, %v; want %q, %v", c.p, c.root, got, ok, c.want, c.ok)
		}
	}
}

func TestQuoteData(t *testing.T) {
	for in, want := range map[string]string{"/etc/shadow": "/etc/shadow", "/a b": `"/a b"`, "/x\n": `"/x\n"`, `/"q"`: `"/\"q\""`} {
		if got := quoteData(in); got != want {
			t.Errorf("quoteData(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSpellingOwner: an ownerOnly rule is decided with the owner of the
// file the path resolves to, not of a symlink to it.
func TestSpellingOwner(t *testing.T) {
	testenv.RequireRoot(t) // chown
	fp := newFakeProc(t)
	owned := testenv.WriteFile(t, fp.root, "etc/owned", "x")
	if err := os.Chown(owned, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	symlink(t, "/etc/owned", fp.root, "tmp/owned")
	cfg := testConfig()
	cfg.ProcRoot = fp.proc
	e := newEnv(t, cfg)
	rs := policytest.Compile(t, `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: owners, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  file:
    matchPaths:
    - path: /etc/owned
      ownerOnly: true
  action: Block
`)
	if err := e.dir.PutSet(rs); err != nil {
		t.Fatal(err)
	}
	if err := e.dir.PutContainer(state.Container{CgroupID: 77, ContainerName: "app", PodName: "web-3", PodNamespace: "shop", PolicySet: rs.Digest}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		uid   uint32
		alert bool
	}{{1000, false}, {0, true}} {
		ev := openEv(77, spellPID, "/tmp/owned", syscall.O_RDONLY)
		ev.UID = c.uid
		e.t.Telemetry(&ev)
		got := e.alerts(t)
		if alerted := len(got) == 1 && got[0].Action == "Block" && got[0].Resource == "/etc/owned"; alerted != c.alert || len(got) > 1 {
			t.Errorf("uid %d opening a symlink to a file of uid 1000: %+v, want an alert: %v", c.uid, got, c.alert)
		}
	}
}
