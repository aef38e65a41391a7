package policy

import (
	"fmt"
	"strings"
)

// PathMax is the longest path the kernel resolves; longer paths can never match.
const PathMax = 4096

// The protocol names of matchProtocols (KubeArmor's list), lower case.
var protocolNames = map[string]bool{
	"tcp": true, "udp": true, "icmp": true, "icmpv6": true, "sctp": true, "raw": true,
	"stream": true, "dgram": true, "rdm": true, "seqpacket": true, "dccp": true,
	"packet": true, "all": true,
}

// KubeArmor's presets. nri-armor parses them but does not enforce them yet.
var presetNames = map[string]bool{"protectEnv": true, "filelessExec": true, "exec": true, "protectProc": true}

// validator checks what the decoder cannot (values, per-kind fields) and
// normalises accepted spellings (lower-case actions, CAP_ prefixes, protocol
// case) in place, so that the compiler sees one spelling of each thing.
type validator struct {
	*decoder
	p *Policy
}

func (v *validator) err(path, format string, args ...any) {
	v.fail(v.line(path), path, format, args...)
}

func (v *validator) warn(path, format string, args ...any) {
	v.warnAt(v.line(path), path, format, args...)
}

func (v *validator) validate() {
	p := v.p
	if p.APIVersion != APIVersion {
		v.err("apiVersion", "must be %s, got %q", APIVersion, p.APIVersion)
	}
	if strings.TrimSpace(p.Metadata.Name) == "" {
		v.err("metadata.name", "must not be empty")
	}
	if strings.Contains(p.Metadata.Name, ",") {
		v.err("metadata.name", "must not contain ',' (annotations list policy names separated by commas)")
	}
	s := &p.Spec
	switch p.Kind {
	case KindPolicy:
		if p.Metadata.Namespace == "" {
			p.Metadata.Namespace = "default"
		}
		if s.NodeSelector != nil {
			v.err("spec.nodeSelector", "not allowed in %s (use spec.selector)", p.Kind)
		}
		if s.Selector == nil {
			v.warn("spec", "no selector: the policy applies only to pods that name it in the %s annotation", AnnotationPolicies)
		} else {
			v.expressions("spec.selector", s.Selector.MatchExpressions, "label")
		}
	case KindClusterPolicy:
		if s.NodeSelector != nil {
			v.err("spec.nodeSelector", "not allowed in %s (use spec.selector)", p.Kind)
		}
		if s.Selector != nil {
			if s.Selector.MatchLabels != nil {
				v.err("spec.selector.matchLabels", "not allowed in %s (use matchExpressions with key label)", p.Kind)
			}
			v.expressions("spec.selector", s.Selector.MatchExpressions, "namespace", "label")
		}
	case KindHostPolicy:
		if s.Selector != nil {
			v.err("spec.selector", "not allowed in %s (use spec.nodeSelector)", p.Kind)
		}
		if s.NodeSelector == nil {
			v.warn("spec.nodeSelector", "missing: the policy applies to whichever node loads it")
		}
	}
	v.provenance("spec", &s.Provenance)
	if s.Process == nil && s.File == nil && s.Network == nil && s.Capabilities == nil && s.Syscalls == nil {
		v.warn("spec", "no process, file, network, capabilities or syscalls rules")
	}
	v.process(s.Process)
	v.file(s.File)
	v.network(s.Network)
	v.capabilities(s.Capabilities)
	v.syscalls(s.Syscalls)
	for i := range s.Presets {
		path := fmt.Sprintf("spec.presets[%d]", i)
		if !presetNames[s.Presets[i].Name] {
			v.err(path+".name", "unknown preset %q", s.Presets[i].Name)
		} else {
			v.warn(path, "preset %q is not enforced by nri-armor", s.Presets[i].Name)
		}
		v.action(path+".action", &s.Presets[i].Action)
	}
	if s.AppArmor != "" {
		v.appArmor(s.AppArmor)
	}
}

// appArmor checks raw AppArmor rules (spec.apparmor): nothing in them may
// take them out of the profile body they are placed in (CheckAppArmorText),
// and they must parse on their own (the AppArmorChecker, when set). Errors
// name the line of the file that holds the failing line of the text.
func (v *validator) appArmor(text string) {
	const path = "spec.apparmor"
	src, ok := v.texts[path]
	if !ok {
		src = TextSource{Line: v.line(path)}
	}
	src.File = v.p.Source.File
	v.p.AppArmorSource = src
	if n, problem := CheckAppArmorText(text); problem != "" {
		v.fail(src.LineOf(n), path, "line %d of the AppArmor rules: %s", n, problem)
		return
	}
	check := currentAppArmorChecker()
	if check == nil {
		return
	}
	for _, is := range check(text) {
		msg := is.Message
		if is.Line > 0 {
			msg = fmt.Sprintf("line %d of the AppArmor rules: %s", is.Line, is.Message)
		}
		if is.Warning {
			v.warnAt(src.LineOf(is.Line), path, "%s", msg)
		} else {
			v.fail(src.LineOf(is.Line), path, "%s", msg)
		}
	}
}

