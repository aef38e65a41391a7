package events

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/nri-armor/nri-armor/policy"
)

// Event is one Audit or Block decision taken in the kernel, as read from the
// pinned ring buffer.
type Event struct {
	CgroupID uint64
	BootNs   uint64 // CLOCK_BOOTTIME of the decision
	PID      uint32 // thread id
	TGID     uint32 // process id
	PPID     uint32 // 0 when the program could not read it (cgroup programs)
	UID      uint32
	RuleID   uint32 // 0 when the posture decided
	SetID    uint32
	Retval   int32 // what the hook returned: 0 or -EPERM
	Class    policy.Class
	Action   policy.Action
	Posture  bool // DefaultPosture decided
	Builtin  bool // a built-in protection decided (writing cgroupfs)
	// Unnamed: the kernel could not name the file (past PATH_MAX), and the
	// class, having rules, failed closed; Resource is the file's own name only.
	Unnamed bool
	// NoMemory: the kernel had no memory to decide in (every scratch of
	// the CPU taken by preempted decisions, and none to be made), and
	// refused; the event names no file (a socket or a capability it
	// does: Family…, Capability), see bpf/enforce/match.h.
	NoMemory bool
	Write    bool
	Comm     string
	Resource string // path, for process and file events
	// Network events: the socket's family, type and protocol; capabilities: the number.
	Family, SockType, Protocol uint32
	Capability                 int
	// Syscall events (a fromSource rule BPF-LSM enforces): the call's
	// number in its table, and whether that is the 32-bit one (int 0x80).
	Syscall   int
	Syscall32 bool

	raw eventHead
}

// eventHead is the fixed part of a record (eventsEvent without its 4 KiB
// resource), so that an Event stays small enough to pass by value.
type eventHead struct {
	CgroupId, TsNs                      uint64
	Pid, Tgid, Ppid, Uid, RuleId, SetId uint32
	Retval                              int32
	Arg                                 uint32
	Cls, Action, Posture, Write         uint8
	ResLen                              uint16
}

var eventHeader = int(unsafe.Offsetof(eventsEvent{}.Res))

var classNames = map[uint8]policy.Class{
	uint8(eventsArmorClassCLASS_PROCESS):  policy.ClassProcess,
	uint8(eventsArmorClassCLASS_FILE):     policy.ClassFile,
	uint8(eventsArmorClassCLASS_NETWORK):  policy.ClassNetwork,
	uint8(eventsArmorClassCLASS_CAPS):     policy.ClassCapabilities,
	uint8(eventsArmorClassCLASS_SYSCALLS): policy.ClassSyscalls,
}

var actionNames = map[uint8]policy.Action{
	uint8(eventsArmorActionACT_ALLOW): policy.Allow,
	uint8(eventsArmorActionACT_AUDIT): policy.Audit,
	uint8(eventsArmorActionACT_BLOCK): policy.Block,
}

