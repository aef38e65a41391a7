package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/nri-armor/nri-armor/policy"
)

// check's exit statuses: a verdict is never mistaken for an error.
const (
	exitAllow = 0
	exitError = 1 // policies that do not load, a pod annotation that does not parse
	exitUsage = 2 // flags: unknown values, missing or contradicting flags
	exitAudit = 3
	exitBlock = 4
)

// verdictExit is check's exit status for an action.
func verdictExit(a policy.Action) int {
	switch a {
	case policy.Audit:
		return exitAudit
	case policy.Block:
		return exitBlock
	}
	return exitAllow
}

// usageError is a problem with the flags: exit status 2.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitStatus maps an error to the exit status: 2 for flags, 1 otherwise.
func exitStatus(err error) int {
	if errors.As(err, new(usageError)) {
		return exitUsage
	}
	return exitError
}

// checkFlags are check's own flags: the operation.
type checkFlags struct {
	op         string
	ev         policy.Event
	uid, owner uint
	family     string
	set        map[string]bool // the flags given on the command line
}

func (c *checkFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.op, "op", "", "the operation: "+opList)
	fs.StringVar(&c.ev.Path, "path", "", "process: the executable; file: the file; syscall: its path argument (absolute)")
	fs.BoolVar(&c.ev.Write, "write", false, "file: the access writes")
	fs.StringVar(&c.ev.Source, "source", "", "the acting process's executable (absolute)")
	fs.UintVar(&c.uid, "uid", 0, "the acting process's uid (required with --owner when an ownerOnly rule decides)")
	fs.UintVar(&c.owner, "owner", 0, "the uid that owns --path (required with --uid when an ownerOnly rule decides)")
	fs.StringVar(&c.family, "family", "", "network: the socket's address family: inet (default), inet6, packet, unix, netlink …")
	fs.StringVar(&c.ev.Protocol, "protocol", "", "network: tcp, udp, icmp, icmpv6, sctp, dccp, or a socket type: raw, stream, dgram, seqpacket, rdm, packet")
	fs.StringVar(&c.ev.SocketType, "socket-type", "", "network: stream, dgram, raw, seqpacket, rdm, dccp, if not the one --protocol implies")
	fs.StringVar(&c.ev.Capability, "capability", "", "capabilities: e.g. net_raw or CAP_NET_RAW")
	fs.StringVar(&c.ev.Syscall, "syscall", "", "syscall: its name")
}

// opFlags are the flags each operation takes; any other operation flag
// given with it is a usage error rather than silently ignored.
var opFlags = map[policy.Class][]string{
	policy.ClassProcess:      {"path", "source", "uid", "owner"},
	policy.ClassFile:         {"path", "write", "source", "uid", "owner"},
	policy.ClassNetwork:      {"family", "protocol", "socket-type", "source"},
	policy.ClassCapabilities: {"capability", "source"},
	policy.ClassSyscalls:     {"syscall", "path", "source"},
}

const opList = "process, file, network, capabilities or syscall"

var opNames = map[string]policy.Class{
	"process": policy.ClassProcess, "file": policy.ClassFile, "network": policy.ClassNetwork,
	"capabilities": policy.ClassCapabilities, "capability": policy.ClassCapabilities,
	"syscall": policy.ClassSyscalls, "syscalls": policy.ClassSyscalls,
}

// ownerKnown reports whether both --uid and --owner were given.
func (c *checkFlags) ownerKnown() bool { return c.set["uid"] && c.set["owner"] }

// event checks that the flags describe one operation, validates every
// value and fills in what they imply. covered is false for a socket of a
// family network rules do not cover (the kernel lets it pass unmatched).
func (c *checkFlags) event() (ev policy.Event, covered bool, err error) {
	ev = c.ev
	ev.UID, ev.Owner = uint32(c.uid), uint32(c.owner)
	if c.op == "" {
		return ev, false, usagef("--op is required (%s)", opList)
	}
	class, ok := opNames[c.op]
	if !ok {
		return ev, false, usagef("unknown --op %q (%s)", c.op, opList)
	}
	ev.Class = class
	allowed := map[string]bool{}
	for _, f := range opFlags[class] {
		allowed[f] = true
	}
	var stray []string
	for _, fls := range opFlags {
		for _, fl := range fls {
			if c.set[fl] && !allowed[fl] && !slices.Contains(stray, "--"+fl) {
				stray = append(stray, "--"+fl)
			}
		}
	}
	if len(stray) > 0 {
		slices.Sort(stray)
		return ev, false, usagef("%s: not for --op %s (it takes %s)", strings.Join(stray, ", "), c.op, "--"+strings.Join(opFlags[class], ", --"))
	}
	if err := absolute("source", ev.Source); err != nil {
		return ev, false, err
	}
	switch class {
	case policy.ClassProcess, policy.ClassFile:
		if ev.Path == "" {
			return ev, false, usagef("--op %s needs --path", c.op)
		}
		return ev, true, absolute("path", ev.Path)
	case policy.ClassNetwork:
		return c.socket(ev)
	case policy.ClassCapabilities:
		if ev.Capability == "" {
			return ev, false, usagef("--op %s needs --capability", c.op)
		}
		if ev.Capability, ok = policy.NormalizeCapability(ev.Capability); !ok {
			return ev, false, usagef("unknown --capability %q", c.ev.Capability)
		}
	case policy.ClassSyscalls:
		if ev.Syscall == "" {
			return ev, false, usagef("--op %s needs --syscall", c.op)
		}
		if _, ok := policy.SyscallNumber(ev.Syscall); !ok {
			return ev, false, usagef("unknown --syscall %q (not an x86_64 system call)", ev.Syscall)
		}
		ev.Syscall = strings.ToLower(strings.TrimSpace(ev.Syscall))
		return ev, true, absolute("path", ev.Path)
	}
	return ev, true, nil
}

