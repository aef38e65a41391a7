package bpflsm

import (
	"fmt"
	"strings"

	"github.com/dchest/siphash"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/policy"
)

// The codes of the kernel ABI (bpf/include/abi.h), as the encoder writes
// them into the maps' byte-sized fields; the values are bpf2go's, generated
// from the header's enums.
const (
	classProcess = uint8(armorArmorClassCLASS_PROCESS)
	classFile    = uint8(armorArmorClassCLASS_FILE)
	classNetwork = uint8(armorArmorClassCLASS_NETWORK)
	classCaps    = uint8(armorArmorClassCLASS_CAPS)

	kindPath      = uint8(armorArmorKindKIND_PATH)
	kindExecName  = uint8(armorArmorKindKIND_EXECNAME)
	kindDirRec    = uint8(armorArmorKindKIND_DIR_REC)
	kindDirDirect = uint8(armorArmorKindKIND_DIR_DIRECT)
	kindProto     = uint8(armorArmorKindKIND_PROTO)
	kindSockType  = uint8(armorArmorKindKIND_SOCKTYPE)
	kindAll       = uint8(armorArmorKindKIND_ALL)
	kindCap       = uint8(armorArmorKindKIND_CAP)
	kindPattern   = uint8(armorArmorKindKIND_PATTERN)

	actAllow = uint8(armorArmorActionACT_ALLOW)
	actAudit = uint8(armorArmorActionACT_AUDIT)
	actBlock = uint8(armorArmorActionACT_BLOCK)

	// sockTypePacket stands for AF_PACKET sockets in KIND_SOCKTYPE keys.
	sockTypePacket = uint64(armorArmorSocktypeSOCKTYPE_PACKET)
)

// maxPatternsPerBucket bounds the pattern rules that share a directory
// prefix (the key's 16-bit slot).
const maxPatternsPerBucket = 1 << 16

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

func actionCode(a policy.Action) uint8 {
	switch a {
	case policy.Allow:
		return actAllow
	case policy.Audit:
		return actAudit
	}
	return actBlock
}

// PathKey is the key of the path hash: the programs identify a path by
// SipHash-2-4 of its bytes under this key, and its length, never comparing
// the bytes (bpf/enforce/siphash.h). Keyed, so that no path can be chosen
// to hash like a rule's text without knowing the key; the engine draws it
// at random once per boot and keeps it in a pinned map (Engine's pathKey).
type PathKey struct{ k0, k1 uint64 }

// hash is what the programs compute for the path s.
func (k PathKey) hash(s string) uint64 { return siphash.Hash(k.k0, k.k1, []byte(s)) }

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

// Encoded is a rule set as map entries.
type Encoded struct {
	Header      armorSetHdr
	Keys        []armorRuleKey
	Values      []armorRuleVal
	PatternKeys []armorRuleKey
	Patterns    []armorPatVal
	Unenforced  []enforce.Unenforced // reported (explain, probe, alerts), never silently dropped
	// Syscall rules enforced in the kernel (syscalls.go): the sys_rules
	// entries, the ids of the rules they hold and the LSM hooks they need.
	SysKeys   []armorSysKey
	SysValues []armorVerdict
	SysRules  []int
	SysHooks  []string
}

// group is the rules that share one kernel key: the same matcher and, for
// fromSource rules, the same source.
type group struct {
	key    armorRuleKey
	source string // the source these rules are looked up for ("" for none)
	rules  []*policy.Rule
}

// verdicts resolves what a group decides in each of the four cases the
// programs tell apart, (write << 1) | is_owner, with policy's own Applies
// and Beats: the kernel only compares across keys.
func verdicts(class policy.Class, source string, rules []*policy.Rule) [4]armorVerdict {
	var out [4]armorVerdict
	for combo := 0; combo < 4; combo++ {
		ev := policy.Event{Class: class, Write: combo&2 != 0, Source: source, UID: 0, Owner: 1}
		if combo&1 != 0 {
			ev.Owner = 0
		}
		var best *policy.Rule
		for _, r := range rules {
			if r.Applies(&ev) && (best == nil || r.Beats(best)) {
				best = r
			}
		}
		if best != nil {
			out[combo] = armorVerdict{RuleId: uint32(best.ID), Spec: specificity(best), Action: actionCode(best.Action)}
		}
	}
	return out
}

