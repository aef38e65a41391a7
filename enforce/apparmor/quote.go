package apparmor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nri-armor/nri-armor/policy"
)

// All the text a profile takes from rules passes through this file: paths
// and program names are escaped, patterns translated, and both written
// between quotes. apparmor_parser reads a quoted path as one word, then
// converts it to a regular expression itself (parser_regex.c,
// convert_aaregex_to_pcre); a backslash escapes the next character there.
//
// Before anything is written, policy.RuleBreaker refuses what could end a
// rule or the quotes (',', '"', '#', control characters): the loader
// refuses such policies already, this is the second line.

// globChars are the characters that mean something to the parser's glob
// conversion; written with a backslash they are themselves. '@' is left
// alone: only "@{" starts a variable, and '{' is always escaped (or, before
// a group, '@' is written as the class "[@]").
const globChars = `\*?[]{}`

// literal writes b so that the parser reads exactly b.
func literal(w *strings.Builder, b byte) {
	if strings.IndexByte(globChars, b) >= 0 {
		w.WriteByte('\\')
	}
	w.WriteByte(b)
}

// escape is s with every glob character escaped.
func escape(s string) string {
	var w strings.Builder
	for i := 0; i < len(s); i++ {
		literal(&w, s[i])
	}
	return w.String()
}

// quoted is a path expression between quotes, for a rule.
func quoted(expr string) string { return `"` + expr + `"` }

// checkValue refuses what must never reach a profile, naming the rule.
func checkValue(r *policy.Rule, what, value string, pattern bool) error {
	if c, bad := policy.RuleBreaker(value, pattern); bad {
		return fmt.Errorf("%s %s: %s %q holds %q, which could end an AppArmor rule: refused", r.Origin, r.Field, what, value, string(rune(c)))
	}
	if strings.IndexByte(value, 0) >= 0 {
		return fmt.Errorf("%s %s: %s %q holds a NUL byte: refused", r.Origin, r.Field, what, value)
	}
	return nil
}

// Path expressions of the matchers. AppArmor names a directory with a
// trailing '/', so that a rule on a path covers both the file and the
// directory of that name, as the rule IR does (it names directories
// without the '/').

// exactExpr matches path as a file or a directory.
func exactExpr(path string) string { return beforeGroup(escape(path)) + "{,/}" }

// beforeGroup keeps an escaped text that a group follows from ending in
// '@': "@{" would start a variable.
func beforeGroup(s string) string {
	if strings.HasSuffix(s, "@") {
		return s[:len(s)-1] + "[@]"
	}
	return s
}

// dirExpr matches a directory rule's directory (dir ends in '/'): itself
// — by its name with or without the '/', as the rule IR matches it — and
// its direct children (files, or directories named with their '/'), or
// with recursive its whole subtree.
func dirExpr(dir string, recursive bool) string {
	if dir == "/" {
		if recursive {
			return "/{,**}"
		}
		return "/{,*,*/}"
	}
	base := beforeGroup(escape(strings.TrimSuffix(dir, "/")))
	if recursive {
		return base + "{,/**}"
	}
	return base + "{,/,/*,/*/}"
}

// execNameExpr matches every path whose file name is name.
func execNameExpr(name string) string { return "/{,**/}" + escape(name) }

// A pattern (matchPatterns) is an AppArmor-style glob in the rule IR too,
// but the two differ in ways that matter:
//
//   - the parser makes '*' and '**' right after a '/' and before a '/' or
//     the end match at least one character ("/etc/*" does not match
//     "/etc/"); the IR's may match none;
//   - AppArmor names a directory with a trailing '/';
//   - the parser's negated class "[^a]" matches '/', the IR's does not;
//   - "{a}" (one alternative) is an error to the parser;
//   - only absolute paths are named.
//
// So a pattern is parsed here into its parts and written again: classes as
// the exact set of bytes the IR's class matches, groups of one alternative
// flattened. The result A matches a file's path p exactly when the IR's
// glob does, and the rule is also written as A followed by '/' for
// directories (A alone when it ends in "**", which covers them), and as
// "/" when the glob matches the root. That holds (see docs/apparmor.md)
// when every '/' of the pattern is a literal outside groups and classes,
// and the part after the last '/' cannot match the empty string unless it
// is a lone '*' or '**' — the at-least-one rule above then keeps a file's
// rule off its parent directory. Other patterns are reported unenforced.

type gkind uint8

const (
	gLit gkind = iota
	gStar
	gDStar
	gQmark
	gClass
	gGroup
)

type gnode struct {
	kind gkind
	b    byte       // gLit
	set  *[256]bool // gClass: the bytes it matches
	alts [][]gnode  // gGroup
}

