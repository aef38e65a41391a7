package apparmor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/policy"
)

// Profile is the AppArmor profile of one container identity.
type Profile struct {
	// Name is the profile's name (ProfileName), as the pod's
	// securityContext names it (localhostProfile).
	Name string `json:"name"`
	// Text is the profile, for apparmor_parser.
	Text string `json:"text"`
	// Unenforced are the rules the profile does not enforce, or enforces
	// only in part, and why: armor-tracer (or BPF-LSM, where both run)
	// covers them.
	Unenforced []enforce.Unenforced `json:"-"`
	// Unlogged are the classes in allow-list mode whose posture is Audit:
	// the profile allows what no rule matches, as the posture does, but
	// does not log it (AppArmor could only by logging every allowed
	// operation of the class); armor-tracer reports those.
	Unlogged []policy.Class `json:"unlogged,omitempty"`
}

// RawRules is one policy's raw AppArmor rules (spec.apparmor), placed in
// the profile's body as they are.
type RawRules struct {
	Origin string            // Kind/namespace/name of the policy
	Source policy.TextSource // where the text is, for errors
	Text   string
}

// RawRulesOf collects the raw AppArmor rules of policies (those that apply
// to the container), in the order given.
func RawRulesOf(policies []*policy.Policy) []RawRules {
	var out []RawRules
	for _, p := range policies {
		if p.Spec.AppArmor != "" {
			out = append(out, RawRules{Origin: p.Ref(), Source: p.AppArmorSource, Text: p.Spec.AppArmor})
		}
	}
	return out
}

// Reasons a rule is not enforced, or only in part, by the profile.
const (
	reasonSourceBlock = "AppArmor cannot tell which program acts (fromSource): exec transitions, the only way to, are refused under no_new_privs; not applied, armor-tracer reports what it would block or audit"
	reasonSourceAllow = "AppArmor cannot tell which program acts (fromSource): exec transitions, the only way to, are refused under no_new_privs; not applied, so the program is held to the other rules and the posture (stricter)"
	reasonSyscalls    = "syscall rules are enforced by seccomp, not AppArmor"
	reasonPattern     = "pattern not written into the profile: %v"
	// A script's interpreter (#!) is opened and mapped by the kernel as
	// part of the script's execve, which AppArmor checks once, for the
	// script (bprm_creds_for_exec): BPF-LSM's bprm_check_security sees the
	// interpreter too.
	//
	// And the program the runtime itself executes (the container's
	// command, each exec's) enters the profile by change_onexec: AppArmor
	// checks that exec under the runtime's profile, not the container's.
	reasonInterpreterBlock = "AppArmor checks the program execve names, under the caller's profile: this program run as a script's interpreter (#!), or run by the runtime itself (the container's command, crictl/kubectl exec), is not refused"
	reasonInterpreterAudit = "AppArmor checks the program execve names, under the caller's profile: this program run as a script's interpreter (#!), or by the runtime itself, is not logged"
)

type line struct {
	text string
	id   int // the rule it comes from, 0 for none
}

type compiler struct {
	name  string
	rs    *policy.RuleSet
	lines []line
	un    []enforce.Unenforced
	// unenforced marks rules already reported, by ID.
	unenforced map[int]bool
}

func (c *compiler) add(id int, format string, args ...any) {
	c.lines = append(c.lines, line{text: fmt.Sprintf(format, args...), id: id})
}

func (c *compiler) comment(text string) { c.add(0, "# %s", commentText(text)) }

func (c *compiler) unenforce(r *policy.Rule, reason string, partial bool) {
	if c.unenforced[r.ID] {
		return
	}
	c.unenforced[r.ID] = true
	c.un = append(c.un, enforce.Unenforced{Rule: r, Reason: reason, Partial: partial})
}

// Compile writes the AppArmor profile name of rule set rs, with the raw
// AppArmor rules of the policies that apply (RawRulesOf). It is a pure
// function of its arguments: the same set gives the same text.
//
// The profile keeps what the runtime's default profile keeps a container
// from (signals from outside but the runtime's, writes to /proc and /sys
// outside its own, mount), then states the rules: per class allow-all
// (`file,`, `network,`, `capability,`) unless the class is in allow-list
// mode with a Block posture, where only what its Allow and Audit rules
// name is allowed; Block rules as `audit deny`, Audit rules as `audit`.
// docs/apparmor.md has the mapping, rule by rule, and what the profile
// cannot express; those rules are in Profile.Unenforced.
//
// An error means a rule holds text that must not reach a profile (the
// loader refuses such policies first) or the name is not one ProfileName
// makes.
func Compile(name string, rs *policy.RuleSet, raw []RawRules) (Profile, error) {
	if err := checkName(name); err != nil {
		return Profile{}, err
	}
	if rs == nil {
		rs = &policy.RuleSet{}
	}
	c := &compiler{name: name, rs: rs, unenforced: map[int]bool{}}
	c.base()
	if err := c.files(); err != nil {
		return Profile{}, err
	}
	c.network()
	c.capabilities()
	for _, r := range rs.Syscalls.Rules {
		c.unenforce(r, reasonSyscalls, false)
	}
	if err := c.raw(raw); err != nil {
		return Profile{}, err
	}
	p := Profile{Name: name, Text: c.text(), Unenforced: c.un}
	for _, cl := range []policy.Class{policy.ClassProcess, policy.ClassFile, policy.ClassNetwork, policy.ClassCapabilities} {
		if cr := rs.Class(cl); cr.AllowList && cr.Posture != policy.Block {
			p.Unlogged = append(p.Unlogged, cl)
		}
	}
	sort.SliceStable(p.Unenforced, func(i, j int) bool { return p.Unenforced[i].Rule.ID < p.Unenforced[j].Rule.ID })
	return p, nil
}

