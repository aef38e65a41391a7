package policy

import (
	"fmt"
	"strings"
	"sync"
)

// Rule text that reaches an AppArmor profile. The AppArmor backend
// (enforce/apparmor) writes every path, directory, pattern and program
// name of a rule into a profile, quoted, and places a policy's raw
// AppArmor rules (spec.apparmor) inside the profile's body. Both are
// checked here, when a policy is loaded, so that `armorctl validate` and
// the daemon refuse what could change the profile's structure, with the
// file, line and field; the backend checks again before it writes.

// RuleBreaker returns the first character of value that could end an
// AppArmor rule or its quoted path, and whether there is one: a comma,
// '"', '#', a line break or another control character. Left in, a path
// such as `/etc/x r, /** rwlkm,` would become two rules, the second an
// allow-all. In a pattern (matchPatterns) commas separate the
// alternatives of {a,b} and are refused only outside braces (escaped, in
// a [...] class, or at the top level).
func RuleBreaker(value string, pattern bool) (byte, bool) {
	depth := 0
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c < 0x20 || c == 0x7f || c == '"' || c == '#' {
			return c, true
		}
		if !pattern {
			if c == ',' {
				return c, true
			}
			continue
		}
		switch c {
		case '\\':
			if i+1 < len(value) {
				i++
				if b := value[i]; b == ',' || b < 0x20 || b == 0x7f || b == '"' || b == '#' {
					return b, true
				}
			}
		case '[':
			end := classEnd(value, i)
			if end < 0 {
				continue // CompileGlob reports the unclosed class
			}
			if j := strings.IndexByte(value[i:end], ','); j >= 0 {
				return ',', true
			}
			for _, b := range []byte(value[i:end]) {
				if b < 0x20 || b == 0x7f || b == '"' || b == '#' {
					return b, true
				}
			}
			i = end
		case '{':
			depth++
		case '}':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				return c, true
			}
		}
	}
	return 0, false
}

// classEnd returns the index of the ']' that closes the class opened at
// pattern[open], as CompileGlob finds it (a ']' right after '[' is a
// member), or -1.
func classEnd(pattern string, open int) int {
	end := strings.IndexByte(pattern[open+1:], ']')
	if end == 0 {
		if e2 := strings.IndexByte(pattern[open+2:], ']'); e2 >= 0 {
			end = e2 + 1
		} else {
			end = -1
		}
	}
	if end < 0 {
		return -1
	}
	return open + 1 + end
}

// ruleBreakerMessage says what is wrong with a value RuleBreaker refused.
func ruleBreakerMessage(c byte) string {
	what := fmt.Sprintf("%q", string(rune(c)))
	if c < 0x20 || c == 0x7f {
		what = fmt.Sprintf("the control character %#02x", c)
	}
	return fmt.Sprintf("must not contain %s: it could end a rule in the AppArmor profile nri-armor writes (docs/apparmor.md)", what)
}

// TextSource locates a policy's raw AppArmor rules (spec.apparmor) in its
// file.
type TextSource struct {
	File string `json:"file"`
	// Line is the line of the text's first line.
	Line int `json:"line"`
	// Exact is true when the text's lines are the file's lines from Line
	// on (a literal block, `|`); otherwise (folded or quoted) every line
	// of the text is reported at Line.
	Exact bool `json:"exact,omitempty"`
}

// LineOf is the file's line of the text's line n (from 1).
func (s TextSource) LineOf(n int) int {
	if !s.Exact || n < 1 {
		return s.Line
	}
	return s.Line + n - 1
}

