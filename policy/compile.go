package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Options are the per-container settings that shape a compiled set.
type Options struct {
	Postures Postures
	Mode     Mode
}

// OptionsOf returns the compile options a pod's settings ask for.
func (s *PodSettings) Options() Options {
	return Options{Postures: s.Postures, Mode: s.Mode}
}

// inherited resolves a rule's provenance: rule, else section, else spec.
// An action empty everywhere is Block.
type inherited struct {
	action   Action
	severity int
	tags     []string
	message  string
}

func inherit(levels ...*Provenance) inherited {
	var out inherited
	for _, p := range levels {
		if out.action == "" {
			out.action = p.Action
		}
		if out.severity == 0 {
			out.severity = int(p.Severity)
		}
		if out.tags == nil && len(p.Tags) > 0 {
			out.tags = append([]string(nil), p.Tags...)
		}
		if out.message == "" {
			out.message = p.Message
		}
	}
	if out.action == "" {
		out.action = Block
	}
	return out
}

func hasAction(levels []*Provenance) bool {
	for _, p := range levels {
		if p.Action != "" {
			return true
		}
	}
	return false
}

type builder struct {
	rs   *RuleSet
	p    *Policy
	mode Mode
}

func (b *builder) add(class Class, field string, m Match, src []SourceMatcher, ownerOnly, readOnly bool, prov ...*Provenance) {
	in := inherit(prov...)
	if class == ClassSyscalls && !hasAction(prov) {
		// KubeArmor only audits syscall rules: without an action written
		// somewhere, nri-armor audits them too rather than block.
		in.action = Audit
	}
	if b.mode == ModeAudit && in.action == Block {
		in.action = Audit
	}
	r := &Rule{
		Class: class, Action: in.action, Match: m, FromSource: src,
		OwnerOnly: ownerOnly, ReadOnly: readOnly,
		Policy: b.p.Metadata.Name, Origin: b.p.Ref(), Field: field,
		Severity: in.severity, Tags: in.tags, Message: in.message,
	}
	cr := b.rs.Class(class)
	cr.Rules = append(cr.Rules, r)
	if len(src) > 0 && b.p.Kind != KindHostPolicy {
		fc := b.rs.Class(ClassFile)
		fc.Rules = append(fc.Rules, sourceGuards(r, b.mode == ModeAudit)...)
	}
}

func sources(src []SourceMatch) []SourceMatcher {
	var out []SourceMatcher
	for _, s := range src {
		out = append(out, SourceMatcher{Path: cleanPath(s.Path)})
	}
	return out
}

// cleanPath folds repeated slashes, as the kernel does when it resolves a path.
func cleanPath(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}

func (b *builder) policy(p *Policy) {
	b.p = p
	s := &p.Spec
	spec := &s.Provenance
	if sec := s.Process; sec != nil {
		for i := range sec.MatchPaths {
			r := &sec.MatchPaths[i]
			m := Match{Type: MatchPath, Value: cleanPath(r.Path)}
			if r.ExecName != "" {
				m = Match{Type: MatchExecName, Value: r.ExecName}
			}
			b.add(ClassProcess, fmt.Sprintf("spec.process.matchPaths[%d]", i), m, sources(r.FromSource), r.OwnerOnly, false, &r.Provenance, &sec.Provenance, spec)
		}
		for i := range sec.MatchDirectories {
			r := &sec.MatchDirectories[i]
			b.add(ClassProcess, fmt.Sprintf("spec.process.matchDirectories[%d]", i), Match{Type: MatchDir, Value: cleanPath(r.Dir), Recursive: r.Recursive}, sources(r.FromSource), r.OwnerOnly, false, &r.Provenance, &sec.Provenance, spec)
		}
		for i := range sec.MatchPatterns {
			r := &sec.MatchPatterns[i]
			b.add(ClassProcess, fmt.Sprintf("spec.process.matchPatterns[%d]", i), Match{Type: MatchPattern, Value: r.Pattern}, nil, r.OwnerOnly, false, &r.Provenance, &sec.Provenance, spec)
		}
	}
	if sec := s.File; sec != nil {
		for i := range sec.MatchPaths {
			r := &sec.MatchPaths[i]
			b.add(ClassFile, fmt.Sprintf("spec.file.matchPaths[%d]", i), Match{Type: MatchPath, Value: cleanPath(r.Path)}, sources(r.FromSource), r.OwnerOnly, r.ReadOnly, &r.Provenance, &sec.Provenance, spec)
		}
		for i := range sec.MatchDirectories {
			r := &sec.MatchDirectories[i]
			b.add(ClassFile, fmt.Sprintf("spec.file.matchDirectories[%d]", i), Match{Type: MatchDir, Value: cleanPath(r.Dir), Recursive: r.Recursive}, sources(r.FromSource), r.OwnerOnly, r.ReadOnly, &r.Provenance, &sec.Provenance, spec)
		}
		for i := range sec.MatchPatterns {
			r := &sec.MatchPatterns[i]
			b.add(ClassFile, fmt.Sprintf("spec.file.matchPatterns[%d]", i), Match{Type: MatchPattern, Value: r.Pattern}, nil, r.OwnerOnly, r.ReadOnly, &r.Provenance, &sec.Provenance, spec)
		}
	}
	if sec := s.Network; sec != nil {
		for i := range sec.MatchProtocols {
			r := &sec.MatchProtocols[i]
			for _, proto := range strings.Split(r.Protocol, ",") {
				b.add(ClassNetwork, fmt.Sprintf("spec.network.matchProtocols[%d]", i), Match{Type: MatchProtocol, Value: proto}, sources(r.FromSource), false, false, &r.Provenance, &sec.Provenance, spec)
			}
		}
	}
	if sec := s.Capabilities; sec != nil {
		for i := range sec.MatchCapabilities {
			r := &sec.MatchCapabilities[i]
			b.add(ClassCapabilities, fmt.Sprintf("spec.capabilities.matchCapabilities[%d]", i), Match{Type: MatchCapability, Value: r.Capability}, sources(r.FromSource), false, false, &r.Provenance, &sec.Provenance, spec)
		}
	}
	if sec := s.Syscalls; sec != nil {
		syscallSources := func(src []SyscallSource) []SourceMatcher {
			var out []SourceMatcher
			for _, s := range src {
				out = append(out, SourceMatcher{Path: cleanPath(s.Path), Dir: cleanPath(s.Dir), Recursive: s.Recursive})
			}
			return out
		}
		for i := range sec.MatchSyscalls {
			r := &sec.MatchSyscalls[i]
			for _, sc := range r.Syscall {
				b.add(ClassSyscalls, fmt.Sprintf("spec.syscalls.matchSyscalls[%d]", i), Match{Type: MatchSyscall, Value: sc}, syscallSources(r.FromSource), false, false, &r.Provenance, &sec.Provenance, spec)
			}
		}
		for i := range sec.MatchPaths {
			r := &sec.MatchPaths[i]
			for _, sc := range r.Syscall {
				b.add(ClassSyscalls, fmt.Sprintf("spec.syscalls.matchPaths[%d]", i), Match{Type: MatchSyscall, Value: sc, Path: cleanPath(r.Path), Recursive: r.Recursive}, syscallSources(r.FromSource), false, false, &r.Provenance, &sec.Provenance, spec)
			}
		}
	}
}

