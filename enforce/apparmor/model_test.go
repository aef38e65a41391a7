package apparmor

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/policy"
)

// A model of what the kernel decides with a profile, for the subset of
// the profile language the compiler writes: file rules (quoted paths,
// audit/deny/owner/other, permissions), network and capability rules. It
// reads the profile's text, not the compiler's data, so the differential
// tests check what the kernel would get. Globs are converted as the
// parser converts them (aaToPCRE, checked against apparmor_parser's own
// conversion of every glob the tests write: checkParsed).

// aaToPCRE converts an AppArmor glob as apparmor_parser 3.0 does
// (parser_regex.c, convert_aaregex_to_pcre, glob_default), for the
// escapes the compiler writes.
func aaToPCRE(aare string) (string, error) {
	var out strings.Builder
	last := func() byte {
		s := out.String()
		if s == "" {
			return 0
		}
		return s[len(s)-1]
	}
	escape, inClass, group := false, false, 0
	for i := 0; i < len(aare); i++ {
		c := aare[i]
		switch c {
		case '\\':
			if escape {
				out.WriteString(`\\`)
			} else {
				escape = true
				continue
			}
		case '*':
			if escape {
				out.WriteString(`\*`)
				break
			}
			if last() == '/' {
				j := i
				for j < len(aare) && aare[j] == '*' {
					j++
				}
				if j == len(aare) || aare[j] == '/' {
					out.WriteString(`[^/\x00]`)
				}
			}
			if i+1 < len(aare) && aare[i+1] == '*' {
				out.WriteString(`[^\x00]*`)
				i++
			} else {
				out.WriteString(`[^/\x00]*`)
			}
		case '?':
			if escape {
				out.WriteByte('?')
			} else {
				out.WriteString(`[^/\x00]`)
			}
		case '[':
			if escape {
				out.WriteString(`\[`)
			} else {
				inClass = true
				out.WriteByte('[')
			}
		case ']':
			if escape {
				out.WriteString(`\]`)
			} else {
				if !inClass {
					return "", fmt.Errorf("']' outside a class")
				}
				inClass = false
				out.WriteByte(']')
			}
		case '{':
			switch {
			case escape:
				out.WriteString(`\{`)
			case inClass:
				out.WriteByte('{')
			default:
				group++
				out.WriteByte('(')
			}
		case '}':
			switch {
			case escape:
				out.WriteString(`\}`)
			case inClass:
				out.WriteByte('}')
			default:
				group--
				out.WriteByte(')')
			}
		case ',':
			switch {
			case escape && inClass:
				out.WriteString(`\,`)
			case !escape && group > 0 && !inClass:
				out.WriteByte('|')
			default:
				out.WriteByte(',')
			}
		case '^', '$':
			if inClass {
				out.WriteByte(c)
			} else {
				out.WriteByte('\\')
				out.WriteByte(c)
			}
		case '.', '+', '|', '(', ')':
			out.WriteByte('\\')
			out.WriteByte(c)
		default:
			out.WriteByte(c) // an escaped ordinary character is itself (the parser warns)
		}
		escape = false
	}
	if group != 0 || inClass || escape {
		return "", fmt.Errorf("unbalanced glob %q", aare)
	}
	return out.String(), nil
}

// aaGlob compiles an AppArmor glob into a matcher over bytes.
func aaGlob(aare string) (*regexp.Regexp, error) {
	pcre, err := aaToPCRE(aare)
	if err != nil {
		return nil, err
	}
	// Bytes as runes (Latin-1), on both sides: the kernel's DFA reads bytes.
	return regexp.Compile(`^(?:` + latin1(goRegexp(pcre)) + `)$`)
}

