package bpf

import (
	"fmt"
	"sort"

	"github.com/nri-armor/nri-armor/policy"
)

// The kernel ABI shared with armor.bpf.c: keep these in step with its #defines.
const (
	classProcess = 0
	classFile    = 1
	classNetwork = 2
	classCaps    = 3

	kindPath      = 1
	kindExecName  = 2
	kindDirRec    = 3
	kindDirDirect = 4
	kindProto     = 5
	kindSockType  = 6
	kindAll       = 7
	kindCap       = 8
	kindPattern   = 9

	actAllow = 1
	actAudit = 2
	actBlock = 3

	flagOwnerOnly = 1
	flagReadOnly  = 2
	flagSource    = 4
	flagMore      = 8

	// sockTypePacket stands for AF_PACKET sockets in KIND_SOCKTYPE keys.
	sockTypePacket = 0x100

	// DefaultMaxSlots is how many rules may share one matcher (the program's
	// max_slots): the same path with other sources, actions or modifiers.
	DefaultMaxSlots = 1024
)

// kernelClasses are the classes the BPF programs enforce; syscalls go to seccomp.
var kernelClasses = []struct {
	class policy.Class
	code  uint8
}{
	{policy.ClassProcess, classProcess},
	{policy.ClassFile, classFile},
	{policy.ClassNetwork, classNetwork},
	{policy.ClassCapabilities, classCaps},
}

