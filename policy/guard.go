package policy

import "strings"

// Source guards. A fromSource rule names a program by its path: the
// process whose executable had that name when it started. A container that
// could put another file at that name — write over it, rename or link a
// file onto it, remove it and make a new one, or rename a directory above
// it and build the path again — would run its own program with the
// source's grants. So every fromSource source of a container's policy is
// guarded: the source (a path, or a directory and what is below it) and
// every directory above it are read-only to the container, with a rule the
// compiler adds beside the rule that names the source (Guard). The program
// at a source's name is then the one the image or the node put there.
// A copy of the program elsewhere is another name, and gets nothing.
//
// Host policies are not guarded: the node's package manager must be able
// to update the programs they name.

// sourceGuards returns the guard rules for r's sources: Block (Audit for
// an Audit rule, or in audit mode), read-only, in the file class, with r's
// policy, origin and severity, and its field with ".fromSource" (no index:
// the compiled set does not depend on the order of a rule's sources).
func sourceGuards(r *Rule, audit bool) []*Rule {
	action := Block
	if audit || r.Action == Audit {
		action = Audit
	}
	var out []*Rule
	for _, s := range r.FromSource {
		g := &Rule{
			Class: ClassFile, Action: action, ReadOnly: true, Guard: true,
			Policy: r.Policy, Origin: r.Origin, Field: r.Field + ".fromSource",
			Severity: r.Severity, Tags: r.Tags,
			Message: "a fromSource program's name stays bound to its file",
		}
		switch {
		case s.Path != "":
			g.Match = Match{Type: MatchPath, Value: s.Path}
		case s.Dir != "":
			g.Match = Match{Type: MatchDir, Value: s.Dir, Recursive: s.Recursive}
		default:
			continue
		}
		out = append(out, g)
		out = append(out, ancestorGuards(g)...)
	}
	return out
}

// ancestorGuards guards every directory above g's path (not "/", which
// cannot be renamed; not a directory source itself, which its own rule
// covers), as an exact path: renaming, removing or changing the directory
// is a write to it.
func ancestorGuards(g *Rule) []*Rule {
	var out []*Rule
	p := strings.TrimSuffix(g.Match.Value, "/")
	for {
		i := strings.LastIndexByte(p, '/')
		if i <= 0 {
			return out
		}
		p = p[:i]
		a := *g
		a.Match = Match{Type: MatchPath, Value: p}
		a.ResolvedFrom = ""
		out = append(out, &a)
	}
}