// Encode turns rs into the entries of set setID, its texts hashed with the
// key paths (the kernel's, for entries that are written). Rules that the programs
// cannot express are listed in Unenforced.
func Encode(rs *policy.RuleSet, setID uint32, paths PathKey) (*Encoded, error) {
	enc := &Encoded{}
	groups := map[armorRuleKey]*group{}
	var order []armorRuleKey
	add := func(key armorRuleKey, source string, r *policy.Rule) {
		g := groups[key]
		if g == nil {
			g = &group{key: key, source: source}
			groups[key] = g
			order = append(order, key)
		}
		g.rules = append(g.rules, r)
	}
	for _, kc := range kernelClasses {
		cr := rs.Class(kc.class)
		if cr.AllowList {
			enc.Header.Allowlist[kc.code] = 1
			enc.Header.Posture[kc.code] = actionCode(cr.Posture)
		}
		buckets := map[armorRuleKey]uint32{} // pattern bucket → next slot
		for _, r := range cr.Rules {
			key := armorRuleKey{SetId: setID, Cls: kc.code}
			switch m := r.Match; m.Type {
			case policy.MatchPath:
				key.Kind, key.Hash, key.Len = kindPath, paths.hash(m.Value), uint32(len(m.Value))
			case policy.MatchExecName:
				key.Kind, key.Hash, key.Len = kindExecName, paths.hash(m.Value), uint32(len(m.Value))
			case policy.MatchDir:
				key.Kind, key.Hash, key.Len = kindDirDirect, paths.hash(m.Value), uint32(len(m.Value))
				if m.Recursive {
					key.Kind = kindDirRec
					enc.Header.Depths[kc.code] |= depthBit(m.Value)
				}
			case policy.MatchProtocol:
				if n, ok := policy.ProtocolNumbers[m.Value]; ok {
					key.Kind, key.Hash = kindProto, uint64(n)
				} else if t, ok := policy.SocketTypeNumbers[m.Value]; ok {
					key.Kind, key.Hash = kindSockType, uint64(t)
				} else if m.Value == "packet" {
					key.Kind, key.Hash = kindSockType, sockTypePacket
				} else if m.Value == "all" {
					key.Kind = kindAll
				} else {
					enc.Unenforced = append(enc.Unenforced, enforce.Unenforced{Rule: r, Reason: fmt.Sprintf("protocol %q has no kernel number", m.Value)})
					continue
				}
			case policy.MatchCapability:
				n, ok := policy.CapabilityNumber(m.Value)
				if !ok {
					enc.Unenforced = append(enc.Unenforced, enforce.Unenforced{Rule: r, Reason: fmt.Sprintf("unknown capability %q", m.Value)})
					continue
				}
				key.Kind, key.Hash = kindCap, uint64(n)
			case policy.MatchPattern:
				gs, why := kernelGlobs(m.Value)
				if why != "" {
					enc.Unenforced = append(enc.Unenforced, enforce.Unenforced{Rule: r, Reason: "the kernel matcher does not support " + why + ": matched in user space only (audit)"})
					continue
				}
				v := verdicts(kc.class, "", []*policy.Rule{r})
				for _, g := range gs {
					pk := key
					pk.Kind, pk.Hash, pk.Len = kindPattern, paths.hash(g.prefix), uint32(len(g.prefix))
					slot := buckets[pk]
					if slot >= maxPatternsPerBucket {
						return nil, fmt.Errorf("more than %d patterns share the prefix %q", maxPatternsPerBucket, g.prefix)
					}
					buckets[pk] = slot + 1
					enc.Header.Depths[kc.code] |= depthBit(g.prefix)
					enc.Header.Kinds[kc.code] |= 1 << kindPattern
					pv := armorPatVal{V: v, Len: uint16(len(g.rest))}
					if g.tail {
						pv.Tail = 1
					}
					for i := 0; i < len(g.rest); i++ {
						pv.Pat[i] = int8(g.rest[i])
					}
					pk.Slot = uint16(slot)
					enc.PatternKeys = append(enc.PatternKeys, pk)
					enc.Patterns = append(enc.Patterns, pv)
				}
				continue
			default:
				enc.Unenforced = append(enc.Unenforced, enforce.Unenforced{Rule: r, Reason: fmt.Sprintf("matcher %s is not enforced by the BPF programs", m.Type)})
				continue
			}
			enc.Header.Kinds[kc.code] |= 1 << key.Kind
			if len(r.FromSource) == 0 {
				add(key, "", r)
				continue
			}
			enc.Header.HasSource[kc.code] = 1
			for _, s := range r.FromSource {
				if s.Path == "" {
					enc.Unenforced = append(enc.Unenforced, enforce.Unenforced{Rule: r, Reason: "fromSource directories are not enforced by the BPF programs"})
					continue
				}
				k := key
				k.SrcHash, k.SrcLen = paths.hash(s.Path), uint32(len(s.Path))
				add(k, s.Path, r)
			}
		}
	}
	for _, k := range order {
		g := groups[k]
		enc.Keys = append(enc.Keys, g.key)
		enc.Values = append(enc.Values, armorRuleVal{V: verdicts(policy.Class(classOf(g.key.Cls)), g.source, g.rules)})
	}
	encodeSyscalls(enc, rs, setID, paths)
	return enc, nil
}

func classOf(code uint8) policy.Class {
	for _, kc := range kernelClasses {
		if kc.code == code {
			return kc.class
		}
	}
	return ""
}

// depthBit is the header's depth bit for a directory prefix: its number of
// slashes, 63 standing for 63 or more.
func depthBit(prefix string) uint64 {
	d := strings.Count(prefix, "/")
	if d > 63 {
		d = 63
	}
	return 1 << d
}
