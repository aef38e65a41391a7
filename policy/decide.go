package policy

import (
	"strings"
)

// Event is one operation to decide: what is done, to what, by whom.
type Event struct {
	Class Class `json:"op"`
	// Path is the executable being executed (process), the file opened
	// (file), or the path argument of a system call (syscalls, optional).
	Path  string `json:"path,omitempty"`
	Write bool   `json:"write,omitempty"`
	// Source is the acting process's executable (for exec: the caller's).
	Source string `json:"source,omitempty"`
	UID    uint32 `json:"uid"`
	// Owner is the uid owning Path (the file, or the executable).
	Owner uint32 `json:"owner"`
	// Protocol is the IP protocol name (tcp, udp, icmp, icmpv6, sctp, dccp);
	// SocketType the socket type (stream, dgram, raw, seqpacket, rdm, or
	// packet for an AF_PACKET socket that is not raw); Family the address
	// family (inet, inet6, packet). SocketNames gives all three for a
	// socket; a rule on "packet" covers every AF_PACKET socket.
	Protocol   string `json:"protocol,omitempty"`
	SocketType string `json:"socketType,omitempty"`
	Family     string `json:"family,omitempty"`
	Capability string `json:"capability,omitempty"`
	Syscall    string `json:"syscall,omitempty"`
}

// DefaultSocketType is the socket type that a protocol name implies when
// only the name is known (as for `armorctl check --protocol`).
func DefaultSocketType(protocol string) (ipProto, sockType string) {
	switch protocol {
	case "tcp", "sctp":
		return protocol, "stream"
	case "udp":
		return protocol, "dgram"
	case "icmp", "icmpv6":
		return protocol, "raw"
	case "dccp":
		return protocol, "dccp"
	case "stream", "dgram", "raw", "seqpacket", "rdm", "packet":
		return "", protocol
	}
	return protocol, ""
}

// ipProtocolNames are the IP protocols rules name, in the order an
// IPPROTO_RAW socket (AnyIPProtocol) meets their rules.
var ipProtocolNames = []string{"icmp", "icmpv6", "tcp", "udp", "sctp", "dccp"}

// Decision is a verdict and what produced it.
type Decision struct {
	Action Action `json:"action"`
	// Rule is the rule that decided; nil when no rule matched.
	Rule *Rule `json:"rule,omitempty"`
	// DefaultPosture is true when no rule matched in an allow-list class and
	// the class's posture decided (alerts name the policy "DefaultPosture").
	DefaultPosture bool `json:"defaultPosture,omitempty"`
}

// Decide returns the verdict of rs for ev. It is the executable definition
// of the semantics: the kernel programs, the tracer's audit path and the
// tests agree with it.
//
// Precedence — the one place it is written down:
//
//  1. A rule takes part when its matcher matches the event and its
//     modifiers hold:
//     - fromSource: the acting process's executable is one of the sources;
//     - ownerOnly: Allow rules match only the owner (uid == file owner);
//     Block and Audit rules match only others (the owner is exempt);
//     - readOnly: Allow rules match only reads; Block and Audit rules match
//     only writes (reads pass).
//     Directory rules cover the directory itself and its direct children,
//     or with recursive its whole subtree.
//  2. Rules naming the acting process (fromSource) beat rules that do not:
//     "Allow /etc/app/ fromSource /bin/app" overrides "Block /etc/app/".
//  3. Among those, Block beats Audit beats Allow: a Block on a path inside
//     an allowed directory blocks, whatever the order of the rules.
//  4. Among rules of the same action, the most specific decides which rule
//     is reported (exact path or execname, then the longest directory, then
//     patterns), then the lowest rule ID. This never changes the action.
//  5. No rule: in a class in allow-list mode (it has an Allow rule), the
//     class's posture (Audit or Block, "DefaultPosture"); otherwise Allow.
//
// Cost: lookups by exact path, by each ancestor directory of the path and by
// each ancestor's pattern bucket: proportional to the path's depth, not to
// the number of rules.
func Decide(rs *RuleSet, ev Event) Decision {
	cr := rs.Class(ev.Class)
	if cr == nil {
		return Decision{Action: Allow}
	}
	idx := rs.indexFor(ev.Class)
	var best *Rule
	consider := func(r *Rule) {
		if r.Applies(&ev) && (best == nil || r.Beats(best)) {
			best = r
		}
	}
	idx.candidates(&ev, consider)
	if best != nil {
		return Decision{Action: best.Action, Rule: best}
	}
	if cr.AllowList {
		return Decision{Action: cr.Posture, DefaultPosture: true}
	}
	return Decision{Action: Allow}
}

