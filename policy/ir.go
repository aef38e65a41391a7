package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"
	"sync"
)

// IRVersion is the version of the rule IR's JSON form; it is part of every
// digest, so a change of meaning changes every digest.
const IRVersion = 1

// MatchType says what a rule's matcher compares.
type MatchType string

// Matcher types.
const (
	MatchPath       MatchType = "path"       // exact path
	MatchExecName   MatchType = "execname"   // executable's file name
	MatchDir        MatchType = "dir"        // directory (Value ends in '/'), Recursive or direct children
	MatchPattern    MatchType = "pattern"    // AppArmor-style glob
	MatchProtocol   MatchType = "protocol"   // one protocol or socket type name
	MatchCapability MatchType = "capability" // one capability, lower case without CAP_
	MatchSyscall    MatchType = "syscall"    // one system call, optionally on Path
)

// Match is a rule's matcher.
type Match struct {
	Type      MatchType `json:"type"`
	Value     string    `json:"value"`
	Recursive bool      `json:"recursive,omitempty"`
	// Path narrows a syscall rule to a file, or to a directory when it ends in '/'.
	Path string `json:"path,omitempty"`
}

// SourceMatch is one fromSource entry of a rule: the acting process's
// executable is Path, or lies in Dir (recursively or directly).
type SourceMatcher struct {
	Path      string `json:"path,omitempty"`
	Dir       string `json:"dir,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
	// ResolvedFrom is set on an entry added for a symlinked source: the
	// path or directory written in the policy (alias.go).
	ResolvedFrom string `json:"resolvedFrom,omitempty"`
}

// Rule is one compiled rule: its action and matcher after inheritance, its
// modifiers, and where it came from.
type Rule struct {
	// ID is the rule's number within its set, from 1, in canonical order.
	// Kernel events carry it; the tracer maps it back to the provenance.
	ID         int             `json:"id"`
	Class      Class           `json:"class"`
	Action     Action          `json:"action"`
	Match      Match           `json:"match"`
	FromSource []SourceMatcher `json:"fromSource,omitempty"`
	OwnerOnly  bool            `json:"ownerOnly,omitempty"`
	ReadOnly   bool            `json:"readOnly,omitempty"`

	Policy   string   `json:"policy"` // metadata.name, as alerts show it
	Origin   string   `json:"origin"` // Kind/namespace/name
	Field    string   `json:"field"`  // e.g. spec.file.matchPaths[2]
	Severity int      `json:"severity,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	Message  string   `json:"message,omitempty"`
	// ResolvedFrom is set on an alias (alias.go): Match.Value is what the
	// path written in the policy, ResolvedFrom, resolves to in the
	// container's root.
	ResolvedFrom string `json:"resolvedFrom,omitempty"`
	// Guard is set on a rule the compiler added to keep a fromSource
	// source's name bound to its file (guard.go).
	Guard bool `json:"guard,omitempty"`

	glob *Glob // compiled Match.Value for MatchPattern
}

// ClassRules is one class of a rule set.
type ClassRules struct {
	// AllowList is true when an Allow rule applies in this class: whatever no
	// rule matches then gets Posture instead of being allowed.
	AllowList bool    `json:"allowList"`
	Posture   Action  `json:"posture,omitempty"`
	Rules     []*Rule `json:"rules"`
}

// RuleSet is the canonical, content-addressed rule set of a container: the
// same policies, settings and rules give byte-identical JSON and the same
// Digest, in whatever order the policies were found.
type RuleSet struct {
	Version  int      `json:"version"`
	Digest   string   `json:"digest"`
	Policies []string `json:"policies"` // Origins of the policies compiled in, sorted

	Process      ClassRules `json:"process"`
	File         ClassRules `json:"file"`
	Network      ClassRules `json:"network"`
	Capabilities ClassRules `json:"capabilities"`
	Syscalls     ClassRules `json:"syscalls"`

	indexOnce sync.Once
	index     map[Class]*classIndex
}

// Class returns the rules of class c.
func (rs *RuleSet) Class(c Class) *ClassRules {
	switch c {
	case ClassProcess:
		return &rs.Process
	case ClassFile:
		return &rs.File
	case ClassNetwork:
		return &rs.Network
	case ClassCapabilities:
		return &rs.Capabilities
	case ClassSyscalls:
		return &rs.Syscalls
	}
	return nil
}

// Empty reports whether the set has no rule at all: such a container costs nothing.
func (rs *RuleSet) Empty() bool {
	for _, c := range Classes {
		if len(rs.Class(c).Rules) > 0 {
			return false
		}
	}
	return true
}

// RuleByID returns rule id (1-based), or nil.
func (rs *RuleSet) RuleByID(id int) *Rule {
	for _, c := range Classes {
		rules := rs.Class(c).Rules
		if len(rules) > 0 && id >= rules[0].ID && id <= rules[len(rules)-1].ID {
			return rules[id-rules[0].ID]
		}
	}
	return nil
}

// JSON returns the canonical JSON form, the one the digest is taken over.
func (rs *RuleSet) JSON() []byte {
	b, err := json.Marshal(rs)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return b
}

// canonicalize sorts and de-duplicates each class's rules, numbers them and
// computes the digest. Sorting by the rule's own JSON gives a total order
// that depends only on content.
func (rs *RuleSet) canonicalize() {
	rs.Version = IRVersion
	sort.Strings(rs.Policies)
	id := 1
	for _, c := range Classes {
		cr := rs.Class(c)
		type keyed struct {
			key  []byte
			rule *Rule
		}
		ks := make([]keyed, len(cr.Rules))
		for i, r := range cr.Rules {
			r.ID = 0
			sort.Slice(r.FromSource, func(a, b int) bool {
				x, y := r.FromSource[a], r.FromSource[b]
				return x.Path+"\x00"+x.Dir < y.Path+"\x00"+y.Dir || (x.Path == y.Path && x.Dir == y.Dir && !x.Recursive && y.Recursive)
			})
			k, _ := json.Marshal(r)
			ks[i] = keyed{k, r}
		}
		sort.Slice(ks, func(i, j int) bool { return bytes.Compare(ks[i].key, ks[j].key) < 0 })
		cr.Rules = cr.Rules[:0]
		for i, k := range ks {
			if i > 0 && bytes.Equal(k.key, ks[i-1].key) {
				continue
			}
			k.rule.ID = id
			id++
			cr.Rules = append(cr.Rules, k.rule)
		}
		if cr.Rules == nil {
			cr.Rules = []*Rule{}
		}
	}
	rs.Digest = ""
	sum := sha256.Sum256(rs.JSON())
	rs.Digest = "sha256:" + hex.EncodeToString(sum[:])
}

// ShortDigest is the first 12 hex digits of the digest, for display and names.
func (rs *RuleSet) ShortDigest() string { return ShortDigest(rs.Digest) }

// ShortDigest is the first 12 hex digits of a set digest ("sha256:…").
func ShortDigest(digest string) string {
	d := strings.TrimPrefix(digest, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
