package telemetry

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"unsafe"
)

// Offsets into a ring buffer record (struct tel_event in bpf/telemetry/telemetry.bpf.c,
// generated as telemetryTelEvent). The record is decoded by hand, not by
// reflection: the reader's throughput is the decoder's.
var (
	evHdr      = int(unsafe.Offsetof(telemetryTelEvent{}.Path))
	offCgroup  = int(unsafe.Offsetof(telemetryTelEvent{}.CgroupId))
	offTs      = int(unsafe.Offsetof(telemetryTelEvent{}.TsNs))
	offRet     = int(unsafe.Offsetof(telemetryTelEvent{}.Ret))
	offPid     = int(unsafe.Offsetof(telemetryTelEvent{}.Pid))
	offTgid    = int(unsafe.Offsetof(telemetryTelEvent{}.Tgid))
	offPpid    = int(unsafe.Offsetof(telemetryTelEvent{}.Ppid))
	offUID     = int(unsafe.Offsetof(telemetryTelEvent{}.Uid))
	offFlags   = int(unsafe.Offsetof(telemetryTelEvent{}.Flags))
	offFamily  = int(unsafe.Offsetof(telemetryTelEvent{}.Family))
	offType    = int(unsafe.Offsetof(telemetryTelEvent{}.SockType))
	offProto   = int(unsafe.Offsetof(telemetryTelEvent{}.Protocol))
	offCap     = int(unsafe.Offsetof(telemetryTelEvent{}.Cap))
	offAddrFam = int(unsafe.Offsetof(telemetryTelEvent{}.AddrFamily))
	offPort    = int(unsafe.Offsetof(telemetryTelEvent{}.Port))
	offAddr    = int(unsafe.Offsetof(telemetryTelEvent{}.Addr))
	offPathLen = int(unsafe.Offsetof(telemetryTelEvent{}.PathLen))
	offKind    = int(unsafe.Offsetof(telemetryTelEvent{}.Kind))
	offCall    = int(unsafe.Offsetof(telemetryTelEvent{}.Call))
	offDirfd   = int(unsafe.Offsetof(telemetryTelEvent{}.Dirfd))
	offComm    = int(unsafe.Offsetof(telemetryTelEvent{}.Comm))
)

// Socket address families as the programs report them.
const (
	afUnix  = 1
	afInet  = 2
	afInet6 = 10
)

// decoder keeps the last command name it made into a string: events come
// in runs from one process, and reusing it saves an allocation per event.
type decoder struct {
	comm    [16]byte
	commStr string
}

func (d *decoder) commOf(b []byte) string {
	if d.commStr == "" || !bytes.Equal(b, d.comm[:]) {
		copy(d.comm[:], b)
		d.commStr = cString(b)
	}
	return d.commStr
}

// decode turns one ring buffer record into an Event.
func decode(b []byte) (Event, error) {
	var d decoder
	return d.decode(b)
}

func (d *decoder) decode(b []byte) (Event, error) {
	if len(b) < evHdr {
		return Event{}, fmt.Errorf("telemetry record of %d bytes, shorter than its %d-byte header", len(b), evHdr)
	}
	ne := binary.NativeEndian
	u32 := func(off int) uint32 { return ne.Uint32(b[off:]) }
	ev := Event{
		Kind:       Kind(b[offKind]),
		CgroupID:   ne.Uint64(b[offCgroup:]),
		BootNs:     ne.Uint64(b[offTs:]),
		PID:        u32(offPid),
		TGID:       u32(offTgid),
		PPID:       u32(offPpid),
		UID:        u32(offUID),
		Comm:       d.commOf(b[offComm : offComm+16]),
		Flags:      u32(offFlags),
		Ret:        int64(ne.Uint64(b[offRet:])),
		Family:     u32(offFamily),
		SockType:   u32(offType),
		Protocol:   u32(offProto),
		Capability: int(int32(u32(offCap))),
	}
	if ev.Kind < KindExec || ev.Kind > KindCapable {
		return ev, fmt.Errorf("telemetry record of unknown kind %d", ev.Kind)
	}
	if ev.Kind == KindOpen {
		ev.Call, ev.DirFD = OpenCall(b[offCall]), int32(u32(offDirfd))
		if ev.Call == CallUnknown {
			ev.DirFD = AtFDCWD // an older program's record: relative to the cwd, as assumed before
		}
	}
	n := int(ne.Uint16(b[offPathLen:]))
	if n > len(b)-evHdr {
		return ev, fmt.Errorf("telemetry record of %d bytes with a %d-byte path", len(b), n)
	}
	path := b[evHdr : evHdr+n]
	// The port is in network byte order, as the sockaddr had it.
	port := binary.BigEndian.Uint16(b[offPort:])
	switch ne.Uint16(b[offAddrFam:]) {
	case afInet:
		ev.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[offAddr:offAddr+4])), port)
	case afInet6:
		ev.Addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[offAddr:offAddr+16])), port)
	case afUnix:
		// Abstract names start with a NUL and are written with '@', as
		// ss(8) does; a pathname ends at its NUL.
		if len(path) > 0 && path[0] == 0 {
			ev.Path = "@" + string(path[1:])
			return ev, nil
		}
		ev.Path = cString(path)
		return ev, nil
	}
	ev.Path = string(path)
	return ev, nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