// CheckAppArmorText checks raw AppArmor rules for what could take them out
// of the profile body nri-armor places them in, or make the profile depend
// on the node's files. It returns the line of text (from 1) with the first
// problem and the problem, or 0 and "".
//
// The checks are conservative, so that what passes means the same to this
// scanner and to apparmor_parser's lexer: no control characters but tabs;
// comments start at a word's start; a quote starts at a word's start (or
// after '=' or '(') and ends on its line; no backslash outside quotes;
// braces outside quotes either balance within a word (a glob, a
// variable) or stand alone as a word (`{`, `}`: a block), and blocks
// balance, never closing more than they opened; no include, abi or alias
// statements; no exec transitions.
func CheckAppArmorText(text string) (int, string) {
	depth, openLine := 0, 0
	for n, line := range strings.Split(text, "\n") {
		ln := n + 1
		if strings.TrimSpace(line) == "" {
			continue
		}
		words, problem := appArmorWords(line)
		if problem != "" {
			return ln, problem
		}
		if len(words) > 0 {
			switch first := strings.TrimPrefix(words[0], "#"); first {
			case "include", "abi", "alias":
				return ln, fmt.Sprintf("%q statements are not allowed: the profile must not depend on the node's files or change other profiles' paths", first)
			}
		}
		for _, w := range words {
			if transition(w) {
				return ln, fmt.Sprintf("%q: exec transitions (px, cx, ux and the like) are refused under no_new_privs, which most pods set, and would conflict with the profile's ix rules: use ix", w)
			}
			switch {
			case w == "{":
				if depth == 0 {
					openLine = ln
				}
				depth++
			case w == "}":
				if depth == 0 {
					return ln, "'}' closes a block this text did not open: it would close nri-armor's profile"
				}
				depth--
			default:
				if b := braceBalance(w); b != 0 {
					return ln, fmt.Sprintf("braces in %q do not balance within the word: write a block's '{' and '}' as words of their own", w)
				}
			}
		}
	}
	if depth != 0 {
		return openLine, "'{' opens a block that is not closed"
	}
	return 0, ""
}

// appArmorWords splits a line into words outside quotes and comments (a
// quoted string stays inside its word), or says why it cannot.
func appArmorWords(line string) ([]string, string) {
	var words []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	wordStart := func(i int) bool {
		return i == 0 || strings.IndexByte(" \t,", line[i-1]) >= 0
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c < 0x20 && c != '\t' || c == 0x7f:
			return nil, fmt.Sprintf("control character %#02x", c)
		case c == ' ' || c == '\t':
			flush()
		case c == '#':
			if !wordStart(i) {
				return nil, "'#' inside a word: a comment starts at a word's start; quote a path that holds '#'"
			}
			if strings.HasPrefix(line[i:], "#include") {
				return nil, "\"#include\" statements are not allowed: the profile must not depend on the node's files"
			}
			flush()
			return words, ""
		case c == '"':
			if !wordStart(i) && line[i-1] != '=' && line[i-1] != '(' {
				return nil, "'\"' inside a word: a quoted string starts at a word's start"
			}
			end := i + 1
			for ; end < len(line) && line[end] != '"'; end++ {
				if line[end] == '\\' {
					end++
				}
			}
			if end >= len(line) {
				return nil, "quoted string not closed on its line"
			}
			cur.WriteString(`""`) // the contents are the parser's, not structure
			i = end
		case c == '\\':
			return nil, "'\\' outside a quoted string: write escaped characters inside quotes"
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return words, ""
}

// transition reports a word of file permissions that asks for an exec
// transition (x with p, c or u, in either case).
func transition(w string) bool {
	w = strings.TrimSuffix(w, ",")
	if w == "" || !strings.ContainsAny(w, "xX") || !strings.ContainsAny(w, "pPcCuU") {
		return false
	}
	for i := 0; i < len(w); i++ {
		if !strings.ContainsRune("rwaxlkmiuUpPcCX", rune(w[i])) {
			return false
		}
	}
	return true
}

// braceBalance is 0 when w's braces nest and close, else non-zero.
func braceBalance(w string) int {
	d := 0
	for i := 0; i < len(w); i++ {
		switch w[i] {
		case '{':
			d++
		case '}':
			if d--; d < 0 {
				return d
			}
		}
	}
	return d
}

// TextIssue is what an AppArmorChecker found in raw AppArmor rules.
type TextIssue struct {
	// Line is the text's line (from 1), or 0 for the text as a whole.
	Line    int
	Message string
	// Warning: the text could not be checked; it is not refused.
	Warning bool
}

// AppArmorChecker checks raw AppArmor rules with the real parser, as
// they will be placed in a profile. enforce/apparmor provides one; the
// daemon and armorctl set it with SetAppArmorChecker. Unset, loading runs
// only CheckAppArmorText.
type AppArmorChecker func(text string) []TextIssue

var appArmorChecker struct {
	sync.RWMutex
	check AppArmorChecker
}

// SetAppArmorChecker sets the checker every later load uses for
// spec.apparmor (nil: none).
func SetAppArmorChecker(c AppArmorChecker) {
	appArmorChecker.Lock()
	defer appArmorChecker.Unlock()
	appArmorChecker.check = c
}

func currentAppArmorChecker() AppArmorChecker {
	appArmorChecker.RLock()
	defer appArmorChecker.RUnlock()
	return appArmorChecker.check
}
