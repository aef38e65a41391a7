package policy

import "testing"

// TestSocketNames: the names a socket gets, as the kernel programs give
// them (check_socket), for the tracer's matching in user space.
func TestSocketNames(t *testing.T) {
	for _, c := range []struct {
		family, typ, proto uint32
		want               Socket
		ok                 bool
	}{
		{2, 1, 0, Socket{"inet", "tcp", "stream"}, true},              // socket(AF_INET, SOCK_STREAM, 0)
		{10, 2 | 0x80000, 0, Socket{"inet6", "udp", "dgram"}, true},   // AF_INET6, SOCK_DGRAM|SOCK_CLOEXEC
		{2, 3, 1, Socket{"inet", "icmp", "raw"}, true},                // raw ICMP
		{10, 3, 58, Socket{"inet6", "icmpv6", "raw"}, true},           // raw ICMPv6
		{2, 1, 132, Socket{"inet", "sctp", "stream"}, true},           // SCTP
		{2, 5, 0, Socket{"inet", "sctp", "seqpacket"}, true},          // SOCK_SEQPACKET, 0: the kernel makes it SCTP
		{10, 6, 0, Socket{"inet6", "dccp", "dccp"}, true},             // SOCK_DCCP, 0: DCCP
		{2, 3, 255, Socket{"inet", "ip", "raw"}, true},                // IPPROTO_RAW: any IP protocol
		{2, 1, 262, Socket{"inet", "tcp", "stream"}, true},            // MPTCP is tcp
		{10, 2, 136, Socket{"inet6", "udp", "dgram"}, true},           // UDP-Lite is udp
		{17, 3, 0x0300, Socket{"packet", "", "raw"}, true},            // AF_PACKET, SOCK_RAW: raw (tcpdump)
		{17, 10, 0x0300, Socket{"packet", "", "raw"}, true},           // AF_PACKET, SOCK_PACKET: raw frames too
		{17, 2 | 0x800, 0x0300, Socket{"packet", "", "packet"}, true}, // AF_PACKET, SOCK_DGRAM: packet only
		{1, 1, 0, Socket{}, false},                                    // AF_UNIX: no rule covers it
		{16, 3, 0, Socket{}, false},                                   // AF_NETLINK, even SOCK_RAW
	} {
		s, ok := SocketNames(c.family, c.typ, c.proto)
		if s != c.want || ok != c.ok {
			t.Errorf("SocketNames(%d, %#x, %d) = %+v %t, want %+v %t", c.family, c.typ, c.proto, s, ok, c.want, c.ok)
		}
	}
}