func (v *validator) expressions(path string, exprs []Expression, keys ...string) {
	for i, e := range exprs {
		ep := fmt.Sprintf("%s.matchExpressions[%d]", path, i)
		okKey := false
		for _, k := range keys {
			okKey = okKey || e.Key == k
		}
		if !okKey {
			v.err(ep+".key", "must be %s, got %q", strings.Join(keys, " or "), e.Key)
		}
		if e.Operator != "In" && e.Operator != "NotIn" {
			v.err(ep+".operator", "must be In or NotIn, got %q", e.Operator)
		}
		if len(e.Values) == 0 {
			v.err(ep+".values", "must list at least one value")
		}
		if e.Key == "label" {
			for j, val := range e.Values {
				if k, _, ok := strings.Cut(val, "="); !ok || k == "" {
					v.err(fmt.Sprintf("%s.values[%d]", ep, j), "must be key=value, got %q", val)
				}
			}
		}
	}
}

func (v *validator) provenance(path string, pr *Provenance) {
	sp := path + ".severity"
	if _, present := v.lines[sp]; present && pr.Severity == 0 {
		if v.nulls[sp] {
			v.warn(sp, "empty; inherited from the enclosing section or unset")
		} else {
			v.err(sp, "must be between 1 and 10, got 0")
		}
	} else if pr.Severity < 0 || pr.Severity > 10 {
		v.err(sp, "must be between 1 and 10, got %d", pr.Severity)
	}
	v.action(path+".action", &pr.Action)
}

func (v *validator) action(path string, a *Action) {
	switch *a {
	case "", Allow, Audit, Block:
		return
	}
	for _, canon := range []Action{Allow, Audit, Block} {
		if strings.EqualFold(string(*a), string(canon)) {
			v.warn(path, "%q read as %q", *a, canon)
			*a = canon
			return
		}
	}
	v.err(path, "must be Allow, Audit or Block, got %q", *a)
}

func (v *validator) absPath(path, value string) {
	switch {
	case !strings.HasPrefix(value, "/"):
		v.err(path, "must be an absolute path, got %q", value)
	case strings.HasSuffix(value, "/"):
		v.err(path, "must not end with '/' (use a directory rule), got %q", value)
	default:
		v.lengthAndForm(path, value)
		v.symlinked(path, value)
	}
}

func (v *validator) dirPath(path, value string) {
	switch {
	case !strings.HasPrefix(value, "/"):
		v.err(path, "must be an absolute directory path, got %q", value)
	case !strings.HasSuffix(value, "/"):
		v.err(path, "must end with '/', got %q", value)
	default:
		v.lengthAndForm(path, value)
		v.symlinked(path, value)
	}
}

// Paths that images commonly make links: the merged-/usr directories
// (/bin → usr/bin …) and programs installed through alternatives or under
// a versioned name.
var (
	linkedDirs  = []string{"/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/"}
	linkedNames = map[string]bool{"sh": true, "python": true, "python3": true, "dnf": true, "yum": true,
		"awk": true, "nc": true, "vi": true, "java": true, "editor": true, "pager": true}
)

// symlinked hints at a rule path that is commonly a link in images: the
// kernel sees the file it resolves to, which nri-armor also enforces,
// resolved in each container (plugin/alias.go), so the rule works as
// written; the hint says so, since `armorctl check` of the resolved name
// without --root would otherwise surprise. A hint, not a warning: the
// policy is right, and shipped examples use such paths.
func (v *validator) symlinked(path, value string) {
	dir, name := value[:strings.LastIndex(value, "/")+1], value[strings.LastIndex(value, "/")+1:]
	linked := linkedNames[name] && (dir == "/usr/bin/" || dir == "/usr/sbin/" || dir == "/usr/local/bin/")
	for _, d := range linkedDirs {
		linked = linked || strings.HasPrefix(value, d)
	}
	if linked {
		v.hintAt(v.line(path), path, "%q is a symlink in many images (merged /usr, alternatives, versioned names); the kernel sees the file it resolves to, so nri-armor resolves it in each container and enforces the resolved name too (docs/policies.md, Symlinked rule paths)", value)
	}
}