// IP protocol numbers and socket types of matchProtocols names.
var protoNumbers = map[string]uint64{"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "dccp": 33}
var sockTypes = map[string]uint64{"stream": 1, "dgram": 2, "raw": 3, "rdm": 4, "seqpacket": 5, "packet": sockTypePacket}

func actionCode(a policy.Action) uint8 {
	switch a {
	case policy.Allow:
		return actAllow
	case policy.Audit:
		return actAudit
	}
	return actBlock
}

// FNV-1a 64, as the programs hash paths byte by byte.
const (
	fnvOffset = 0xcbf29ce484222325
	fnvPrime  = 0x100000001b3
)

func fnv(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

// specificity mirrors policy's reporting order (exact, then longest
// directory, then the rest); it never changes an action.
func specificity(r *policy.Rule) uint32 {
	switch r.Match.Type {
	case policy.MatchPath, policy.MatchExecName:
		return 1 << 20
	case policy.MatchDir:
		return 1<<12 + uint32(len(r.Match.Value))
	}
	return 0
}

// Unenforced is a rule the kernel programs cannot enforce, and why. It is
// reported (explain, probe, alerts), never silently dropped.
type Unenforced struct {
	Rule   *policy.Rule
	Reason string
}

// Encoded is a rule set as map entries.
type Encoded struct {
	Header     armorSetHdr
	Keys        []armorRuleKey
	Values      []armorRuleVal
	PatternKeys []armorPatKey
	Patterns    []armorPatVal
	Unenforced  []Unenforced
}

// Encode turns rs into the entries of set setID. Rules that the programs
// cannot express are listed in Unenforced.
func Encode(rs *policy.RuleSet, setID uint32, maxSlots int) (*Encoded, error) {
	if maxSlots <= 0 {
		maxSlots = DefaultMaxSlots
	}
	enc := &Encoded{}
	type entry struct {
		key armorRuleKey
		val armorRuleVal
	}
	var entries []entry
	for _, kc := range kernelClasses {
		cr := rs.Class(kc.class)
		if cr.AllowList {
			enc.Header.Allowlist[kc.code] = 1
			enc.Header.Posture[kc.code] = actionCode(cr.Posture)
		}
		for _, r := range cr.Rules {
			key := armorRuleKey{SetId: setID, Cls: kc.code}
			switch m := r.Match; m.Type {
			case policy.MatchPath:
				key.Kind, key.Hash, key.Len = kindPath, fnv(m.Value), uint32(len(m.Value))
			case policy.MatchExecName:
				key.Kind, key.Hash, key.Len = kindExecName, fnv(m.Value), uint32(len(m.Value))
			case policy.MatchDir:
				key.Kind, key.Hash, key.Len = kindDirDirect, fnv(m.Value), uint32(len(m.Value))
				if m.Recursive {
					key.Kind = kindDirRec
				}
			case policy.MatchProtocol:
				if n, ok := protoNumbers[m.Value]; ok {
					key.Kind, key.Hash = kindProto, n
				} else if t, ok := sockTypes[m.Value]; ok {
					key.Kind, key.Hash = kindSockType, t
				} else if m.Value == "all" {
					key.Kind = kindAll
				} else {
					enc.Unenforced = append(enc.Unenforced, Unenforced{r, fmt.Sprintf("protocol %q has no kernel number", m.Value)})
					continue
				}
			case policy.MatchCapability:
				n, ok := policy.CapabilityNumber(m.Value)
				if !ok {
					enc.Unenforced = append(enc.Unenforced, Unenforced{r, fmt.Sprintf("unknown capability %q", m.Value)})
					continue
				}
				key.Kind, key.Hash = kindCap, uint64(n)
			case policy.MatchPattern:
				g, why := splitKernelGlob(m.Value)
				if why != "" {
					enc.Unenforced = append(enc.Unenforced, Unenforced{r, "the kernel matcher does not support " + why + ": matched in user space only (audit)"})
					continue
				}
				key.Kind, key.Hash, key.Len = kindPattern, fnv(g.prefix), uint32(len(g.prefix))
				enc.Header.HasPatterns[kc.code] = 1
				pv := armorPatVal{Len: uint16(len(g.rest))}
				if g.tail {
					pv.Tail = 1
				}
				for i := 0; i < len(g.rest); i++ {
					pv.Pat[i] = int8(g.rest[i])
				}
				enc.PatternKeys = append(enc.PatternKeys, armorPatKey{SetId: setID, RuleId: uint32(r.ID)})
				enc.Patterns = append(enc.Patterns, pv)
			default:
				enc.Unenforced = append(enc.Unenforced, Unenforced{r, fmt.Sprintf("matcher %s is not enforced by the BPF programs", m.Type)})
				continue
			}
			val := armorRuleVal{RuleId: uint32(r.ID), Action: actionCode(r.Action), Spec: specificity(r)}
			if r.OwnerOnly {
				val.Flags |= flagOwnerOnly
			}
			if r.ReadOnly {
				val.Flags |= flagReadOnly
			}
			if len(r.FromSource) == 0 {
				entries = append(entries, entry{key, val})
				continue
			}
			enc.Header.HasSource[kc.code] = 1
			for _, s := range r.FromSource {
				if s.Path == "" {
					enc.Unenforced = append(enc.Unenforced, Unenforced{r, "fromSource directories are not enforced by the BPF programs"})
					continue
				}
				v := val
				v.Flags |= flagSource
				v.SrcHash, v.SrcLen = fnv(s.Path), uint32(len(s.Path))
				entries = append(entries, entry{key, v})
			}
		}
	}
	// Rules sharing a matcher take consecutive slots; all but the last say
	// that more follow. Sorting by key, then rule id, keeps this canonical.
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i].key, entries[j].key
		if a.Cls != b.Cls {
			return a.Cls < b.Cls
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Hash != b.Hash {
			return a.Hash < b.Hash
		}
		if a.Len != b.Len {
			return a.Len < b.Len
		}
		return entries[i].val.RuleId < entries[j].val.RuleId
	})
	for i := range entries {
		if i > 0 && sameMatcher(entries[i-1].key, entries[i].key) {
			entries[i].key.Slot = entries[i-1].key.Slot + 1
			entries[i-1].val.Flags |= flagMore
			if int(entries[i].key.Slot) >= maxSlots {
				return nil, fmt.Errorf("more than %d rules share one matcher (rule %d)", maxSlots, entries[i].val.RuleId)
			}
		}
	}
	for _, e := range entries {
		enc.Keys = append(enc.Keys, e.key)
		enc.Values = append(enc.Values, e.val)
	}
	return enc, nil
}

func sameMatcher(a, b armorRuleKey) bool {
	a.Slot, b.Slot = 0, 0
	return a == b
}
