package policy

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// String is the one-line form of an issue as `armorctl validate` prints it:
// errors as FILE:LINE: FIELD: MESSAGE, warnings, notices and hints with their level
// after the location.
func (i *Issue) String() string {
	if i.Level == LevelError || i.Level == "" {
		return i.Error()
	}
	loc := i.File
	if i.Line > 0 {
		loc += fmt.Sprintf(":%d", i.Line)
	}
	field := ""
	if i.Field != "" {
		field = i.Field + ": "
	}
	return fmt.Sprintf("%s: %s: %s%s", loc, i.Level, field, i.Message)
}

// PolicyNameDefaultPosture is the policy name alerts carry when a class's
// posture, not a rule, decided.
const PolicyNameDefaultPosture = "DefaultPosture"

// PolicyName is the name of the policy that decided, as alerts show it:
// the rule's policy, DefaultPosture, or empty when nothing matched.
func (d Decision) PolicyName() string {
	switch {
	case d.Rule != nil:
		return d.Rule.Policy
	case d.DefaultPosture:
		return PolicyNameDefaultPosture
	}
	return ""
}

// Describe is a rule's matcher and modifiers in one line, e.g.
// `dir /etc/ recursive readOnly fromSource=/bin/app`.
func (r *Rule) Describe() string {
	var b strings.Builder
	m := r.Match
	fmt.Fprintf(&b, "%s %s", m.Type, m.Value)
	if m.Path != "" {
		fmt.Fprintf(&b, " on %s", m.Path)
	}
	if m.Recursive {
		b.WriteString(" recursive")
	}
	if r.OwnerOnly {
		b.WriteString(" ownerOnly")
	}
	if r.ReadOnly {
		b.WriteString(" readOnly")
	}
	if len(r.FromSource) > 0 {
		var src []string
		for _, s := range r.FromSource {
			switch {
			case s.Path != "":
				src = append(src, s.Path)
			case s.Recursive:
				src = append(src, s.Dir+" (recursive)")
			default:
				src = append(src, s.Dir)
			}
		}
		fmt.Fprintf(&b, " fromSource=%s", strings.Join(src, ","))
	}
	if r.Guard {
		b.WriteString(" (guards a fromSource program)")
	}
	if r.ResolvedFrom != "" {
		fmt.Fprintf(&b, " (alias: %s resolves to it)", r.ResolvedFrom)
	}
	return b.String()
}

// provenance is a rule's origin in one line: policy, field, severity, tags, message.
func (r *Rule) provenance() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Origin, r.Field)
	if r.Severity > 0 {
		fmt.Fprintf(&b, " severity=%d", r.Severity)
	}
	if len(r.Tags) > 0 {
		fmt.Fprintf(&b, " tags=%s", strings.Join(r.Tags, ","))
	}
	if r.Message != "" {
		fmt.Fprintf(&b, " message=%q", r.Message)
	}
	return b.String()
}

// Explanation is what `armorctl explain` shows: the container, its settings
// and its compiled rule set.
type Explanation struct {
	Pod        Pod        `json:"pod"`
	Container  string     `json:"container,omitempty"`
	Mode       Mode       `json:"mode"`
	Postures   Postures   `json:"postures"`
	Visibility Visibility `json:"visibility"`
	// Ignored are the pod's annotations not honoured (trust.go).
	Ignored []IgnoredAnnotation `json:"ignoredAnnotations,omitempty"`
	RuleSet *RuleSet            `json:"ruleSet"`
}

func (v Visibility) String() string {
	var out []string
	for _, c := range []struct {
		on   bool
		name string
	}{{v.Process, "process"}, {v.File, "file"}, {v.Network, "network"}, {v.Capabilities, "capabilities"}} {
		if c.on {
			out = append(out, c.name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}

// WriteText prints the explanation for people.
func (e *Explanation) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	rs := e.RuleSet
	labels := make([]string, 0, len(e.Pod.Labels))
	for k, v := range e.Pod.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	ew.printf("pod:        namespace=%s labels=%s container=%s\n", e.Pod.Namespace, strings.Join(labels, ","), e.Container)
	ew.printf("mode:       %s\n", e.Mode)
	ew.printf("visibility: %s\n", e.Visibility)
	ew.printf("policies:   %s\n", strings.Join(rs.Policies, " "))
	ew.printf("digest:     %s\n", rs.Digest)
	for _, a := range e.Ignored {
		ew.printf("ignored:    %s\n", a)
	}
	if rs.Empty() {
		ew.printf("\nno rules: nothing is enforced for this container\n")
		return ew.err
	}
	for _, c := range Classes {
		cr := rs.Class(c)
		if len(cr.Rules) == 0 && !cr.AllowList {
			continue
		}
		ew.printf("\n%s:", c)
		if cr.AllowList {
			ew.printf(" allow-list, anything else → %s (DefaultPosture)", cr.Posture)
		}
		ew.printf("\n")
		for _, r := range cr.Rules {
			ew.printf("  #%-4d %-5s %s\n        from %s\n", r.ID, r.Action, r.Describe(), r.provenance())
		}
	}
	return ew.err
}

// WriteText prints a verdict; its first word is the action.
func (d Decision) WriteText(w io.Writer, rs *RuleSet) error {
	ew := &errWriter{w: w}
	switch {
	case d.Rule != nil:
		ew.printf("%s by rule #%d: %s\n  from %s\n", d.Action, d.Rule.ID, d.Rule.Describe(), d.Rule.provenance())
	case d.DefaultPosture:
		ew.printf("%s by %s: the class is in allow-list mode and no rule matched\n", d.Action, PolicyNameDefaultPosture)
	default:
		ew.printf("%s: no rule matched\n", d.Action)
	}
	ew.printf("  rule set %s\n", rs.Digest)
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