// lengthAndForm rejects what the kernel can never report: paths over
// PATH_MAX, NUL bytes, and "." or ".." components (the kernel resolves them).
func (v *validator) lengthAndForm(path, value string) {
	if len(value) > PathMax {
		v.err(path, "longer than PATH_MAX (%d bytes)", PathMax)
		return
	}
	if strings.ContainsRune(value, 0) {
		v.err(path, "contains a NUL byte")
		return
	}
	if c, bad := RuleBreaker(value, false); bad {
		v.err(path, "%s", ruleBreakerMessage(c))
		return
	}
	for _, c := range strings.Split(value, "/") {
		if c == "." || c == ".." {
			v.err(path, "must not contain %q components, got %q", c, value)
			return
		}
	}
	if strings.Contains(value, "//") {
		v.warn(path, "contains '//': read as a single '/'")
	}
}

func (v *validator) sources(path string, src []SourceMatch) {
	for i, s := range src {
		v.absPath(fmt.Sprintf("%s[%d].path", path, i), s.Path)
	}
}

func (v *validator) pattern(path, value string) {
	if len(value) > PathMax {
		v.err(path, "longer than PATH_MAX (%d bytes)", PathMax)
		return
	}
	if _, err := CompileGlob(value); err != nil {
		v.err(path, "%v", err)
		return
	}
	if c, bad := RuleBreaker(value, true); bad {
		v.err(path, "%s", ruleBreakerMessage(c))
	}
}

func (v *validator) process(s *ProcessSection) {
	if s == nil {
		return
	}
	v.provenance("spec.process", &s.Provenance)
	if len(s.MatchPaths)+len(s.MatchDirectories)+len(s.MatchPatterns) == 0 {
		v.warn("spec.process", "no rules")
	}
	for i := range s.MatchPaths {
		r := &s.MatchPaths[i]
		path := fmt.Sprintf("spec.process.matchPaths[%d]", i)
		switch {
		case r.Path == "" && r.ExecName == "":
			v.err(path, "needs path or execname")
		case r.Path != "" && r.ExecName != "":
			v.err(path, "set path or execname, not both")
		case r.Path != "":
			v.absPath(path+".path", r.Path)
		case strings.Contains(r.ExecName, "/"):
			v.err(path+".execname", "must be a file name without '/', got %q", r.ExecName)
		default:
			if c, bad := RuleBreaker(r.ExecName, false); bad {
				v.err(path+".execname", "%s", ruleBreakerMessage(c))
			}
		}
		v.sources(path+".fromSource", r.FromSource)
		v.provenance(path, &r.Provenance)
	}
	for i := range s.MatchDirectories {
		r := &s.MatchDirectories[i]
		path := fmt.Sprintf("spec.process.matchDirectories[%d]", i)
		v.dirPath(path+".dir", r.Dir)
		v.sources(path+".fromSource", r.FromSource)
		v.provenance(path, &r.Provenance)
	}
	for i := range s.MatchPatterns {
		r := &s.MatchPatterns[i]
		path := fmt.Sprintf("spec.process.matchPatterns[%d]", i)
		v.pattern(path+".pattern", r.Pattern)
		v.provenance(path, &r.Provenance)
	}
}

func (v *validator) file(s *FileSection) {
	if s == nil {
		return
	}
	v.provenance("spec.file", &s.Provenance)
	if len(s.MatchPaths)+len(s.MatchDirectories)+len(s.MatchPatterns) == 0 {
		v.warn("spec.file", "no rules")
	}
	for i := range s.MatchPaths {
		r := &s.MatchPaths[i]
		path := fmt.Sprintf("spec.file.matchPaths[%d]", i)
		v.absPath(path+".path", r.Path)
		v.sources(path+".fromSource", r.FromSource)
		v.provenance(path, &r.Provenance)
	}
	for i := range s.MatchDirectories {
		r := &s.MatchDirectories[i]
		path := fmt.Sprintf("spec.file.matchDirectories[%d]", i)
		v.dirPath(path+".dir", r.Dir)
		v.sources(path+".fromSource", r.FromSource)
		v.provenance(path, &r.Provenance)
	}
	for i := range s.MatchPatterns {
		r := &s.MatchPatterns[i]
		path := fmt.Sprintf("spec.file.matchPatterns[%d]", i)
		v.pattern(path+".pattern", r.Pattern)
		v.provenance(path, &r.Provenance)
	}
}

// hostNeedsSource enforces KubeArmor's rule that host network and capability
// rules name the process they apply to.
func (v *validator) hostNeedsSource(path string, n int) {
	if v.p.Kind == KindHostPolicy && n == 0 {
		v.err(path+".fromSource", "required field missing (host network and capabilities rules need fromSource)")
	}
}

