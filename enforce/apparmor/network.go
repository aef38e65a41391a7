package apparmor

import (
	"fmt"
	"strings"

	"github.com/nri-armor/nri-armor/policy"
)

// AppArmor (6.1, network_v8) mediates a socket by its address family and
// type: not by its protocol, nor ports. A protocol name of the rule IR is
// written as the family and type its sockets have; what that misses of
// the rule (under) and what it covers besides (over) are reported.
type sockets struct {
	pairs []string // "inet stream", or a family alone
	// under: the rule's sockets the pairs miss (a Block or an Audit is
	// partial). over: other sockets the pairs cover (an Allow, or an
	// Audit, under a Block posture allows them too).
	under, over string
}

var socketsOf = map[string]sockets{
	// Socket types and families: exact.
	"stream":    {pairs: []string{"inet stream", "inet6 stream"}},
	"dgram":     {pairs: []string{"inet dgram", "inet6 dgram"}},
	"seqpacket": {pairs: []string{"inet seqpacket", "inet6 seqpacket"}},
	"rdm":       {pairs: []string{"inet rdm", "inet6 rdm"}},
	// raw: raw sockets of every family rules cover, AF_PACKET's SOCK_RAW
	// and the obsolete SOCK_PACKET too (policy.SocketNames).
	"raw":    {pairs: []string{"inet raw", "inet6 raw", "packet raw", "packet packet"}},
	"packet": {pairs: []string{"packet"}},
	"all":    {pairs: []string{"inet", "inet6", "packet"}},
	// Protocols: by the type their sockets have.
	"tcp": {pairs: []string{"inet stream", "inet6 stream"},
		under: "raw sockets (SOCK_RAW with IPPROTO_TCP or IPPROTO_RAW)",
		over:  "every stream socket, SCTP's one-to-one ones too"},
	"udp": {pairs: []string{"inet dgram", "inet6 dgram"},
		under: "raw sockets (SOCK_RAW with IPPROTO_UDP or IPPROTO_RAW)",
		over:  "every datagram socket, ICMP's datagram (ping) ones too"},
	"icmp": {pairs: []string{"inet raw"},
		under: "ICMP datagram (ping) sockets, which are SOCK_DGRAM",
		over:  "every raw IPv4 socket, whatever its protocol"},
	"icmpv6": {pairs: []string{"inet6 raw"},
		under: "ICMPv6 datagram (ping) sockets, which are SOCK_DGRAM",
		over:  "every raw IPv6 socket, whatever its protocol"},
	"sctp": {pairs: []string{"inet seqpacket", "inet6 seqpacket"},
		under: "SCTP's one-to-one (SOCK_STREAM) sockets, which AppArmor cannot tell from TCP's, and raw ones"},
	// dccp: AppArmor 3.0's parser has no name for SOCK_DCCP.
	"dccp": {},
}

// coveredFamilies are the families network rules cover; under a Block
// posture every other family stays allowed, as the rule IR leaves them.
var coveredFamilies = map[string]bool{"inet": true, "inet6": true, "packet": true}

// families are the address families apparmor_parser 3.0 and the kernels'
// features name (network_v8's af_mask), but unspec.
var families = []string{"unix", "inet", "ax25", "ipx", "appletalk", "netrom", "bridge", "atmpvc", "x25", "inet6",
	"rose", "netbeui", "security", "key", "netlink", "packet", "ash", "econet", "atmsvc", "rds", "sna", "irda",
	"pppox", "wanpipe", "llc", "ib", "mpls", "can", "tipc", "bluetooth", "iucv", "rxrpc", "isdn", "phonet",
	"ieee802154", "caif", "alg", "nfc", "vsock", "kcm", "qipcrtr", "smc", "xdp", "mctp"}

func (c *compiler) network() {
	cr := &c.rs.Network
	c.comment("network rules")
	if allowAll(cr) {
		c.add(0, "network,")
	} else {
		c.comment("the families no rule covers")
		var other []string
		for _, f := range families {
			if !coveredFamilies[f] {
				if other = append(other, "network "+f+","); len(other) == 8 {
					c.add(0, "%s", strings.Join(other, " "))
					other = other[:0]
				}
			}
		}
		if len(other) > 0 {
			c.add(0, "%s", strings.Join(other, " "))
		}
	}
	blockPosture := !allowAll(cr)
	for _, r := range cr.Rules {
		if c.sourced(r) {
			continue
		}
		s, ok := socketsOf[r.Match.Value]
		if !ok || len(s.pairs) == 0 {
			reason := fmt.Sprintf("AppArmor cannot name %q sockets", r.Match.Value)
			if r.Match.Value == "dccp" {
				reason = "AppArmor 3.0 has no name for DCCP's socket type (SOCK_DCCP): not applied"
			}
			c.unenforce(r, reason, false)
			continue
		}
		prefix := ""
		switch r.Action {
		case policy.Block:
			prefix = "audit deny "
		case policy.Audit:
			prefix = "audit "
		}
		for _, p := range s.pairs {
			c.add(r.ID, "%snetwork %s,", prefix, p)
		}
		var why []string
		verb := map[policy.Action]string{policy.Block: "enforced", policy.Audit: "logged", policy.Allow: "allowed"}[r.Action]
		if r.Action == policy.Audit && blockPosture {
			verb = "logged and allowed"
		}
		if s.under != "" && (r.Action != policy.Allow || blockPosture) {
			why = append(why, fmt.Sprintf("%s by socket type only (AppArmor mediates a socket's family and type, not its protocol): not on %s", verb, s.under))
		}
		if s.over != "" && r.Action != policy.Block && blockPosture {
			why = append(why, fmt.Sprintf("the Block posture does not hold for %s (allowed by socket type)", s.over))
		}
		if len(why) > 0 {
			c.unenforce(r, strings.Join(why, "; "), true)
		}
	}
}

func (c *compiler) capabilities() {
	cr := &c.rs.Capabilities
	c.comment("capabilities rules")
	if allowAll(cr) {
		c.add(0, "capability,")
	}
	for _, r := range cr.Rules {
		if c.sourced(r) {
			continue
		}
		name, ok := policy.NormalizeCapability(r.Match.Value)
		if !ok {
			c.unenforce(r, fmt.Sprintf("unknown capability %q", r.Match.Value), false)
			continue
		}
		switch r.Action {
		case policy.Block:
			c.add(r.ID, "audit deny capability %s,", name)
		case policy.Audit:
			c.add(r.ID, "audit capability %s,", name)
		default:
			c.add(r.ID, "capability %s,", name)
		}
	}
}
