package bpf

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
	Write    bool
	Comm     string
	Resource string // path, for process and file events
	// Network events: the socket's family, type and protocol; capabilities: the number.
	Family, SockType, Protocol uint32
	Capability                 int

	raw eventHead
}

// eventHead is the fixed part of a record (armorEvent without its 4 KiB
// resource), so that an Event stays small enough to pass by value.
type eventHead struct {
	CgroupId, TsNs                      uint64
	Pid, Tgid, Ppid, Uid, RuleId, SetId uint32
	Retval                              int32
	Arg                                 uint32
	Cls, Action, Posture, Write         uint8
	ResLen                              uint16
}

var eventHeader = int(unsafe.Offsetof(armorEvent{}.Res))

var classNames = map[uint8]policy.Class{
	classProcess: policy.ClassProcess, classFile: policy.ClassFile,
	classNetwork: policy.ClassNetwork, classCaps: policy.ClassCapabilities,
}

var actionNames = map[uint8]policy.Action{actAllow: policy.Allow, actAudit: policy.Audit, actBlock: policy.Block}

// DecodeEvent reads one ring buffer record: the fixed header, then
// res_len bytes of resource.
func DecodeEvent(b []byte) (Event, error) {
	var ev Event
	if len(b) < eventHeader {
		return ev, fmt.Errorf("event of %d bytes, shorter than its %d-byte header", len(b), eventHeader)
	}
	// Field by field at the C struct's offsets: binary.Read over the whole
	// armorEvent (reflection over its 4 KiB array) cost 25 µs per event.
	var a armorEvent
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
	ev.Posture, ev.Builtin, ev.Write = r.Posture == 1, r.Posture == 2, r.Write != 0
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
	}
	return ev, nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