// absolute refuses a relative path: the kernel hands rules resolved,
// absolute paths, and a relative one would match nothing and say Allow.
func absolute(flagName, p string) error {
	if p == "" {
		return nil
	}
	if !strings.HasPrefix(p, "/") {
		return usagef("--%s %q: must be an absolute path (rules see the path the kernel resolved)", flagName, p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return usagef("--%s %q: give the resolved path, without . or .. components", flagName, p)
		}
	}
	return nil
}

// families are the address families --family names, with their Linux
// numbers (linux/socket.h); inet, inet6 and packet are those network rules
// cover, the others pass unmatched, as in the kernel.
var families = map[string]uint32{
	"unix": 1, "local": 1, "inet": 2, "ax25": 3, "ipx": 4, "appletalk": 5, "x25": 9, "inet6": 10,
	"key": 15, "netlink": 16, "packet": 17, "rds": 21, "llc": 26, "can": 29, "tipc": 30,
	"bluetooth": 31, "alg": 38, "nfc": 39, "vsock": 40, "kcm": 41, "qipcrtr": 42, "smc": 43, "xdp": 44, "mctp": 45,
}

// socket names the socket the flags describe as the kernel programs and
// armor-tracer do (policy.SocketNames): from its family, type and protocol
// numbers. --protocol may name a protocol or a socket type (raw, stream …);
// "packet", as --protocol or --socket-type, is the AF_PACKET family.
func (c *checkFlags) socket(ev policy.Event) (policy.Event, bool, error) {
	fam := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(c.family)), "af_")
	proto := strings.ToLower(strings.TrimSpace(ev.Protocol))
	st := strings.ToLower(strings.TrimSpace(ev.SocketType))
	if _, ok := families[fam]; fam != "" && !ok {
		return ev, false, usagef("unknown --family %q (%s)", c.family, names(families))
	}
	_, isProto := policy.ProtocolNumbers[proto]
	if _, isType := policy.SocketTypeNumbers[proto]; proto != "" && !isProto && !isType && proto != "packet" {
		return ev, false, usagef("unknown --protocol %q (%s)", ev.Protocol, names(policy.ProtocolNumbers, policy.SocketTypeNumbers, packetName))
	}
	if _, ok := policy.SocketTypeNumbers[st]; st != "" && !ok && st != "packet" {
		return ev, false, usagef("unknown --socket-type %q (%s)", ev.SocketType, names(policy.SocketTypeNumbers, packetName))
	}
	if proto == "packet" || st == "packet" {
		if fam != "" && fam != "packet" {
			return ev, false, usagef("packet is the packet family, not --family %s", c.family)
		}
		fam = "packet"
		proto, st = strings.TrimPrefix(proto, "packet"), strings.TrimPrefix(st, "packet")
	}
	if fam == "" {
		fam = "inet"
	}
	inet := fam == "inet" || fam == "inet6"
	if inet && proto == "" && st == "" {
		return ev, false, usagef("--op %s needs --protocol or --socket-type (or a --family other than inet, inet6)", c.op)
	}
	ipProto, implied := policy.DefaultSocketType(proto)
	if st == "" {
		st = implied
	}
	if ipProto != "" && !inet {
		return ev, false, usagef("--protocol %s is an IP protocol: it needs --family inet or inet6, not %s", proto, fam)
	}
	c.family = fam
	s, covered := policy.SocketNames(families[fam], policy.SocketTypeNumbers[st], policy.ProtocolNumbers[ipProto])
	ev.Protocol, ev.SocketType, ev.Family = s.Protocol, s.Type, s.Family
	return ev, covered, nil
}

var packetName = map[string]uint32{"packet": 17}

// names lists the keys of maps, sorted, each once.
func names(ms ...map[string]uint32) string {
	var out []string
	for _, m := range ms {
		out = slices.AppendSeq(out, maps.Keys(m))
	}
	slices.Sort(out)
	return strings.Join(slices.Compact(out), ", ")
}