func (c *compiler) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# AppArmor profile written by nri-armor (enforce/apparmor) for rule set %s.\n", commentText(c.rs.Digest))
	fmt.Fprintf(&b, "# Each rule's line names its rule id (armorctl explain shows the rules).\n")
	fmt.Fprintf(&b, "profile %s flags=(attach_disconnected,mediate_deleted) {\n", quoted(c.name))
	for _, l := range c.lines {
		b.WriteString("  ")
		b.WriteString(l.text)
		if l.id > 0 {
			fmt.Fprintf(&b, "  # rule %d", l.id)
		}
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// allowAll says whether a class allows what no rule matches: everything
// but allow-list mode with a Block posture.
func allowAll(cr *policy.ClassRules) bool { return !cr.AllowList || cr.Posture != policy.Block }

// Access kinds of the file and process classes, and their permissions:
// those the rule IR decides (read: r; write: w, and l for a new link
// name), those it leaves free where access is allowed (m: mapping a
// readable file executable, k: locking), and execution (x).
type access struct {
	mediated, extra string
}

var (
	readAccess  = access{mediated: "r", extra: "mk"}
	writeAccess = access{mediated: "wl", extra: "k"}
	execAccess  = access{mediated: "x"}
)

// files writes the process and file classes: both are file rules to
// AppArmor (x for the process class, the rest for the file class).
func (c *compiler) files() error {
	proc, file := &c.rs.Process, &c.rs.File
	c.comment("process and file rules")
	switch pa, fa := allowAll(proc), allowAll(file); {
	case pa && fa:
		c.add(0, "file,")
	case fa:
		c.add(0, `"/{,**}" rwlkm,  # process: allow-list, Block posture`)
	case pa:
		c.add(0, `"/{,**}" ix,  # file: allow-list, Block posture`)
	}
	for _, cl := range []*policy.ClassRules{proc, file} {
		for _, r := range cl.Rules {
			if err := c.fileRule(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// cells says, per access, to whom rule r applies (policy.Rule.Applies):
// "" everyone, "owner", "other", or "-" nobody.
func cells(r *policy.Rule, write bool) string {
	applies := func(owner bool) bool {
		permitted := (!r.OwnerOnly || owner) && (!r.ReadOnly || !write)
		if r.Action == policy.Allow {
			return permitted
		}
		return !(r.OwnerOnly || r.ReadOnly) || !permitted
	}
	switch o, x := applies(true), applies(false); {
	case o && x:
		return ""
	case o:
		return "owner"
	case x:
		return "other"
	}
	return "-"
}

// sourced reports a rule with fromSource, which no profile rule can
// express, as unenforced.
func (c *compiler) sourced(r *policy.Rule) bool {
	if len(r.FromSource) == 0 {
		return false
	}
	if r.Action == policy.Block {
		c.unenforce(r, reasonSourceBlock, false)
	} else {
		c.unenforce(r, reasonSourceAllow, false)
	}
	return true
}

func (c *compiler) fileRule(r *policy.Rule) error {
	if c.sourced(r) {
		return nil
	}
	m := r.Match
	var exprs []string
	switch m.Type {
	case policy.MatchPath:
		if err := checkValue(r, "path", m.Value, false); err != nil {
			return err
		}
		if !strings.HasPrefix(m.Value, "/") || strings.HasSuffix(m.Value, "/") || strings.Contains(m.Value, "//") {
			return fmt.Errorf("%s %s: path %q: must be absolute, without '//', and not end in '/'", r.Origin, r.Field, m.Value)
		}
		exprs = []string{exactExpr(m.Value)}
	case policy.MatchDir:
		if err := checkValue(r, "directory", m.Value, false); err != nil {
			return err
		}
		if !strings.HasPrefix(m.Value, "/") || !strings.HasSuffix(m.Value, "/") || strings.Contains(m.Value, "//") {
			return fmt.Errorf("%s %s: directory %q: must be absolute, without '//', and end in '/'", r.Origin, r.Field, m.Value)
		}
		exprs = []string{dirExpr(m.Value, m.Recursive)}
	case policy.MatchExecName:
		if err := checkValue(r, "program name", m.Value, false); err != nil {
			return err
		}
		if m.Value == "" || strings.Contains(m.Value, "/") {
			return fmt.Errorf("%s %s: program name %q: must be a file name", r.Origin, r.Field, m.Value)
		}
		exprs = []string{execNameExpr(m.Value)}
	case policy.MatchPattern:
		if err := checkValue(r, "pattern", m.Value, true); err != nil {
			return err
		}
		if _, err := policy.CompileGlob(m.Value); err != nil {
			return fmt.Errorf("%s %s: pattern %q: %v", r.Origin, r.Field, m.Value, err)
		}
		var err error
		if exprs, err = patternExprs(m.Value, r.Class == policy.ClassFile); err != nil {
			c.unenforce(r, fmt.Sprintf(reasonPattern, err), false)
			return nil
		}
	default:
		return fmt.Errorf("%s %s: %s rule in the %s class", r.Origin, r.Field, m.Type, r.Class)
	}
	accesses := []access{readAccess, writeAccess}
	if r.Class == policy.ClassProcess {
		accesses = []access{execAccess}
	}
	// Who each access applies to, merged by qualifier.
	type perms struct{ mediated, extra string }
	byQual := map[string]*perms{}
	var quals []string
	for i, a := range accesses {
		q := cells(r, i == 1)
		if q == "-" {
			continue
		}
		if byQual[q] == nil {
			byQual[q] = &perms{}
			quals = append(quals, q)
		}
		byQual[q].mediated += a.mediated
		byQual[q].extra += a.extra
	}
	switch {
	case r.Class == policy.ClassProcess && r.Action == policy.Block:
		c.unenforce(r, reasonInterpreterBlock, true)
	case r.Class == policy.ClassProcess && r.Action == policy.Audit:
		c.unenforce(r, reasonInterpreterAudit, true)
	}
	for _, q := range quals {
		p := byQual[q]
		qual := ""
		if q != "" {
			qual = q + " "
		}
		for _, e := range exprs {
			path := quoted(e)
			switch {
			case r.Class == policy.ClassProcess && r.Action == policy.Block:
				// m too: a program run by mapping it (ld.so PROGRAM), as
				// BPF-LSM's mmap_file hook refuses.
				c.add(r.ID, "audit deny %s%s mx,", qual, path)
			case r.Class == policy.ClassProcess && r.Action == policy.Audit:
				c.add(r.ID, "audit %s%s ix,", qual, path)
			case r.Class == policy.ClassProcess:
				c.add(r.ID, "%s%s ix,", qual, path)
			case r.Action == policy.Block:
				c.add(r.ID, "audit deny %s%s %s,", qual, path, p.mediated)
			case r.Action == policy.Audit:
				c.add(r.ID, "audit %s%s %s,", qual, path, p.mediated)
				if p.extra != "" {
					c.add(r.ID, "%s%s %s,", qual, path, dedupe(p.extra))
				}
			default:
				c.add(r.ID, "%s%s %s,", qual, path, dedupe(p.mediated+p.extra))
			}
		}
	}
	return nil
}

// dedupe drops repeated permission letters ("mkk" → "mk").
func dedupe(perms string) string {
	var b strings.Builder
	for i := 0; i < len(perms); i++ {
		if !strings.ContainsRune(b.String(), rune(perms[i])) {
			b.WriteByte(perms[i])
		}
	}
	return b.String()
}

// checkName accepts the names ProfileName makes, and others of the same
// alphabet: letters, digits, '.', '_', '-'.
func checkName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("apparmor: profile name %q: must be 1 to 255 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("apparmor: profile name %q: only letters, digits, '.', '_' and '-'", name)
		}
	}
	return nil
}

// commentText keeps a comment on its line: printable ASCII only.
func commentText(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// raw places the policies' raw AppArmor rules, each under a comment that
// names its policy, after checking again that nothing in them can leave
// the profile's body.
func (c *compiler) raw(raw []RawRules) error {
	for _, rr := range raw {
		if n, problem := policy.CheckAppArmorText(rr.Text); problem != "" {
			return fmt.Errorf("%s:%d: spec.apparmor of %s: line %d of the AppArmor rules: %s", rr.Source.File, rr.Source.LineOf(n), rr.Origin, n, problem)
		}
		c.comment(fmt.Sprintf("spec.apparmor of %s (%s:%d)", rr.Origin, rr.Source.File, rr.Source.Line))
		for _, l := range strings.Split(strings.TrimRight(rr.Text, "\n"), "\n") {
			c.add(0, "%s", l)
		}
	}
	return nil
}
