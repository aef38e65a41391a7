package tracer

import (
	"strconv"
	"strings"
	"syscall"

	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/tracer/alert"
	"github.com/nri-armor/nri-armor/tracer/telemetry"
)

var kindNames = [...]string{
	telemetry.KindExec: "exec", telemetry.KindExit: "exit", telemetry.KindFork: "fork",
	telemetry.KindOpen: "open", telemetry.KindSocket: "socket", telemetry.KindConnect: "connect",
	telemetry.KindBind: "bind", telemetry.KindAccept: "accept", telemetry.KindCapable: "capable",
}

func kindName(k telemetry.Kind) string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// describe fills a's Operation, Resource and Data for ev and returns the
// policy event to decide; f is the file an exec or open named. matchable
// is false for kinds that no rule class decides (connect, bind, accept:
// network rules name protocols, decided once, at socket creation, as the
// kernel does), and for an open whose path stayed relative.
func (t *Tracer) describe(a *alert.Alert, ev *telemetry.Event, f *fileName, p *proc, prevExe string) (policy.Event, bool) {
	pev := policy.Event{UID: ev.UID, Source: p.exe}
	switch ev.Kind {
	case telemetry.KindExec:
		a.Operation, a.Resource, a.Cwd = alert.OpProcess, f.path, f.cwd
		a.Data = "syscall=SYS_EXECVE" + f.data(ev.Path)
		pev.Class, pev.Path, pev.Source, pev.Owner = policy.ClassProcess, f.path, prevExe, f.owner
		return pev, true // execname rules match a relative path too
	case telemetry.KindOpen:
		call := "SYS_OPENAT"
		if c := ev.Call.String(); c != "" {
			call = "SYS_" + strings.ToUpper(c)
		}
		var dirfd string
		if ev.Call != telemetry.CallUnknown && ev.DirFD != telemetry.AtFDCWD && ev.Path != "" && ev.Path[0] != '/' {
			dirfd = " dirfd=" + strconv.Itoa(int(ev.DirFD))
		}
		a.Operation, a.Resource, a.Cwd = alert.OpFile, f.path, f.cwd
		a.Data = "syscall=" + call + " flags=" + openFlags(ev.Flags) + dirfd + f.data(ev.Path)
		pev.Class, pev.Path, pev.Write, pev.Owner = policy.ClassFile, f.path, isWrite(ev.Flags), f.owner
		return pev, f.path != "" && f.path[0] == '/'
	case telemetry.KindSocket:
		a.Operation, a.Data = alert.OpNetwork, "syscall=SYS_SOCKET"
		a.Resource = socketResource(ev.Family, ev.SockType, ev.Protocol)
		pev.Class = policy.ClassNetwork
		s, covered := policy.SocketNames(ev.Family, ev.SockType, ev.Protocol)
		pev.Protocol, pev.SocketType, pev.Family = s.Protocol, s.Type, s.Family
		return pev, covered // as in the kernel: other families match no rule
	case telemetry.KindConnect, telemetry.KindBind, telemetry.KindAccept:
		a.Operation = alert.OpNetwork
		a.Data = "syscall=SYS_" + strings.ToUpper(kindName(ev.Kind))
		var b strings.Builder
		if ev.Addr.IsValid() {
			key := "remoteip="
			if ev.Kind == telemetry.KindBind {
				key = "localip="
			}
			b.WriteString(key + ev.Addr.Addr().String() + " port=" + strconv.Itoa(int(ev.Addr.Port())) + " ")
		}
		s, _ := policy.SocketNames(ev.Family, ev.SockType, ev.Protocol)
		proto := s.Protocol
		if proto == "" {
			proto = s.Type
		}
		b.WriteString("protocol=" + strings.ToUpper(proto))
		a.Resource = b.String()
		pev.Class = policy.ClassNetwork
		return pev, false
	case telemetry.KindCapable:
		a.Operation, a.Resource = alert.OpCapabilities, capResource(ev.Capability)
		a.Data = "capability=" + strconv.Itoa(ev.Capability)
		pev.Class, pev.Capability = policy.ClassCapabilities, policy.CapabilityName(ev.Capability)
		return pev, pev.Capability != ""
	}
	return pev, false
}

func capResource(n int) string {
	if name := policy.CapabilityName(n); name != "" {
		return "CAP_" + strings.ToUpper(name)
	}
	return "CAP_" + strconv.Itoa(n)
}

var familyNames = map[uint32]string{
	syscall.AF_UNIX: "AF_UNIX", syscall.AF_INET: "AF_INET", syscall.AF_INET6: "AF_INET6",
	syscall.AF_NETLINK: "AF_NETLINK", syscall.AF_PACKET: "AF_PACKET",
}

var sockTypeNames = map[uint32]string{
	syscall.SOCK_STREAM: "SOCK_STREAM", syscall.SOCK_DGRAM: "SOCK_DGRAM", syscall.SOCK_RAW: "SOCK_RAW",
	syscall.SOCK_RDM: "SOCK_RDM", syscall.SOCK_SEQPACKET: "SOCK_SEQPACKET", 6: "SOCK_DCCP", syscall.SOCK_PACKET: "SOCK_PACKET",
}

// socketResource is KubeArmor's Resource of a socket: "domain=AF_INET
// type=SOCK_RAW protocol=1".
func socketResource(family, sockType, proto uint32) string {
	fam, ok := familyNames[family]
	if !ok {
		fam = strconv.FormatUint(uint64(family), 10)
	}
	typ, ok := sockTypeNames[sockType&0xf] // without SOCK_NONBLOCK, SOCK_CLOEXEC
	if !ok {
		typ = strconv.FormatUint(uint64(sockType), 10)
	}
	return "domain=" + fam + " type=" + typ + " protocol=" + strconv.FormatUint(uint64(proto), 10)
}

// data is what the alert's Data says of the file's name: what could not be
// resolved, and the spelling when it differs from the name.
func (f *fileName) data(spelling string) string {
	if f.path == spelling {
		return f.note
	}
	return f.note + " path=" + quoteData(spelling)
}

// quoteData quotes a Data value that has spaces, quotes or unprintable
// bytes, which would otherwise run into the next key.
func quoteData(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == '"' || c >= 0x7f {
			return strconv.Quote(s)
		}
	}
	return s
}

// isWrite: the open may modify the file (write access, truncation),
// which is what readOnly rules tell apart.
func isWrite(flags uint32) bool {
	return flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
}

var openFlagNames = []struct {
	bit  uint32
	name string
}{
	{syscall.O_CREAT, "O_CREAT"}, {syscall.O_EXCL, "O_EXCL"}, {syscall.O_TRUNC, "O_TRUNC"},
	{syscall.O_APPEND, "O_APPEND"}, {syscall.O_DIRECTORY, "O_DIRECTORY"}, {syscall.O_CLOEXEC, "O_CLOEXEC"},
}

func openFlags(f uint32) string {
	var s string
	switch f & syscall.O_ACCMODE {
	case syscall.O_WRONLY:
		s = "O_WRONLY"
	case syscall.O_RDWR:
		s = "O_RDWR"
	default:
		s = "O_RDONLY"
	}
	for _, n := range openFlagNames {
		if f&n.bit != 0 {
			s += "|" + n.name
		}
	}
	return s
}