// checkResult is check's answer, as -o json prints it.
type checkResult struct {
	Action         policy.Action     `json:"action"`
	Policy         string            `json:"policy"`
	Rule           *policy.Rule      `json:"rule"`
	DefaultPosture bool              `json:"defaultPosture"`
	NearMisses     []policy.NearMiss `json:"nearMisses"`
	Event          policy.Event      `json:"event"`
	Family         string            `json:"family,omitempty"`
	Ownership      string            `json:"ownership,omitempty"` // process, file: owner, not owner or unknown
	Warnings       []string          `json:"warnings"`
	Digest         string            `json:"digest"`
	check          policy.Check      // for the text form
	rs             *policy.RuleSet   // for the text form
	uncovered      bool              // the socket's family is not covered
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf podFlags
	pf.register(fs)
	var cf checkFlags
	cf.register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: armorctl check --policies PATH... --namespace NS --labels k=v,... --op OP [flags]

Prints the verdict for one operation, the rule that decided and the rules
a modifier exempted (near misses). Exit status: 0 Allow, 3 Audit, 4 Block,
1 an error (policies, pod annotations), 2 a usage error.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "armorctl check: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	cf.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { cf.set[f.Name] = true })
	res, err := check(&pf, &cf, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "armorctl check: %v\n", err)
		return exitStatus(err)
	}
	if pf.output == "json" {
		err = writeJSON(stdout, res)
	} else {
		err = res.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "armorctl check: %v\n", err)
		return exitError
	}
	return verdictExit(res.Action)
}

func check(pf *podFlags, cf *checkFlags, stderr io.Writer) (*checkResult, error) {
	ev, covered, err := cf.event()
	if err != nil {
		return nil, err
	}
	e, warnings, err := pf.compile(stderr, "check")
	if err != nil {
		return nil, err
	}
	rs := e.RuleSet
	res := &checkResult{Event: ev, Warnings: warnings, Digest: rs.Digest, rs: rs}
	switch ev.Class {
	case policy.ClassNetwork:
		res.Family = cf.family
	case policy.ClassProcess, policy.ClassFile:
		res.Ownership = "unknown"
	}
	var c policy.Check
	switch {
	case !covered:
		// As in the kernel: a socket of another family matches no rule and
		// no posture applies to it.
		res.uncovered = true
		c = policy.Check{Decision: policy.Decision{Action: policy.Allow}, NearMisses: []policy.NearMiss{}}
	case cf.ownerKnown():
		res.Ownership = "not owner"
		if ev.UID == ev.Owner {
			res.Ownership = "owner"
		}
		c = policy.Check{Decision: policy.Decide(rs, ev), NearMisses: policy.NearMisses(rs, ev)}
	default:
		if c, err = decideOwnerUnknown(rs, ev); err != nil {
			return nil, err
		}
	}
	res.check = c
	res.Action, res.Policy, res.Rule, res.DefaultPosture, res.NearMisses = c.Action, c.PolicyName(), c.Rule, c.DefaultPosture, c.NearMisses
	if res.NearMisses == nil {
		res.NearMisses = []policy.NearMiss{}
	}
	return res, nil
}

// decideOwnerUnknown decides without --uid and --owner: both ways, as the
// owner of --path and as another uid. When the verdicts differ an ownerOnly
// rule decides, and check asks for both flags rather than pick one.
// Otherwise ownership does not matter, and the near misses are those that
// do not depend on it.
func decideOwnerUnknown(rs *policy.RuleSet, ev policy.Event) (policy.Check, error) {
	owner, other := ev, ev
	owner.UID, owner.Owner = 0, 0
	other.UID, other.Owner = 1, 0
	dOwner, dOther := policy.Decide(rs, owner), policy.Decide(rs, other)
	if dOwner != dOther {
		return policy.Check{}, usagef("the verdict depends on who owns %s (an ownerOnly rule): %s if the acting uid owns it, %s if not; give --uid and --owner",
			ev.Path, verdictLine(dOwner), verdictLine(dOther))
	}
	var misses []policy.NearMiss
	for _, m := range policy.NearMisses(rs, other) {
		var ex []policy.Exemption
		for _, e := range m.Exemptions {
			if e.Modifier != "ownerOnly" {
				ex = append(ex, e)
			}
		}
		if len(ex) > 0 {
			misses = append(misses, policy.NearMiss{Rule: m.Rule, Exemptions: ex})
		}
	}
	return policy.Check{Decision: dOther, NearMisses: misses}, nil
}

// verdictLine is a decision in a few words: "Block by rule #3 (policy p)".
func verdictLine(d policy.Decision) string {
	switch {
	case d.Rule != nil:
		return fmt.Sprintf("%s by rule #%d (%s %s)", d.Action, d.Rule.ID, d.Rule.Origin, d.Rule.Field)
	case d.DefaultPosture:
		return fmt.Sprintf("%s by %s", d.Action, policy.PolicyNameDefaultPosture)
	}
	return fmt.Sprintf("%s (no rule applies)", d.Action)
}

func (r *checkResult) writeText(w io.Writer) error {
	if r.uncovered {
		_, err := fmt.Fprintf(w, "%s: network rules do not cover %s sockets (the kernel programs let them pass)\n  rule set %s\n", r.Action, r.Family, r.Digest)
		return err
	}
	return r.check.WriteText(w, r.rs)
}