// goRegexp is the parser's expression in Go's syntax: the parser's
// engine reads a '?' as itself, not as a quantifier (its DFA has a
// transition on 0x3f: apparmor_parser -D dfa-states).
func goRegexp(pcre string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(pcre); i++ {
		c := pcre[i]
		switch {
		case c == '\\' && i+1 < len(pcre):
			b.WriteByte(c)
			i++
			c = pcre[i]
		case c == '[':
			inClass = true
		case c == ']':
			inClass = false
		case c == '?' && !inClass:
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

func latin1(s string) string {
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

type aaFileRule struct {
	audit, deny bool
	qual        string
	glob        string
	re          *regexp.Regexp
	perms       string
	id          int
}

type aaNetRule struct {
	audit, deny  bool
	family, kind string
	id           int
}

type aaCapRule struct {
	audit, deny bool
	name        string // "" for all
	id          int
}

type aaModel struct {
	files []aaFileRule
	nets  []aaNetRule
	caps  []aaCapRule
}

var ruleIDRe = regexp.MustCompile(`\s+# rule (\d+)$`)

// parseModel reads the body of the one profile in text.
func parseModel(t testing.TB, text string) *aaModel {
	t.Helper()
	m := &aaModel{}
	body := false
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "profile "):
			body = true
			continue
		case l == "}" || !body || l == "" || strings.HasPrefix(l, "#"):
			continue
		}
		id := 0
		if mm := ruleIDRe.FindStringSubmatch(l); mm != nil {
			id, _ = strconv.Atoi(mm[1])
			l = l[:len(l)-len(mm[0])]
		} else if i := strings.Index(l, "  #"); i >= 0 {
			l = l[:i]
		}
		for _, st := range splitStatements(l) {
			if err := m.add(st, id); err != nil {
				t.Fatalf("model: %q: %v", st, err)
			}
		}
	}
	return m
}

// splitStatements splits a line at the commas outside quotes and
// parentheses.
func splitStatements(l string) []string {
	var out []string
	quote, paren, start := false, 0, 0
	for i := 0; i < len(l); i++ {
		switch l[i] {
		case '"':
			quote = !quote
		case '(':
			paren++
		case ')':
			paren--
		case ',':
			if !quote && paren == 0 {
				if s := strings.TrimSpace(l[start:i]); s != "" {
					out = append(out, s)
				}
				start = i + 1
			}
		}
	}
	return out
}

func (m *aaModel) add(st string, id int) error {
	var audit, deny bool
	qual := ""
	for {
		w, rest, _ := strings.Cut(st, " ")
		switch w {
		case "audit":
			audit = true
		case "deny":
			deny = true
		case "owner", "other":
			qual = w
		default:
			goto rule
		}
		st = rest
	}
rule:
	switch {
	case st == "file":
		re, err := aaGlob("/{**,}") // what the parser makes of `file,`
		if err != nil {
			return err
		}
		m.files = append(m.files, aaFileRule{audit: audit, deny: deny, qual: qual, glob: "/{**,}", re: re, perms: "rwlkmx", id: id})
	case strings.HasPrefix(st, `"`):
		end := strings.IndexByte(st[1:], '"')
		if end < 0 {
			return fmt.Errorf("unclosed quote")
		}
		glob, perms := st[1:end+1], strings.TrimSpace(st[end+2:])
		re, err := aaGlob(glob)
		if err != nil {
			return err
		}
		m.files = append(m.files, aaFileRule{audit: audit, deny: deny, qual: qual, glob: glob, re: re, perms: perms, id: id})
	case st == "network" || strings.HasPrefix(st, "network "):
		f := strings.Fields(st)[1:]
		r := aaNetRule{audit: audit, deny: deny, id: id}
		if len(f) > 0 {
			r.family = f[0]
		}
		if len(f) > 1 {
			r.kind = f[1]
		}
		m.nets = append(m.nets, r)
	case st == "capability" || strings.HasPrefix(st, "capability "):
		m.caps = append(m.caps, aaCapRule{audit: audit, deny: deny, name: strings.TrimSpace(strings.TrimPrefix(st, "capability")), id: id})
	case strings.HasPrefix(st, "signal"), strings.HasPrefix(st, "ptrace"), st == "umount", st == "mount":
	default:
		return fmt.Errorf("not in the model")
	}
	return nil
}

// verdict is what the kernel does: Block (denied: explicitly, or not
// allowed), Audit (allowed, logged), Allow; ids are the rules of the
// lines that matched.
type verdict struct {
	action policy.Action
	ids    []int
}

func decideModel(req string, matches func(yield func(audit, deny bool, perms string, id int))) verdict {
	allowed, denied, audited := "", "", ""
	var ids []int
	matches(func(audit, deny bool, perms string, id int) {
		if id > 0 {
			ids = append(ids, id)
		}
		switch {
		case deny:
			denied += perms
		default:
			allowed += perms
			if audit {
				audited += perms
			}
		}
	})
	v := verdict{action: policy.Allow, ids: ids}
	for _, q := range req {
		switch {
		case strings.ContainsRune(denied, q) || !strings.ContainsRune(allowed, q):
			v.action = policy.Block
			return v
		case strings.ContainsRune(audited, q):
			v.action = policy.Audit
		}
	}
	return v
}

// file decides access req ("r", "w", "x") to the path AppArmor names
// (a directory's with its trailing '/') by the file's owner or another.
func (m *aaModel) file(name string, owner bool, req string) verdict {
	return decideModel(req, func(yield func(bool, bool, string, int)) {
		for _, r := range m.files {
			if (r.qual == "owner" && !owner) || (r.qual == "other" && owner) || !r.re.MatchString(latin1(name)) {
				continue
			}
			yield(r.audit, r.deny, r.perms, r.id)
		}
	})
}

// socket decides creating a socket of family and AppArmor type kind.
func (m *aaModel) socket(family, kind string) verdict {
	return decideModel("c", func(yield func(bool, bool, string, int)) {
		for _, r := range m.nets {
			if (r.family == "" || r.family == family) && (r.kind == "" || r.kind == kind) {
				yield(r.audit, r.deny, "c", r.id)
			}
		}
	})
}

func (m *aaModel) capable(name string) verdict {
	return decideModel("c", func(yield func(bool, bool, string, int)) {
		for _, r := range m.caps {
			if r.name == "" || r.name == name {
				yield(r.audit, r.deny, "c", r.id)
			}
		}
	})
}
