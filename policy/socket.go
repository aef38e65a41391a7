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

// Address families network rules cover.
const (
	afInet   = 2
	afInet6  = 10
	afPacket = 17
)

// SocketNames names a socket — its family, type and protocol as the kernel
// gives them — as network rules see it, exactly as the BPF programs do
// (check_socket in bpf/enforce/decide.h): an AF_PACKET socket is "packet"
// whatever its type; protocol 0 is tcp for a stream socket and udp for a
// datagram one; ok is false for the families rules do not cover (unix,
// netlink …), which the programs let pass unmatched.
func SocketNames(family, sockType, proto uint32) (ipProto, st string, ok bool) {
	switch family {
	case afPacket:
		return "", "packet", true
	case afInet, afInet6:
	default:
		return "", "", false
	}
	st = socketTypeByNumber[sockType&0xf] // without SOCK_NONBLOCK, SOCK_CLOEXEC
	if proto == 0 {
		switch st {
		case "stream":
			return "tcp", st, true
		case "dgram":
			return "udp", st, true
		}
	}
	return protocolByNumber[proto], st, true
}