// Compile builds the canonical rule set of policies under opts. Policies
// must have been validated (LoadBytes does that); the order of policies does
// not matter.
func Compile(policies []*Policy, opts Options) *RuleSet {
	rs := &RuleSet{Policies: []string{}}
	b := &builder{rs: rs, mode: opts.Mode}
	if opts.Mode != ModeDisabled {
		for _, p := range policies {
			rs.Policies = append(rs.Policies, p.Ref())
			b.policy(p)
		}
	}
	// Allow-list mode is per class: an Allow rule in a class puts that class,
	// and only that class, in allow-list mode. Syscalls have no posture.
	for _, c := range []Class{ClassProcess, ClassFile, ClassNetwork, ClassCapabilities} {
		cr := rs.Class(c)
		for _, r := range cr.Rules {
			if r.Action == Allow {
				cr.AllowList = true
				break
			}
		}
		if cr.AllowList {
			cr.Posture = opts.Postures.Of(c)
			if cr.Posture == "" {
				cr.Posture = Audit
			}
			if opts.Mode == ModeAudit && cr.Posture == Block {
				cr.Posture = Audit
			}
		}
	}
	rs.canonicalize()
	return rs
}

// Compiler compiles with a cache: the same policies (by digest) under the
// same options give the same *RuleSet without compiling again. Many pods
// share a set; the kernel side keys its state by the set's digest.
type Compiler struct {
	mu     sync.Mutex
	cache  map[string]*RuleSet
	max    int
	hits   uint64
	misses uint64
}

// NewCompiler returns a compiler that keeps up to max sets (0: 4096).
func NewCompiler(max int) *Compiler {
	if max <= 0 {
		max = 4096
	}
	return &Compiler{cache: map[string]*RuleSet{}, max: max}
}

func cacheKey(policies []*Policy, opts Options) string {
	ds := make([]string, 0, len(policies))
	for _, p := range policies {
		ds = append(ds, p.Digest)
	}
	sort.Strings(ds)
	h := sha256.New()
	fmt.Fprintf(h, "%d|%s|%s|%s|%s|", IRVersion, opts.Mode, opts.Postures.File, opts.Postures.Network, opts.Postures.Capabilities)
	for _, d := range ds {
		h.Write([]byte(d))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Compile returns the cached set for these inputs, compiling it on a miss.
func (c *Compiler) Compile(policies []*Policy, opts Options) *RuleSet {
	key := cacheKey(policies, opts)
	c.mu.Lock()
	if rs, ok := c.cache[key]; ok {
		c.hits++
		c.mu.Unlock()
		return rs
	}
	c.misses++
	c.mu.Unlock()
	rs := Compile(policies, opts)
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.cache[key]; ok {
		return prev
	}
	if len(c.cache) >= c.max {
		for k := range c.cache { // evict an arbitrary entry: the cache only saves work
			delete(c.cache, k)
			break
		}
	}
	c.cache[key] = rs
	return rs
}

// Stats returns cache hits and misses.
func (c *Compiler) Stats() (hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}