func actionRank(a Action) int {
	switch a {
	case Block:
		return 3
	case Audit:
		return 2
	}
	return 1
}

func (r *Rule) specificity() int {
	switch r.Match.Type {
	case MatchPath, MatchExecName:
		return 1 << 20
	case MatchDir:
		return 1<<12 + len(r.Match.Value)
	case MatchSyscall:
		if r.Match.Path != "" {
			return 1<<12 + len(r.Match.Path)
		}
	}
	return 0
}

// Beats reports whether r takes precedence over o (rules 2–4 above).
func (r *Rule) Beats(o *Rule) bool {
	if rs, os := len(r.FromSource) > 0, len(o.FromSource) > 0; rs != os {
		return rs
	}
	if ra, oa := actionRank(r.Action), actionRank(o.Action); ra != oa {
		return ra > oa
	}
	if rs, os := r.specificity(), o.specificity(); rs != os {
		return rs > os
	}
	return r.ID < o.ID
}

// inDir reports whether path lies in dir (ending in '/'): directly, or at
// any depth when recursive. The directory itself counts as inside.
func inDir(path, dir string, recursive bool) bool {
	if path == dir || path+"/" == dir { // the directory itself ("/" is its own)
		return true
	}
	if !strings.HasPrefix(path, dir) || len(path) == len(dir) {
		return false
	}
	return recursive || !strings.Contains(path[len(dir):], "/")
}

func (s SourceMatcher) matches(exe string) bool {
	if s.Path != "" {
		return exe == s.Path
	}
	return exe != "" && inDir(exe, s.Dir, s.Recursive)
}

