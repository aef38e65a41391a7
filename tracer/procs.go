package tracer

import (
	"bytes"
	"os"
	"strconv"

	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

// proc is what the tracer knows of one process (by host tgid).
type proc struct {
	exe  string // executable path; "" when unknown
	comm string
	ppid uint32 // host tgid of the parent
	// nspid and nsppid are the pids as the container sees them (the last
	// NSpid / of the parent), 0 when /proc could not say.
	nspid, nsppid uint32
	procRead      bool // /proc was consulted (successfully or not)
	// inherited: exe is the parent's, from a fork; the process's own exec
	// may not be read yet.
	inherited bool
	// cgroup: the cgroup v2 id of the last telemetry event of the process
	// (its exec, fork or exit), 0 when none was seen: audit records of a
	// process gone before they are read name it by pid alone.
	cgroup uint64
}

// procTable remembers processes from the exec and fork events seen, and
// from /proc for those that started before the tracer: alerts name the
// process and its parent even after they exited, as long as the table
// holds them. Bounded: an LRU of max processes.
type procTable struct {
	res *resolver // over the host's /proc
	m   *lru[uint32, *proc]
}

func newProcTable(res *resolver, max int) *procTable {
	return &procTable{res: res, m: newLRU[uint32, *proc](max)}
}

// observe updates the table from a telemetry event; for an exec, exe is
// the executable's path (the event's, resolved) and it returns the
// executable the process ran before (the exec's "source").
func (t *procTable) observe(ev *telemetry.Event, exe string) (prevExe string) {
	switch ev.Kind {
	case telemetry.KindExec:
		// The exec has happened when the event is seen: /proc already shows
		// the new executable. So the one before comes from the table, or,
		// for a process not seen before, from its parent (fork then exec:
		// the child ran its parent's executable until now).
		var np proc
		if p, ok := t.m.Get(ev.TGID); ok {
			prevExe, np = p.exe, *p
		} else if ev.PPID != 0 {
			prevExe = t.get(ev.PPID).exe
		}
		np.exe, np.comm, np.inherited, np.cgroup = exe, ev.Comm, false, ev.CgroupID
		if ev.PPID != 0 {
			np.ppid = ev.PPID
		}
		t.m.Put(ev.TGID, &np)
	case telemetry.KindFork:
		// A new process runs its parent's executable until it execs.
		if ev.PID != ev.TGID {
			return "" // a thread: same process
		}
		// The child starts in its parent's cgroup, the event's.
		parent := t.get(ev.PPID)
		t.m.Put(ev.TGID, &proc{exe: parent.exe, comm: ev.Comm, ppid: ev.PPID, nsppid: parent.nspid, inherited: true, cgroup: ev.CgroupID})
	case telemetry.KindExit:
		// Exits are not removed: enforcement events and audit records of
		// the process may still be queued, and the LRU ages it out. The
		// exit says the cgroup it ended in (runc exec's process moved
		// into the container's after its fork). One exit per process.
		if p, ok := t.m.Get(ev.TGID); ok {
			p.cgroup = ev.CgroupID
		} else {
			t.m.Put(ev.TGID, &proc{comm: ev.Comm, ppid: ev.PPID, procRead: true, cgroup: ev.CgroupID})
		}
	}
	return prevExe
}

// get returns what is known of tgid, reading /proc once on a miss.
func (t *procTable) get(tgid uint32) *proc {
	if p, ok := t.m.Get(tgid); ok {
		if !p.procRead && p.nspid == 0 {
			t.readProc(tgid, p)
		}
		return p
	}
	p := &proc{}
	t.readProc(tgid, p)
	t.m.Put(tgid, p)
	return p
}

// reread replaces what is known of tgid's executable with what /proc says
// now (comm when /proc cannot name it), keeping its parent.
func (t *procTable) reread(tgid uint32, comm string) *proc {
	old := t.get(tgid)
	p := &proc{comm: comm, ppid: old.ppid, nsppid: old.nsppid, nspid: old.nspid}
	t.readProc(tgid, p)
	p.comm = comm
	t.m.Put(tgid, p)
	return p
}

// readProc fills what p lacks from /proc/<tgid>. The tracer runs in the
// host's pid namespace (hostPID), so the kernel's pids name /proc entries.
func (t *procTable) readProc(tgid uint32, p *proc) {
	p.procRead = true
	if tgid == 0 {
		return
	}
	if p.exe == "" {
		// "/" is what the kernel shows for an executable it cannot name
		// from here (runc's init, re-executing itself): no name at all,
		// so that the process's comm is used instead.
		if exe := t.res.link(tgid, "exe"); exe != "/" {
			p.exe = exe
		}
	}
	status, err := os.ReadFile(t.res.pidDir(tgid) + "/status")
	if err != nil {
		return
	}
	for line := range bytes.Lines(status) {
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		val = bytes.TrimSpace(val)
		switch string(key) {
		case "Name":
			if p.comm == "" {
				p.comm = string(val)
			}
		case "PPid":
			if n, err := strconv.ParseUint(string(val), 10, 32); err == nil && p.ppid == 0 {
				p.ppid = uint32(n)
			}
		case "NSpid":
			// Outermost first, innermost (the container's view) last.
			if f := bytes.Fields(val); len(f) > 0 {
				if n, err := strconv.ParseUint(string(f[len(f)-1]), 10, 32); err == nil {
					p.nspid = uint32(n)
				}
			}
		}
	}
}

// name is the process's name for alerts: its executable path, else comm.
func (p *proc) name() string {
	if p.exe != "" {
		return p.exe
	}
	return p.comm
}

// cgroupOf is the cgroup of tgid's last telemetry event, 0 when the
// table has none.
func (t *procTable) cgroupOf(tgid uint32) uint64 {
	if p, ok := t.m.Get(tgid); ok {
		return p.cgroup
	}
	return 0
}

// nspid is the pid of tgid in its own namespace as far as the table knows
// it, without reading /proc (an exec must not: see observe); 0 when not.
func (t *procTable) nspid(tgid uint32) uint32 {
	if p, ok := t.m.Get(tgid); ok {
		return p.nspid
	}
	return 0
}
