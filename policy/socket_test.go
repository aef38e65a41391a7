package policy

import "testing"

// TestSocketNames: the names a socket gets, as the kernel programs give
// them (check_socket), for the tracer's matching in user space.
func TestSocketNames(t *testing.T) {
	for _, c := range []struct {
		family, typ, proto uint32
		ipProto, st        string
		ok                 bool
	}{
		{2, 1, 0, "tcp", "stream", true},           // socket(AF_INET, SOCK_STREAM, 0)
		{10, 2 | 0x80000, 0, "udp", "dgram", true}, // AF_INET6, SOCK_DGRAM|SOCK_CLOEXEC
		{2, 3, 1, "icmp", "raw", true},             // raw ICMP
		{10, 3, 58, "icmpv6", "raw", true},         // raw ICMPv6
		{2, 1, 132, "sctp", "stream", true},        // SCTP
		{17, 3, 0x0300, "", "packet", true},        // AF_PACKET, whatever its type
		{1, 1, 0, "", "", false},                   // AF_UNIX: no rule covers it
		{16, 3, 0, "", "", false},                  // AF_NETLINK
	} {
		p, st, ok := SocketNames(c.family, c.typ, c.proto)
		if p != c.ipProto || st != c.st || ok != c.ok {
			t.Errorf("SocketNames(%d, %#x, %d) = %q %q %t, want %q %q %t", c.family, c.typ, c.proto, p, st, ok, c.ipProto, c.st, c.ok)
		}
	}
}
