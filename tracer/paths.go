package tracer

import (
	"errors"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// Telemetry reports a path as the process spelled it: /etc//shadow,
// ./shadow, /proc/self/root/etc/shadow, a symlink. The kernel's checks
// (BPF-LSM) name the file itself (bpf_d_path of the opened file), and so
// must the tracer where it matches telemetry against the rules instead:
// this file turns a spelling into the file's path as the container sees
// it, as far as user space still can when the event is read.
//
//  1. A relative path is joined to the directory it starts from: the
//     process's cwd, or openat's dirfd (/proc/<pid>/cwd, /proc/<pid>/fd/N).
//  2. Prefixes that only name the process's own root, cwd, executable or
//     fds are replaced by what they name: /proc/self/root,
//     /proc/thread-self/root, /proc/<its pid>/root (another pid's root too,
//     when it is the same directory), /proc/self/{cwd,exe,fd/N}, /dev/fd/N.
//  3. The path is looked up in the process's root (/proc/<pid>/root) with
//     openat2(RESOLVE_IN_ROOT): the kernel follows symlinks and ".." as it
//     did for the process, an absolute symlink starts again at that root,
//     and nothing resolves outside it. The opened O_PATH descriptor's name
//     is the file's path.
//
// Step 3 needs the process alive (its root); when it is gone the path is
// cleaned lexically (path.Clean: "//", "/./" and ".." — a ".." after a
// symlink then names the link's parent, not its target's) and the alert's
// Data says symlinks=unresolved. docs/tracer.md lists the limits.

// lookup says how far an event of class c is resolved: looked up in the
// process's root only where user space decides it against rules (a class
// the kernel does not enforce for the container, or rules its enforcer
// cannot express) — a lookup costs system calls, a log of a class without
// rules does not need it — and with the file's owner where a rule of the
// class is ownerOnly.
type lookup struct{ root, owner bool }

func lookups(set *ruleSet, c policy.Class, enforcers map[policy.Class]string, unenforced map[int]bool) lookup {
	if set == nil || len(set.rs.Class(c).Rules) == 0 || enforcers[c] != "" && len(unenforced) == 0 {
		return lookup{}
	}
	return lookup{root: true, owner: set.ownerOnly[c]}
}

// execName names the file an exec ran (the event's path is the kernel's
// bprm->filename: as passed to execve).
func (t *Tracer) execName(ev *telemetry.Event, l lookup) fileName {
	f := t.paths.name(ev.TGID, t.procs.nspid(ev.TGID), ev.Path, telemetry.AtFDCWD, true, l.root, l.owner)
	if f.note != "" && strings.HasPrefix(ev.Path, "/dev/fd/") {
		// execveat's file, by a descriptor the exec closed (close-on-exec):
		// the process's executable is that file.
		if exe := t.paths.link(ev.TGID, "exe"); exe != "" {
			f.path, f.note = exe, ""
		}
	}
	return f
}

// openName names the file an open named. A path the kernel found missing
// (ENOENT, ENOTDIR) names no file: it is only cleaned.
func (t *Tracer) openName(ev *telemetry.Event, l lookup) fileName {
	missing := ev.Ret == -int64(unix.ENOENT) || ev.Ret == -int64(unix.ENOTDIR)
	// A final symlink is not followed with O_NOFOLLOW, nor by O_CREAT|O_EXCL.
	follow := ev.Flags&unix.O_NOFOLLOW == 0 && ev.Flags&(unix.O_CREAT|unix.O_EXCL) != unix.O_CREAT|unix.O_EXCL
	dirfd := ev.DirFD
	if ev.Call == telemetry.CallUnknown {
		dirfd = telemetry.AtFDCWD // a source that does not say: the cwd
	}
	return t.paths.name(ev.TGID, t.procs.get(ev.TGID).nspid, ev.Path, dirfd, follow, l.root && !missing, l.owner)
}

// fileName is an event's path made into the file's name.
type fileName struct {
	path string // the name; the (cleaned) spelling where it could not be resolved
	cwd  string // the current directory a relative path was joined to
	// note is appended to the alert's Data: what could not be resolved
	// (" relative=unresolved", " symlinks=unresolved").
	note  string
	owner uint32 // the file's owner when asked for; ^0 when unknown
}

// maxProcPrefixes bounds how many /proc/self/root-like prefixes are
// removed from one path (/proc/self/root/proc/self/root/…).
const maxProcPrefixes = 8

// resolver names files for the processes of the host's /proc (the
// tracer's ProcRoot). Not safe for concurrent use: the tracer's pipeline
// runs on one goroutine.
type resolver struct {
	proc string
	buf  []byte // readlink's buffer
	// The root directory of the last process looked up in: events come
	// in runs from one process, and opening its root costs more than the
	// lookup. Kept only until the pipeline is idle (release), or the
	// next event of another process: an open directory keeps its mount
	// busy, and a container's root must be unmountable once it stops.
	root rootDir
}

type rootDir struct {
	tgid uint32
	fd   int    // -1: none (or the process is gone: err)
	view string // its path as this tracer sees it
	err  error
}

func newResolver(procRoot string) *resolver {
	return &resolver{proc: procRoot, buf: make([]byte, unix.PathMax+1), root: rootDir{fd: -1}}
}

func (r *resolver) pidDir(tgid uint32) string {
	return r.proc + "/" + strconv.FormatUint(uint64(tgid), 10)
}

func (r *resolver) readlink(p string) (string, bool) {
	n, err := unix.Readlink(p, r.buf)
	if err != nil || n >= len(r.buf) {
		return "", false
	}
	return string(r.buf[:n]), true
}

// under returns p, a path as this tracer sees it (a /proc link's target),
// as seen from root, the process's root as this tracer sees it. When the
// process's root is that of another mount namespace the kernel already
// shows both from there (root is "/"); a chroot shows host paths.
func under(p, root string) (string, bool) {
	if p == "" || p[0] != '/' {
		return "", false // pipe:[…], socket:[…], anon_inode:…
	}
	if root == "/" {
		return p, true
	}
	rest, ok := strings.CutPrefix(p, root)
	switch {
	case !ok:
		return "", false
	case rest == "":
		return "/", true
	case rest[0] != '/':
		return "", false // /rootfs2 is not under /rootfs
	}
	return rest, true
}

// link reads one of /proc/<tgid>'s links (cwd, exe, fd/N) and returns its
// target as the process sees it; "" when the process is gone, the link is
// not a path, or its target is outside the process's root.
func (r *resolver) link(tgid uint32, name string) string {
	dir := r.pidDir(tgid)
	target, ok := r.readlink(dir + "/" + name)
	if !ok {
		return ""
	}
	root := r.root.view
	if r.root.tgid != tgid || r.root.fd < 0 {
		if root, ok = r.readlink(dir + "/root"); !ok {
			return ""
		}
	}
	p, _ := under(target, root)
	return p
}

// name resolves spelling, a path an exec or open of process tgid
// (nspid: its pid in its own namespace, 0 when unknown) passed, relative
// to dirfd (telemetry.AtFDCWD: the cwd). follow: a final symlink is
// followed (not for O_NOFOLLOW); lookup: step 3 is tried (not for a path
// the kernel found missing); owner: the file's owner is wanted.
func (r *resolver) name(tgid, nspid uint32, spelling string, dirfd int32, follow, lookup, owner bool) fileName {
	f := fileName{path: spelling, owner: ^uint32(0)}
	if spelling == "" {
		return f
	}
	p := spelling
	if p[0] != '/' {
		var base string
		if dirfd == telemetry.AtFDCWD {
			base = r.link(tgid, "cwd")
			f.cwd = base
		} else {
			base = r.link(tgid, "fd/"+strconv.Itoa(int(dirfd)))
		}
		if base == "" {
			f.cwd, f.note = "", " relative=unresolved"
			return f
		}
		p = base + "/" + p
	}
	p = r.unproc(tgid, nspid, p)
	f.path = path.Clean(p)
	if !lookup {
		return f
	}
	if name, uid, err := r.inRoot(tgid, p, follow, owner); err == nil {
		f.path, f.owner = name, uid
	} else {
		f.note = " symlinks=unresolved"
	}
	return f
}

// next returns p's first component and the rest (empty, or starting with
// '/'), skipping empty and "." components.
func next(p string) (elem, rest string) {
	for {
		p = strings.TrimLeft(p, "/")
		if i := strings.IndexByte(p, '/'); i >= 0 {
			elem, rest = p[:i], p[i:]
		} else {
			elem, rest = p, ""
		}
		if elem != "." {
			return elem, rest
		}
		p = rest
	}
}

func isPid(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// unproc replaces the prefixes of p that name the process's own root,
// cwd, executable or fds (step 2), repeatedly; what it cannot tell is
// left as it is.
func (r *resolver) unproc(tgid, nspid uint32, p string) string {
	for range maxProcPrefixes {
		q, ok := r.unprocOnce(tgid, nspid, p)
		if !ok {
			break
		}
		p = q
	}
	return p
}

func (r *resolver) unprocOnce(tgid, nspid uint32, p string) (string, bool) {
	top, rest := next(p)
	switch top {
	case "dev": // /dev/fd/N: the kernel's name for execveat's file, a symlink to /proc/self/fd
		if e, rest := next(rest); e == "fd" {
			return r.fdLink(tgid, rest)
		}
		return "", false
	case "proc":
	default:
		return "", false
	}
	who, rest := next(rest)
	own := who == "self" || who == "thread-self" || nspid != 0 && who == strconv.FormatUint(uint64(nspid), 10)
	if !own && !isPid(who) {
		return "", false
	}
	dir := "/proc/" + who
	e, rest := next(rest)
	if e == "task" && who != "thread-self" {
		// /proc/<pid>/task/<tid>/…: a thread of that process, which
		// shares its root, cwd and fds (threads made with CLONE_FS and
		// CLONE_FILES, as pthreads are).
		tid, r2 := next(rest)
		if !isPid(tid) {
			return "", false
		}
		dir += "/task/" + tid
		e, rest = next(r2)
	}
	switch {
	case e == "root" && (own || r.sameRoot(tgid, dir)):
		if rest == "" {
			return "/", true
		}
		return rest, true
	case !own:
		return "", false
	case e == "cwd" || e == "exe":
		return r.join(r.link(tgid, e), rest)
	case e == "fd":
		return r.fdLink(tgid, rest)
	case who == "self" && nspid != 0 && e != "..":
		// /proc/self/status is /proc/<pid>/status to the kernel, which
		// names the file by its pid directory. (The tracer cannot follow
		// "self" in the container's /proc: it is no process there.)
		return "/proc/" + strconv.FormatUint(uint64(nspid), 10) + "/" + e + rest, true
	}
	return "", false
}

// fdLink replaces N at the start of rest by what the process's fd N
// names.
func (r *resolver) fdLink(tgid uint32, rest string) (string, bool) {
	n, rest := next(rest)
	if !isPid(n) {
		return "", false
	}
	return r.join(r.link(tgid, "fd/"+n), rest)
}

func (r *resolver) join(base, rest string) (string, bool) {
	if base == "" {
		return "", false
	}
	return base + rest, true
}

// rootOf returns the process's root directory (an O_PATH descriptor,
// kept until release or until another process's is needed) and its path
// as this tracer sees it.
func (r *resolver) rootOf(tgid uint32) (int, string, error) {
	if r.root.tgid == tgid && (r.root.fd >= 0 || r.root.err != nil) {
		return r.root.fd, r.root.view, r.root.err
	}
	r.release()
	r.root.tgid = tgid
	fd, err := unix.Open(r.pidDir(tgid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.root.err = err
		return -1, "", err
	}
	view, ok := r.fdPath(fd)
	if !ok {
		unix.Close(fd)
		r.root.err = errNoName
		return -1, "", errNoName
	}
	r.root.fd, r.root.view = fd, view
	return fd, view, nil
}

// release closes the root directory kept, if any.
func (r *resolver) release() {
	if r.root.fd >= 0 {
		unix.Close(r.root.fd)
	}
	r.root = rootDir{fd: -1}
}

var errNoName = errors.New("no path for the descriptor")

// fdPath is the path of this process's descriptor fd, as it sees it.
func (r *resolver) fdPath(fd int) (string, bool) {
	return r.readlink("/proc/self/fd/" + strconv.Itoa(fd))
}

// inRoot looks p (absolute) up in the process's root (step 3) and
// returns the path of what it found, as the process sees it, and its owner
// when asked for (^0 otherwise).
func (r *resolver) inRoot(tgid uint32, p string, follow, owner bool) (string, uint32, error) {
	root, rootName, err := r.rootOf(tgid)
	if err != nil {
		return "", 0, err
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_SYMLINKS}
	if !follow {
		how.Flags |= unix.O_NOFOLLOW
	}
	// Most paths have no symlink: then p cleaned is the name (a ".." went
	// to the parent of a directory, as lexically), and the lookup that
	// says so is the only system call. A symlink on the way fails it
	// (ELOOP), and the lookup that follows it names what it found.
	fd, err := unix.Openat2(root, p, &how)
	name := path.Clean(p)
	if err == unix.ELOOP {
		how.Resolve &^= unix.RESOLVE_NO_SYMLINKS
		if fd, err = unix.Openat2(root, p, &how); err == nil {
			var ok bool
			if name, ok = r.fdPath(fd); ok {
				// Unlinked since the lookup, a moment ago: the name it had.
				name, ok = under(strings.TrimSuffix(name, " (deleted)"), rootName)
			}
			if !ok {
				unix.Close(fd)
				return "", 0, errNoName
			}
		}
	}
	if err != nil {
		return "", 0, err
	}
	defer unix.Close(fd)
	uid := ^uint32(0)
	if owner {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			uid = st.Uid
		}
	}
	return name, uid, nil
}

// sameRoot says whether dir, a /proc/<pid> directory in the process's
// root, names a process whose root is the same directory as its own.
func (r *resolver) sameRoot(tgid uint32, dir string) bool {
	root, _, err := r.rootOf(tgid)
	if err != nil {
		return false
	}
	d, err := unix.Openat2(root, dir, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return false
	}
	defer unix.Close(d)
	other, err := unix.Openat(d, "root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0) // the magic link, followed
	if err != nil {
		return false
	}
	defer unix.Close(other)
	var a, b unix.Stat_t
	return unix.Fstat(root, &a) == nil && unix.Fstat(other, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino
}
