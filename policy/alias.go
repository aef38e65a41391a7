package policy

// Symlinked rule paths. The kernel matches the file it resolved: a rule on
// /bin/sh never sees an exec of /bin/sh when /bin is a link to usr/bin and
// sh a link to dash, because bprm_check_security and file_open see
// /usr/bin/dash. The plugin therefore resolves each rule path inside the
// container's root before its first instruction and enforces the resolved
// name too, as an alias: a copy of the rule (same action, modifiers,
// severity, policy and field) whose path is the resolved one and which
// records, in ResolvedFrom, the path the user wrote. Alerts name the
// policy and field of the rule the user wrote; explain shows the alias.
// Patterns are left alone: a glob names many files, no one link.

// Resolver gives the absolute path a rule path resolves to in some root,
// or "" when it resolves to itself or not at all (absent, a loop, out of
// the work's bounds).
type Resolver func(path string) string

// Aliased returns rs with aliases for the rule paths that resolve
// elsewhere: process and file matchPaths and matchDirectories (a
// directory's trailing '/' kept), and every rule's fromSource paths and
// directories, which are extended with the resolved names (the rule then
// applies to a process started through either name). It returns rs itself
// when nothing resolves elsewhere, so containers without links share the
// compiled set; else a new canonical set, with its own digest and ids.
func (rs *RuleSet) Aliased(resolve Resolver) *RuleSet {
	out := &RuleSet{Policies: rs.Policies}
	changed := false
	for _, c := range Classes {
		in, to := rs.Class(c), out.Class(c)
		to.AllowList, to.Posture = in.AllowList, in.Posture
		for _, r := range in.Rules {
			cp := *r
			if src, ok := aliasSources(r.FromSource, resolve); ok {
				cp.FromSource, changed = src, true
			}
			to.Rules = append(to.Rules, &cp)
			if alias := aliasMatch(&cp, resolve); alias != nil {
				to.Rules = append(to.Rules, alias)
				if alias.Guard {
					// The directories above the resolved name too.
					to.Rules = append(to.Rules, ancestorGuards(alias)...)
				}
				changed = true
			}
		}
	}
	if !changed {
		return rs
	}
	out.canonicalize()
	return out
}

// aliasMatch is the alias of a process or file path or directory rule
// whose path resolves elsewhere, nil when there is none.
func aliasMatch(r *Rule, resolve Resolver) *Rule {
	if r.Class != ClassProcess && r.Class != ClassFile {
		return nil
	}
	if r.Match.Type != MatchPath && r.Match.Type != MatchDir {
		return nil
	}
	to := resolveEntry(r.Match.Value, resolve)
	if to == "" {
		return nil
	}
	alias := *r
	alias.Match.Value, alias.ResolvedFrom = to, r.Match.Value
	return &alias
}

// aliasSources is src with an entry added for each path or directory that
// resolves elsewhere, and whether it added any.
func aliasSources(src []SourceMatcher, resolve Resolver) ([]SourceMatcher, bool) {
	var added []SourceMatcher
	for _, s := range src {
		a := s
		switch {
		case s.Path != "":
			a.Path = resolveEntry(s.Path, resolve)
			a.ResolvedFrom = s.Path
		case s.Dir != "":
			a.Dir = resolveEntry(s.Dir, resolve)
			a.ResolvedFrom = s.Dir
		}
		if a.Path != "" || a.Dir != "" {
			added = append(added, a)
		}
	}
	if len(added) == 0 {
		return src, false
	}
	return append(append([]SourceMatcher{}, src...), added...), true
}

// resolveEntry resolves a path, or a directory (trailing '/', kept), and
// returns "" when it does not resolve elsewhere.
func resolveEntry(p string, resolve Resolver) string {
	if len(p) > 1 && p[len(p)-1] == '/' {
		to := resolve(p[:len(p)-1])
		if to == "" || to+"/" == p {
			return ""
		}
		if to != "/" {
			to += "/"
		}
		return to
	}
	if to := resolve(p); to != p {
		return to
	}
	return ""
}

// Aliases lists the rules of rs that are aliases, for explain and logs.
func (rs *RuleSet) Aliases() []*Rule {
	var out []*Rule
	for _, c := range Classes {
		for _, r := range rs.Class(c).Rules {
			if r.ResolvedFrom != "" || aliasedSource(r) {
				out = append(out, r)
			}
		}
	}
	return out
}

// aliasedSource says whether a fromSource entry of r was added by Aliased.
func aliasedSource(r *Rule) bool {
	for _, s := range r.FromSource {
		if s.ResolvedFrom != "" {
			return true
		}
	}
	return false
}