// DecodeEvent reads one ring buffer record: the fixed header, then
// res_len bytes of resource.
func DecodeEvent(b []byte) (Event, error) {
	var ev Event
	if len(b) < eventHeader {
		return ev, fmt.Errorf("event of %d bytes, shorter than its %d-byte header", len(b), eventHeader)
	}
	// Field by field at the C struct's offsets: binary.Read over the whole
	// eventsEvent (reflection over its 4 KiB array) costs far more than the
	// rest of an event's way to an alert (docs/benchmarks.md).
	var a eventsEvent
	ne := binary.NativeEndian
	u32 := func(off uintptr) uint32 { return ne.Uint32(b[off:]) }
	r := &ev.raw
	r.CgroupId, r.TsNs = ne.Uint64(b[unsafe.Offsetof(a.CgroupId):]), ne.Uint64(b[unsafe.Offsetof(a.TsNs):])
	r.Pid, r.Tgid, r.Ppid, r.Uid = u32(unsafe.Offsetof(a.Pid)), u32(unsafe.Offsetof(a.Tgid)), u32(unsafe.Offsetof(a.Ppid)), u32(unsafe.Offsetof(a.Uid))
	r.RuleId, r.SetId, r.Retval = u32(unsafe.Offsetof(a.RuleId)), u32(unsafe.Offsetof(a.SetId)), int32(u32(unsafe.Offsetof(a.Retval)))
	r.Arg = u32(unsafe.Offsetof(a.Arg))
	r.Cls, r.Action, r.Posture, r.Write = b[unsafe.Offsetof(a.Cls)], b[unsafe.Offsetof(a.Action)], b[unsafe.Offsetof(a.Posture)], b[unsafe.Offsetof(a.Write)]
	r.ResLen = ne.Uint16(b[unsafe.Offsetof(a.ResLen):])
	ev.CgroupID, ev.BootNs = r.CgroupId, r.TsNs
	ev.PID, ev.TGID, ev.PPID, ev.UID = r.Pid, r.Tgid, r.Ppid, r.Uid
	ev.RuleID, ev.SetID, ev.Retval = r.RuleId, r.SetId, r.Retval
	ev.Class, ev.Action = classNames[r.Cls], actionNames[r.Action]
	ev.Posture, ev.Builtin, ev.Write = r.Posture == uint8(eventsArmorOriginORIGIN_POSTURE), r.Posture == uint8(eventsArmorOriginORIGIN_BUILTIN), r.Write != 0
	ev.Unnamed = r.Posture == uint8(eventsArmorOriginORIGIN_UNNAMED)
	ev.NoMemory = r.Posture == uint8(eventsArmorOriginORIGIN_NO_MEMORY)
	ev.Comm = cString(b[unsafe.Offsetof(a.Comm) : unsafe.Offsetof(a.Comm)+16])
	n := int(r.ResLen)
	if n > len(b)-eventHeader {
		n = len(b) - eventHeader
	}
	ev.Resource = string(b[eventHeader : eventHeader+n])
	switch ev.Class {
	case policy.ClassNetwork:
		ev.Family, ev.SockType, ev.Protocol = r.Arg>>16, (r.Arg>>8)&0xff, r.Arg&0xff
	case policy.ClassCapabilities:
		ev.Capability = int(r.Arg)
	case policy.ClassSyscalls:
		ev.Syscall, ev.Syscall32 = int(r.Arg&0xffff), r.Arg>>16 == uint32(eventsArmorSysAbiSYS_ABI_IA32)
	}
	return ev, nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Encode is ev as the kernel's programs write it: the inverse of
// DecodeEvent, for tests and tools that replay events.
func Encode(ev Event) []byte {
	var a eventsEvent
	a.CgroupId, a.TsNs = ev.CgroupID, ev.BootNs
	a.Pid, a.Tgid, a.Ppid, a.Uid = ev.PID, ev.TGID, ev.PPID, ev.UID
	a.RuleId, a.SetId, a.Retval = ev.RuleID, ev.SetID, ev.Retval
	for code, c := range classNames {
		if c == ev.Class {
			a.Cls = code
		}
	}
	for code, act := range actionNames {
		if act == ev.Action {
			a.Action = code
		}
	}
	switch {
	case ev.Posture:
		a.Posture = uint8(eventsArmorOriginORIGIN_POSTURE)
	case ev.Builtin:
		a.Posture = uint8(eventsArmorOriginORIGIN_BUILTIN)
	case ev.Unnamed:
		a.Posture = uint8(eventsArmorOriginORIGIN_UNNAMED)
	case ev.NoMemory:
		a.Posture = uint8(eventsArmorOriginORIGIN_NO_MEMORY)
	}
	if ev.Write {
		a.Write = 1
	}
	switch ev.Class {
	case policy.ClassNetwork:
		a.Arg = ev.Family<<16 | (ev.SockType&0xff)<<8 | ev.Protocol&0xff
	case policy.ClassCapabilities:
		a.Arg = uint32(ev.Capability)
	case policy.ClassSyscalls:
		a.Arg = uint32(ev.Syscall) & 0xffff
		if ev.Syscall32 {
			a.Arg |= uint32(eventsArmorSysAbiSYS_ABI_IA32) << 16
		}
	}
	a.ResLen = uint16(len(ev.Resource))
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.NativeEndian, &a)
	b := buf.Bytes()[:eventHeader]
	copy(b[unsafe.Offsetof(a.Comm):unsafe.Offsetof(a.Comm)+15], ev.Comm)
	return append(b, ev.Resource...)
}
