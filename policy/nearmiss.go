package policy

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// A near miss is a rule whose matcher covers an event but whose modifiers
// (fromSource, ownerOnly, readOnly, a syscall rule's path, a directory
// rule's recursive) keep it from applying. `armorctl check` reports them
// so that "no rule matched" is never said of a rule that did match.

// Exemption is one modifier of a rule that keeps it from applying to an event.
type Exemption struct {
	// Modifier is fromSource, ownerOnly, readOnly, ownerOnly+readOnly,
	// recursive or path.
	Modifier string `json:"modifier"`
	Reason   string `json:"reason"`
}

// NearMiss is a rule whose matcher covers an event, with every modifier
// that exempted the event.
type NearMiss struct {
	Rule       *Rule       `json:"rule"`
	Exemptions []Exemption `json:"exemptions"`
}

// Exemptions lists the modifiers of r that keep it from applying to ev, in
// the order Applies checks them; none when r applies. The matcher itself
// is not checked, but for a syscall rule's path. Each modifier is tested
// through Applies itself, on a rule that has only that modifier, so that
// this never disagrees with Decide.
func (r *Rule) Exemptions(ev *Event) []Exemption {
	var out []Exemption
	if len(r.FromSource) > 0 && !(&Rule{Action: r.Action, FromSource: r.FromSource}).Applies(ev) {
		reason := "the acting executable is unknown; the rule applies only to its sources"
		if ev.Source != "" {
			reason = fmt.Sprintf("the acting executable %s is not one of the rule's sources", ev.Source)
		}
		out = append(out, Exemption{"fromSource", reason})
	}
	switch {
	case r.Action != Allow && r.OwnerOnly && r.ReadOnly:
		// Together they permit one thing: the owner reading (Applies).
		if !(&Rule{Action: r.Action, OwnerOnly: true, ReadOnly: true}).Applies(ev) {
			out = append(out, Exemption{"ownerOnly+readOnly", fmt.Sprintf("the owner's reads pass: with both, the %s matches everything else (uid %d owns %s)", r.Action, ev.Owner, ev.Path)})
		}
	default:
		if r.OwnerOnly && !(&Rule{Action: r.Action, OwnerOnly: true}).Applies(ev) {
			reason := fmt.Sprintf("the owner is exempt from %s (uid %d owns %s)", r.Action, ev.Owner, ev.Path)
			if r.Action == Allow {
				reason = fmt.Sprintf("only the owner is allowed (uid %d, owner %d)", ev.UID, ev.Owner)
			}
			out = append(out, Exemption{"ownerOnly", reason})
		}
		if r.ReadOnly && !(&Rule{Action: r.Action, ReadOnly: true}).Applies(ev) {
			reason := fmt.Sprintf("reads pass: the %s matches only writes", r.Action)
			if r.Action == Allow {
				reason = "only reads are allowed; this access writes"
			}
			out = append(out, Exemption{"readOnly", reason})
		}
	}
	if m := r.Match; m.Type == MatchSyscall && m.Path != "" && !(&Rule{Action: r.Action, Match: m}).Applies(ev) {
		switch {
		case ev.Path == "":
			out = append(out, Exemption{"path", fmt.Sprintf("the rule is only on %s; the call has no path", m.Path)})
		case strings.HasSuffix(m.Path, "/") && inDir(ev.Path, m.Path, true):
			out = append(out, nonRecursive(m.Path, ev.Path))
		default:
			out = append(out, Exemption{"path", fmt.Sprintf("the rule is only on %s, not %s", m.Path, ev.Path)})
		}
	}
	return out
}

func nonRecursive(dir, path string) Exemption {
	return Exemption{"recursive", fmt.Sprintf("%s is not recursive: it covers only its direct children, and %s is deeper", dir, path)}
}

// NearMisses returns the rules of ev's class whose matcher covers ev (or
// would, were a directory rule recursive) but that do not apply to it, by
// rule ID.
func NearMisses(rs *RuleSet, ev Event) []NearMiss {
	cr := rs.Class(ev.Class)
	if cr == nil {
		return nil
	}
	var out []NearMiss
	seen := map[*Rule]bool{}
	rs.indexFor(ev.Class).candidates(&ev, func(r *Rule) {
		if seen[r] {
			return
		}
		seen[r] = true
		if ex := r.Exemptions(&ev); len(ex) > 0 {
			out = append(out, NearMiss{Rule: r, Exemptions: ex})
		}
	})
	if (ev.Class == ClassProcess || ev.Class == ClassFile) && ev.Path != "" {
		for _, r := range cr.Rules {
			if r.Match.Type == MatchDir && !r.Match.Recursive && !seen[r] && inDir(ev.Path, r.Match.Value, true) {
				ex := append([]Exemption{nonRecursive(r.Match.Value, ev.Path)}, r.Exemptions(&ev)...)
				out = append(out, NearMiss{Rule: r, Exemptions: ex})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rule.ID < out[j].Rule.ID })
	return out
}

// Check is a verdict with its near misses: what `armorctl check` reports.
type Check struct {
	Decision
	NearMisses []NearMiss `json:"nearMisses"`
}

// WriteText prints the verdict, its first word the action, then the near
// misses with the modifiers that exempted the event.
func (c Check) WriteText(w io.Writer, rs *RuleSet) error {
	ew := &errWriter{w: w}
	n := len(c.NearMisses)
	switch {
	case c.Rule != nil || n == 0:
		if err := c.Decision.WriteText(w, rs); err != nil {
			return err
		}
	case c.DefaultPosture:
		ew.printf("%s by %s: the class is in allow-list mode and no rule applies (%d matched, exempted by a modifier: below)\n  rule set %s\n",
			c.Action, PolicyNameDefaultPosture, n, rs.Digest)
	default:
		ew.printf("%s: no rule applies (%d matched, exempted by a modifier: below)\n  rule set %s\n", c.Action, n, rs.Digest)
	}
	if n > 0 {
		ew.printf("near misses (the matcher matches, a modifier exempts this operation):\n")
	}
	for _, m := range c.NearMisses {
		ew.printf("  #%-4d %-5s %s\n", m.Rule.ID, m.Rule.Action, m.Rule.Describe())
		for _, e := range m.Exemptions {
			ew.printf("        %s: %s\n", e.Modifier, e.Reason)
		}
		ew.printf("        from %s\n", m.Rule.provenance())
	}
	return ew.err
}
