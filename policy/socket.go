package policy

// ProtocolNumbers and SocketTypeNumbers are the kernel's numbers of the
// names network rules use (matchProtocols); "packet" is no socket type
// but the AF_PACKET family, and "all" any socket rules cover.
var (
	ProtocolNumbers   = map[string]uint32{"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "dccp": 33}
	SocketTypeNumbers = map[string]uint32{"stream": 1, "dgram": 2, "raw": 3, "rdm": 4, "seqpacket": 5, "dccp": 6}
)

var protocolByNumber, socketTypeByNumber = invert(ProtocolNumbers), invert(SocketTypeNumbers)

func invert(m map[string]uint32) map[uint32]string {
	out := make(map[uint32]string, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

// Address families network rules cover, and the IP protocols that count
// as another's.
const (
	afInet   = 2
	afInet6  = 10
	afPacket = 17

	ipprotoRaw     = 255 // IPPROTO_RAW: a raw socket that sends any IP protocol, its header written by the process
	ipprotoUDPLite = 136 // UDP-Lite is udp
	ipprotoMPTCP   = 262 // MPTCP is tcp: its subflows are TCP connections
	sockRaw        = 3
	sockPacket     = 10 // SOCK_PACKET: the obsolete raw packet socket (also socket(AF_INET, SOCK_PACKET), which the kernel turns into AF_PACKET before any hook)
)

// AnyIPProtocol is the protocol of a raw socket opened with IPPROTO_RAW,
// which writes whole IP packets of any protocol: every protocol rule
// (tcp, udp, icmp, icmpv6, sctp, dccp) covers it, as `raw` does.
const AnyIPProtocol = "ip"

// Socket is a socket as network rules see it.
type Socket struct {
	// Family is "inet", "inet6" or "packet" (AF_PACKET).
	Family string
	// Protocol is the IP protocol's name: tcp (MPTCP too), udp (UDP-Lite
	// too), icmp, icmpv6, sctp, dccp, or AnyIPProtocol; "" for packet
	// sockets.
	Protocol string
	// Type is the socket type's name (stream, dgram, raw, seqpacket, rdm,
	// dccp); a packet socket's is "raw" for SOCK_RAW and the obsolete
	// SOCK_PACKET, which reads raw frames too — KubeArmor's `raw`
	// covers raw sockets of every family rules cover — else "packet".
	Type string
}

// SocketNames names a socket — its family, type and protocol as the kernel
// gives them — as network rules see it, exactly as the BPF programs do
// (check_socket in bpf/enforce/decide.h): protocol 0 is what the kernel
// resolves it to — tcp for a stream socket, udp for a datagram one, sctp
// for seqpacket, dccp for a SOCK_DCCP one; ok is false for the families rules do
// not cover (unix, netlink …), which the programs let pass unmatched.
func SocketNames(family, sockType, proto uint32) (s Socket, ok bool) {
	sockType &= 0xf // without SOCK_NONBLOCK, SOCK_CLOEXEC
	switch family {
	case afPacket:
		s = Socket{Family: "packet", Type: "packet"}
		if sockType == sockRaw || sockType == sockPacket {
			s.Type = "raw"
		}
		return s, true
	case afInet:
		s.Family = "inet"
	case afInet6:
		s.Family = "inet6"
	default:
		return s, false
	}
	s.Type = socketTypeByNumber[sockType]
	switch {
	case proto == 0 && s.Type == "stream", proto == ipprotoMPTCP:
		s.Protocol = "tcp"
	case proto == 0 && s.Type == "dgram", proto == ipprotoUDPLite:
		s.Protocol = "udp"
	case proto == ipprotoRaw && s.Type == "raw":
		s.Protocol = AnyIPProtocol
	case proto == 0 && s.Type == "seqpacket":
		s.Protocol = "sctp" // what the kernel resolves it to (inetsw)
	case proto == 0 && s.Type == "dccp":
		s.Protocol = "dccp"
	default:
		s.Protocol = protocolByNumber[proto]
	}
	return s, true
}