// parseGlob splits an IR pattern into parts, as policy.CompileGlob reads
// it; class members are asked of CompileGlob itself.
func parseGlob(p string) ([]gnode, error) {
	seq, rest, err := parseSeq(p, 0)
	if err != nil {
		return nil, err
	}
	if rest != len(p) {
		return nil, fmt.Errorf("unmatched '}' at offset %d", rest)
	}
	return seq, nil
}

// parseSeq reads parts from p[i:] up to the end, or (depth > 0) a ',' or
// '}' of the enclosing group, which it does not consume.
func parseSeq(p string, depth int) ([]gnode, int, error) {
	var seq []gnode
	i := 0
	for i < len(p) {
		c := p[i]
		switch c {
		case '\\':
			if i+1 >= len(p) {
				return nil, 0, fmt.Errorf("unfinished escape")
			}
			seq = append(seq, gnode{kind: gLit, b: p[i+1]})
			i += 2
		case '*':
			j := i
			for j < len(p) && p[j] == '*' {
				j++
			}
			if j-i > 1 {
				seq = append(seq, gnode{kind: gDStar})
			} else {
				seq = append(seq, gnode{kind: gStar})
			}
			i = j
		case '?':
			seq = append(seq, gnode{kind: gQmark})
			i++
		case '[':
			end := classEndOf(p, i)
			if end < 0 {
				return nil, 0, fmt.Errorf("unclosed '['")
			}
			g, err := policy.CompileGlob(p[i : end+1])
			if err != nil {
				return nil, 0, err
			}
			set := new([256]bool)
			for b := 1; b < 256; b++ {
				set[b] = g.Match(string([]byte{byte(b)}))
			}
			seq = append(seq, gnode{kind: gClass, set: set})
			i = end + 1
		case '{':
			n := gnode{kind: gGroup}
			i++
			for {
				alt, used, err := parseSeq(p[i:], depth+1)
				if err != nil {
					return nil, 0, err
				}
				n.alts = append(n.alts, alt)
				i += used
				if i >= len(p) {
					return nil, 0, fmt.Errorf("unclosed '{'")
				}
				if p[i] == '}' {
					i++
					break
				}
				i++ // ','
			}
			seq = append(seq, n)
		case ',', '}':
			if depth > 0 {
				return seq, i, nil
			}
			if c == '}' {
				return seq, i, nil
			}
			seq = append(seq, gnode{kind: gLit, b: c})
			i++
		default:
			seq = append(seq, gnode{kind: gLit, b: c})
			i++
		}
	}
	return seq, i, nil
}

// classEndOf is the index of the ']' closing the class at p[open], as
// CompileGlob finds it, or -1.
func classEndOf(p string, open int) int {
	end := strings.IndexByte(p[open+1:], ']')
	if end == 0 {
		e2 := strings.IndexByte(p[open+2:], ']')
		if e2 < 0 {
			return -1
		}
		end = e2 + 1
	}
	if end < 0 {
		return -1
	}
	return open + 1 + end
}

// simplify flattens groups of one alternative into their sequence and
// merges runs of stars (the IR's "*" "*" is "*"; with "**", "**").
func simplify(seq []gnode) []gnode {
	var out []gnode
	push := func(n gnode) {
		if k := len(out); k > 0 && (n.kind == gStar || n.kind == gDStar) && (out[k-1].kind == gStar || out[k-1].kind == gDStar) {
			if n.kind == gDStar {
				out[k-1].kind = gDStar
			}
			return
		}
		out = append(out, n)
	}
	for _, n := range seq {
		if n.kind != gGroup {
			push(n)
			continue
		}
		for i := range n.alts {
			n.alts[i] = simplify(n.alts[i])
		}
		if len(n.alts) == 1 {
			for _, m := range n.alts[0] {
				push(m)
			}
			continue
		}
		push(n)
	}
	return out
}

