package policy

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Glob is a compiled AppArmor-style pattern, as matchPatterns use them:
//
//   - any characters except '/' (within one path segment)
//     **      any characters including '/' (across segments)
//     ?       one character except '/'
//     [abc]   one of the listed characters; [^abc] or [!abc] negates; ranges a-z
//     {a,b}   one of the alternatives, which may themselves hold globs
//     \x      the character x itself
//
// It compiles to an anchored RE2 regular expression: matching is linear in
// the path's length whatever the pattern, so no pattern can make Decide slow.
// Paths are bytes, as the kernel sees them: '?' and a class match one byte,
// whatever the encoding (the expression runs over the bytes as Latin-1).
type Glob struct {
	Pattern string
	re      *regexp.Regexp
	// Prefix is the literal text before the first wildcard; a path that does
	// not start with it cannot match. Decide indexes patterns by it.
	Prefix string
}

// CompileGlob parses pattern, or says what is wrong with it and where.
func CompileGlob(pattern string) (*Glob, error) {
	if pattern == "" {
		return nil, fmt.Errorf("empty pattern")
	}
	var b strings.Builder
	b.WriteString(`(?s)^`) // (?s): "**" matches newlines too, which file names may hold
	depth := 0             // open '{' groups
	prefixEnd := -1
	markWild := func(i int) {
		if prefixEnd < 0 {
			prefixEnd = i
		}
	}
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '\\':
			if i+1 >= len(pattern) {
				return nil, fmt.Errorf("pattern ends with an unfinished escape '\\'")
			}
			markWild(i) // keep the prefix free of escapes: it is compared as plain text
			i++
			b.WriteString(regexp.QuoteMeta(string(rune(pattern[i]))))
		case '*':
			markWild(i)
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				for i+1 < len(pattern) && pattern[i+1] == '*' {
					i++
				}
				b.WriteString(`.*`)
			} else {
				b.WriteString(`[^/]*`)
			}
		case '?':
			markWild(i)
			b.WriteString(`[^/]`)
		case '[':
			markWild(i)
			end := strings.IndexByte(pattern[i+1:], ']')
			if end == 0 { // "[]...]": a leading ']' is a member
				if e2 := strings.IndexByte(pattern[i+2:], ']'); e2 >= 0 {
					end = e2 + 1
				} else {
					end = -1
				}
			}
			if end < 0 {
				return nil, fmt.Errorf("unclosed '[' at offset %d", i)
			}
			class := pattern[i+1 : i+1+end]
			neg := false
			if strings.HasPrefix(class, "^") || strings.HasPrefix(class, "!") {
				neg, class = true, class[1:]
			}
			if class == "" {
				return nil, fmt.Errorf("empty character class at offset %d", i)
			}
			b.WriteString("[")
			if neg {
				b.WriteString("^/")
			}
			for j := 0; j < len(class); j++ {
				ch := class[j]
				switch {
				case ch == '-' && j > 0 && j < len(class)-1:
					if class[j-1] > class[j+1] {
						return nil, fmt.Errorf("bad range %c-%c at offset %d", class[j-1], class[j+1], i)
					}
					b.WriteByte('-')
				case ch == '\\' || ch == ']' || ch == '[' || ch == '^' || ch == '-':
					b.WriteByte('\\')
					b.WriteByte(ch)
				default:
					b.WriteRune(rune(ch)) // one byte, as Latin-1
				}
			}
			b.WriteString("]")
			i += end + 1
		case '{':
			markWild(i)
			depth++
			b.WriteString(`(?:`)
		case ',':
			if depth > 0 {
				b.WriteString(`|`)
			} else {
				b.WriteString(`,`)
			}
		case '}':
			if depth == 0 {
				return nil, fmt.Errorf("unmatched '}' at offset %d", i)
			}
			depth--
			b.WriteString(`)`)
		default:
			b.WriteString(regexp.QuoteMeta(string(rune(c))))
		}
	}
	if depth > 0 {
		return nil, fmt.Errorf("unclosed '{'")
	}
	b.WriteString(`$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("cannot compile pattern: %v", err)
	}
	g := &Glob{Pattern: pattern, re: re, Prefix: pattern}
	if prefixEnd >= 0 {
		g.Prefix = pattern[:prefixEnd]
	}
	return g, nil
}

// Match reports whether path matches the whole pattern.
func (g *Glob) Match(path string) bool { return g.re.MatchString(latin1(path)) }

// latin1 maps each byte of s to the rune of the same value, so that the
// expression sees bytes; ASCII needs no copy.
func latin1(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			r := make([]rune, len(s))
			for j := 0; j < len(s); j++ {
				r[j] = rune(s[j])
			}
			return string(r)
		}
	}
	return s
}

// IsLiteral reports whether the pattern has no wildcard at all.
func (g *Glob) IsLiteral() bool { return g.Prefix == g.Pattern }
