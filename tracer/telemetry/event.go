package telemetry

import "net/netip"

// Kind is what a telemetry event observed.
type Kind uint8

// Kinds of telemetry events: bpf/include/abi.h's enum tel_kind, whose
// values bpf2go generates.
const (
	KindExec    = Kind(telemetryTelKindK_EXEC)    // sched_process_exec: a successful execve
	KindExit    = Kind(telemetryTelKindK_EXIT)    // sched_process_exit
	KindFork    = Kind(telemetryTelKindK_FORK)    // sched_process_fork
	KindOpen    = Kind(telemetryTelKindK_OPEN)    // sys_exit_open, _openat, _openat2, _creat (with the exit status)
	KindSocket  = Kind(telemetryTelKindK_SOCKET)  // socket(2)
	KindConnect = Kind(telemetryTelKindK_CONNECT) // connect(2)
	KindBind    = Kind(telemetryTelKindK_BIND)    // bind(2)
	KindAccept  = Kind(telemetryTelKindK_ACCEPT)  // accept/accept4(2)
	KindCapable = Kind(telemetryTelKindK_CAPABLE) // capability/cap_capable, where the kernel has it
)

// OpenCall is the system call behind a KindOpen event.
type OpenCall uint8

// Open calls: bpf/telemetry/telemetry.bpf.c's enum tel_open_call.
// CallUnknown comes from programs older than the field (a ring buffer
// pinned by an older version).
const (
	CallUnknown OpenCall = 0
	CallOpen             = OpenCall(telemetryTelOpenCallOC_OPEN)
	CallOpenat           = OpenCall(telemetryTelOpenCallOC_OPENAT)
	CallOpenat2          = OpenCall(telemetryTelOpenCallOC_OPENAT2)
	CallCreat            = OpenCall(telemetryTelOpenCallOC_CREAT)
)

var callNames = [...]string{CallOpen: "open", CallOpenat: "openat", CallOpenat2: "openat2", CallCreat: "creat"}

// String is the system call's name; "" for CallUnknown.
func (c OpenCall) String() string {
	if int(c) < len(callNames) {
		return callNames[c]
	}
	return ""
}

// AtFDCWD is DirFD's value for a path relative to the current directory.
const AtFDCWD = -100

// Event is one decoded telemetry event. The shape is shared with package
// tracer; fields that do not apply to a Kind are zero.
type Event struct {
	Kind     Kind
	CgroupID uint64
	BootNs   uint64 // CLOCK_BOOTTIME
	PID      uint32 // thread id
	TGID     uint32 // process id
	PPID     uint32 // parent's tgid
	UID      uint32
	Comm     string
	// Path: exec — the executable's path as passed to execve (the
	// kernel's bprm->filename: may be relative, or /dev/fd/N for
	// execveat); open — the path as passed (may be relative to DirFD).
	Path  string
	Flags uint32 // open flags (O_WRONLY, O_RDWR, O_CREAT …)
	// Open: the system call, and the directory a relative Path starts
	// from — openat's and openat2's dirfd, AtFDCWD for the current
	// directory (always for open, creat and unknown calls).
	Call  OpenCall
	DirFD int32
	Ret   int64 // the syscall's return: fd, 0 or -errno; exit: exit code
	// Network: address family, socket type and protocol, and the peer or
	// bound address when the syscall carried one.
	Family, SockType, Protocol uint32
	Addr                       netip.AddrPort
	Capability                 int // KindCapable: CAP_* number
}