func nullable(seq []gnode) bool {
	for _, n := range seq {
		switch n.kind {
		case gStar, gDStar:
		case gGroup:
			ok := false
			for _, a := range n.alts {
				ok = ok || nullable(a)
			}
			if !ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// slashInside reports a '/' that a group or a class of seq can match.
func slashInside(seq []gnode, inGroup bool) bool {
	for _, n := range seq {
		switch n.kind {
		case gLit:
			if inGroup && n.b == '/' {
				return true
			}
		case gClass:
			if n.set['/'] {
				return true
			}
		case gGroup:
			for _, a := range n.alts {
				if slashInside(a, true) {
					return true
				}
			}
		}
	}
	return false
}

// patternExprs translates an IR pattern into the path expressions of its
// rules (dirs: with their directory forms). None, and no error, when the
// pattern matches no absolute path; an error says why a pattern cannot be
// written faithfully.
func patternExprs(pattern string, dirs bool) ([]string, error) {
	g, err := policy.CompileGlob(pattern)
	if err != nil {
		return nil, err
	}
	seq, err := parseGlob(pattern)
	if err != nil {
		return nil, err
	}
	seq = simplify(seq)
	var out []string
	if dirs && g.Match("/") {
		out = append(out, "/")
	}
	if len(seq) == 0 {
		return out, nil
	}
	// emit is what is written after prefix; seq, what is checked.
	prefix, emit := "", seq
	switch first := seq[0]; {
	case first.kind == gLit && first.b == '/':
	case first.kind == gDStar:
		// "**" then the rest: an absolute path is "/…" then the rest, or,
		// when the rest starts with '/', the rest itself (a quoted path
		// must start with '/': "/{,**/}" and the rest after its '/').
		rest := seq[1:]
		if len(rest) > 0 && rest[0].kind == gLit && rest[0].b == '/' {
			prefix, seq, emit = "/{,**/}", rest, rest[1:]
		} else {
			seq = append([]gnode{{kind: gLit, b: '/'}, {kind: gDStar}}, rest...)
			emit = seq
		}
	case first.kind == gLit, first.kind == gStar, first.kind == gQmark, first.kind == gClass && !first.set['/']:
		return out, nil // starts with something other than '/': matches no absolute path
	default:
		return nil, fmt.Errorf("the pattern does not start with '/' or '**'")
	}
	for i := 1; i < len(seq); i++ {
		if seq[i-1].kind == gLit && seq[i-1].b == '/' && seq[i].kind == gLit && seq[i].b == '/' {
			// Only a path with "//" matches, and the kernel names none so
			// (the parser would fold the two into one).
			return out, nil
		}
	}
	if slashInside(seq, false) {
		return nil, fmt.Errorf("a '/' inside a {…} group or a [...] class: AppArmor and nri-armor's globs would differ on directories")
	}
	last := -1
	for i, n := range seq {
		if n.kind == gLit && n.b == '/' {
			last = i
		}
	}
	suffix := seq[last+1:]
	if len(suffix) == 0 {
		return out, nil // ends in '/': no path the kernel names ends so, but the root
	}
	lone := len(suffix) == 1 && (suffix[0].kind == gStar || suffix[0].kind == gDStar)
	if dirs && !lone && nullable(suffix) {
		return nil, fmt.Errorf("its last path component may be empty: AppArmor would apply it to the directory above")
	}
	var w strings.Builder
	w.WriteString(prefix)
	if err := writeSeq(&w, emit); err != nil {
		return nil, err
	}
	a := w.String()
	out = append(out, a)
	if dirs && seq[len(seq)-1].kind != gDStar {
		out = append(out, a+"/")
	}
	return out, nil
}

func writeSeq(w *strings.Builder, seq []gnode) error {
	for i, n := range seq {
		switch n.kind {
		case gLit:
			if n.b == '@' && i+1 < len(seq) && (seq[i+1].kind == gGroup || seq[i+1].kind == gClass) {
				w.WriteString("[@]") // "@{" would start a variable
				continue
			}
			literal(w, n.b)
		case gStar:
			w.WriteString("*")
		case gDStar:
			w.WriteString("**")
		case gQmark:
			w.WriteString("?")
		case gClass:
			if err := writeClass(w, n.set); err != nil {
				return err
			}
		case gGroup:
			w.WriteString("{")
			for j, a := range n.alts {
				if j > 0 {
					w.WriteString(",")
				}
				if err := writeSeq(w, a); err != nil {
					return err
				}
			}
			w.WriteString("}")
		}
	}
	return nil
}

// writeClass writes the bytes of set (never '/'): a few as a group of
// escaped literals, many as the negated class of the others (and '/').
func writeClass(w *strings.Builder, set *[256]bool) error {
	var in, out []byte
	for b := 1; b < 256; b++ {
		switch {
		case set[b]:
			in = append(in, byte(b))
		case b != '/':
			out = append(out, byte(b))
		}
	}
	if len(in) == 1 {
		literal(w, in[0])
		return nil
	}
	if len(in) <= 128 {
		w.WriteString("{")
		for i, b := range in {
			if i > 0 {
				w.WriteString(",")
			}
			if _, bad := policy.RuleBreaker(string([]byte{b}), false); bad {
				return fmt.Errorf("a [...] class holds %q", string(rune(b)))
			}
			literal(w, b)
		}
		w.WriteString("}")
		return nil
	}
	// [^...]: '-' first (elsewhere it makes a range); ']' '[' '*' '?' '\'
	// escaped; everything else as itself.
	sort.Slice(out, func(i, j int) bool { return out[i] == '-' && out[j] != '-' })
	w.WriteString("[^")
	for _, b := range out {
		if _, bad := policy.RuleBreaker(string([]byte{b}), false); bad {
			return fmt.Errorf("a negated [...] class leaves out %q", string(rune(b)))
		}
		if strings.IndexByte(`][*?\`, b) >= 0 {
			w.WriteByte('\\')
		}
		w.WriteByte(b)
	}
	w.WriteString("/]")
	return nil
}