func (v *validator) network(s *NetworkSection) {
	if s == nil {
		return
	}
	v.provenance("spec.network", &s.Provenance)
	if len(s.MatchProtocols) == 0 {
		v.warn("spec.network", "no rules")
	}
	for i := range s.MatchProtocols {
		r := &s.MatchProtocols[i]
		path := fmt.Sprintf("spec.network.matchProtocols[%d]", i)
		var names []string
		for _, name := range strings.Split(r.Protocol, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if !protocolNames[name] {
				v.err(path+".protocol", "unknown protocol %q", name)
				continue
			}
			names = append(names, name)
		}
		r.Protocol = strings.Join(names, ",")
		v.sources(path+".fromSource", r.FromSource)
		v.hostNeedsSource(path, len(r.FromSource))
		v.provenance(path, &r.Provenance)
	}
}

// NormalizeCapability returns the lower-case name without CAP_, and whether
// it is a Linux capability.
func NormalizeCapability(name string) (string, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.TrimPrefix(n, "cap_")
	_, ok := capabilityNumbers[n]
	return n, ok
}

func (v *validator) capabilities(s *CapabilitiesSection) {
	if s == nil {
		return
	}
	v.provenance("spec.capabilities", &s.Provenance)
	if len(s.MatchCapabilities) == 0 {
		v.warn("spec.capabilities", "no rules")
	}
	for i := range s.MatchCapabilities {
		r := &s.MatchCapabilities[i]
		path := fmt.Sprintf("spec.capabilities.matchCapabilities[%d]", i)
		n, ok := NormalizeCapability(r.Capability)
		if !ok {
			v.err(path+".capability", "unknown capability %q", r.Capability)
		}
		r.Capability = n
		v.sources(path+".fromSource", r.FromSource)
		v.hostNeedsSource(path, len(r.FromSource))
		v.provenance(path, &r.Provenance)
	}
}

func (v *validator) syscallList(path string, names []string) {
	if len(names) == 0 {
		v.err(path, "must list at least one system call")
	}
	for j, name := range names {
		n := strings.ToLower(strings.TrimSpace(name))
		switch have, lack := syscallArchesOf(n); {
		case len(have) == 0:
			v.err(fmt.Sprintf("%s[%d]", path, j), "unknown system call %q (on %s)", name, strings.Join(lack, " and "))
		case len(lack) > 0:
			v.warn(fmt.Sprintf("%s[%d]", path, j), "system call %q does not exist on %s: nri-armor refuses the containers this rule applies to on such nodes", name, strings.Join(lack, ", "))
		}
		names[j] = n
	}
}

func (v *validator) syscallSources(path string, src []SyscallSource) {
	for i, s := range src {
		sp := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case (s.Path == "") == (s.Dir == ""):
			v.err(sp, "needs exactly one of path or dir")
		case s.Path != "":
			v.absPath(sp+".path", s.Path)
		default:
			v.dirPath(sp+".dir", s.Dir)
		}
	}
}

func (v *validator) syscalls(s *SyscallsSection) {
	if s == nil {
		return
	}
	v.provenance("spec.syscalls", &s.Provenance)
	if len(s.MatchSyscalls)+len(s.MatchPaths) == 0 {
		v.warn("spec.syscalls", "no rules")
	}
	for i := range s.MatchSyscalls {
		r := &s.MatchSyscalls[i]
		path := fmt.Sprintf("spec.syscalls.matchSyscalls[%d]", i)
		v.syscallList(path+".syscall", r.Syscall)
		v.syscallSources(path+".fromSource", r.FromSource)
		v.provenance(path, &r.Provenance)
	}
	for i := range s.MatchPaths {
		r := &s.MatchPaths[i]
		path := fmt.Sprintf("spec.syscalls.matchPaths[%d]", i)
		if !strings.HasPrefix(r.Path, "/") {
			v.err(path+".path", "must be an absolute path, got %q", r.Path)
		} else {
			v.lengthAndForm(path+".path", r.Path)
		}
		if r.Recursive && !strings.HasSuffix(r.Path, "/") {
			v.err(path+".recursive", "applies only to a directory path (ending in '/')")
		}
		v.syscallList(path+".syscall", r.Syscall)
		v.syscallSources(path+".fromSource", r.FromSource)
		v.provenance(path, &r.Provenance)
	}
}

// CapabilityNumber returns the Linux number of a capability name.
func CapabilityNumber(name string) (int, bool) {
	n, ok := NormalizeCapability(name)
	if !ok {
		return 0, false
	}
	return capabilityNumbers[n], true
}