// Applies checks the rule's modifiers (rule 1 above); the matcher itself
// is the index's business, except for syscall paths.
func (r *Rule) Applies(ev *Event) bool {
	if len(r.FromSource) > 0 {
		ok := false
		for _, s := range r.FromSource {
			if s.matches(ev.Source) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	// ownerOnly and readOnly name what the rule permits: only the owner,
	// only reading. An Allow rule allows only that; a Block or Audit rule
	// applies to everything else (KubeArmor's meaning): with both, only
	// the owner may read, and nobody may write.
	permitted := (!r.OwnerOnly || ev.UID == ev.Owner) && (!r.ReadOnly || !ev.Write)
	if r.Action == Allow && !permitted {
		return false
	}
	if r.Action != Allow && (r.OwnerOnly || r.ReadOnly) && permitted {
		return false
	}
	if r.Match.Type == MatchSyscall && r.Match.Path != "" {
		p := r.Match.Path
		if strings.HasSuffix(p, "/") {
			return inDir(ev.Path, p, r.Match.Recursive)
		}
		return ev.Path == p
	}
	return true
}

// classIndex finds a class's candidate rules without scanning them all.
type classIndex struct {
	exact    map[string][]*Rule // MatchPath: path
	execname map[string][]*Rule // MatchExecName: file name
	// dirs holds, per directory (ending in '/'), its MatchDir rules and the
	// patterns whose literal prefix ends in it: a path can only match
	// patterns in its ancestors' buckets. One map, one lookup per ancestor.
	dirs map[string]*dirBucket
	keys map[string][]*Rule // protocol, capability, syscall name
}

type dirBucket struct {
	dirs, patterns []*Rule
}

func (ix *classIndex) bucket(dir string) *dirBucket {
	b := ix.dirs[dir]
	if b == nil {
		b = &dirBucket{}
		ix.dirs[dir] = b
	}
	return b
}

func (rs *RuleSet) indexFor(c Class) *classIndex {
	rs.indexOnce.Do(func() {
		rs.index = map[Class]*classIndex{}
		for _, c := range Classes {
			rs.index[c] = buildIndex(rs.Class(c).Rules)
		}
	})
	return rs.index[c]
}

func buildIndex(rules []*Rule) *classIndex {
	ix := &classIndex{
		exact: map[string][]*Rule{}, execname: map[string][]*Rule{}, dirs: map[string]*dirBucket{},
		keys: map[string][]*Rule{},
	}
	for _, r := range rules {
		switch r.Match.Type {
		case MatchPath:
			ix.exact[r.Match.Value] = append(ix.exact[r.Match.Value], r)
		case MatchExecName:
			ix.execname[r.Match.Value] = append(ix.execname[r.Match.Value], r)
		case MatchDir:
			b := ix.bucket(r.Match.Value)
			b.dirs = append(b.dirs, r)
		case MatchPattern:
			g, err := CompileGlob(r.Match.Value)
			if err != nil {
				continue // validation rejected it already; unreachable for loaded policies
			}
			r.glob = g
			b := ix.bucket(g.Prefix[:strings.LastIndexByte(g.Prefix, '/')+1])
			b.patterns = append(b.patterns, r)
		default:
			ix.keys[r.Match.Value] = append(ix.keys[r.Match.Value], r)
		}
	}
	return ix
}

// candidates calls f with every rule whose matcher matches ev.
func (ix *classIndex) candidates(ev *Event, f func(*Rule)) {
	each := func(rules []*Rule) {
		for _, r := range rules {
			f(r)
		}
	}
	switch ev.Class {
	case ClassProcess, ClassFile:
		p := ev.Path
		if p == "" {
			return
		}
		each(ix.exact[p])
		if ev.Class == ClassProcess {
			each(ix.execname[p[strings.LastIndexByte(p, '/')+1:]])
		}
		if b := ix.dirs[""]; b != nil { // patterns that start with a wildcard
			for _, r := range b.patterns {
				if r.glob.Match(p) {
					f(r)
				}
			}
		}
		// Every ancestor directory of p, and p itself as a directory.
		last := strings.LastIndexByte(p, '/')
		for i := 0; i < len(p); i++ {
			if p[i] != '/' {
				continue
			}
			b := ix.dirs[p[:i+1]]
			if b == nil {
				continue
			}
			for _, r := range b.dirs {
				if r.Match.Recursive || i == last {
					f(r)
				}
			}
			for _, r := range b.patterns {
				if r.glob.Match(p) {
					f(r)
				}
			}
		}
		if len(ix.dirs) > 0 && p[len(p)-1] != '/' {
			if b := ix.dirs[p+"/"]; b != nil {
				for _, r := range b.dirs {
					f(r)
				}
			}
		}
	case ClassNetwork:
		proto, st := strings.ToLower(ev.Protocol), strings.ToLower(ev.SocketType)
		if proto == AnyIPProtocol {
			for _, p := range ipProtocolNames {
				each(ix.keys[p])
			}
		} else {
			each(ix.keys[proto])
		}
		if st != proto {
			each(ix.keys[st])
		}
		if strings.EqualFold(ev.Family, "packet") && st != "packet" {
			each(ix.keys["packet"])
		}
		each(ix.keys["all"])
	case ClassCapabilities:
		name, _ := NormalizeCapability(ev.Capability)
		each(ix.keys[name])
	case ClassSyscalls:
		each(ix.keys[strings.ToLower(ev.Syscall)])
	}
}
