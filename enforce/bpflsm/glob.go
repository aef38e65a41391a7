package bpflsm

import (
	"fmt"
	"strings"
)

// The in-kernel pattern matcher handles the common subset of matchPatterns:
// literal characters, '*' (within a segment), '?' (one character but '/')
// and a trailing "**" (anything after). Alternatives {a,b} and small
// character classes [abc], [a-f] are expanded into several such patterns
// (at most maxExpansions). Other patterns (negated classes, "**"
// mid-pattern, escapes) are reported as not enforced in the kernel.
//
// A pattern is stored split at the last '/' before its first wildcard: the
// prefix is looked up like a directory (by its hash, while the path is
// walked), the rest is matched against the rest of the path by globMatch,
// which bpf/enforce/match.h mirrors step for step.

// maxKernelPattern bounds the stored remainder (the programs' buffer).
const maxKernelPattern = 256

// maxExpansions bounds how many kernel patterns one pattern expands into.
const maxExpansions = 64

// expand rewrites {a,b} alternatives and [..] classes into the plain
// patterns they stand for, or says why it cannot.
func expand(pattern string) ([]string, string) {
	out := []string{""}
	for i := 0; i < len(pattern); i++ {
		var alts []string
		switch c := pattern[i]; c {
		case '\\':
			return nil, "escapes"
		case '{':
			depth, j := 0, i
			for ; j < len(pattern); j++ {
				if pattern[j] == '{' {
					depth++
				} else if pattern[j] == '}' {
					if depth--; depth == 0 {
						break
					}
				}
			}
			if j >= len(pattern) {
				return nil, "an unclosed '{'"
			}
			// Split the body at top-level commas; each part may nest.
			body, depth, start := pattern[i+1:j], 0, 0
			for k := 0; k <= len(body); k++ {
				if k == len(body) || (body[k] == ',' && depth == 0) {
					sub, why := expand(body[start:k])
					if why != "" {
						return nil, why
					}
					alts = append(alts, sub...)
					start = k + 1
				} else if body[k] == '{' {
					depth++
				} else if body[k] == '}' {
					depth--
				}
			}
			i = j
		case '[':
			end := strings.IndexByte(pattern[i+1:], ']')
			if end <= 0 {
				return nil, "this character class"
			}
			class := pattern[i+1 : i+1+end]
			if class[0] == '^' || class[0] == '!' {
				return nil, "negated character classes"
			}
			if strings.ContainsAny(class, "*?[{},\\") {
				return nil, "wildcard characters inside a character class"
			}
			for k := 0; k < len(class); k++ {
				if k+2 < len(class) && class[k+1] == '-' {
					for ch := class[k]; ch <= class[k+2] && ch >= class[k]; ch++ {
						if strings.IndexByte("*?[]{},\\", ch) >= 0 {
							return nil, "a range that holds wildcard characters"
						}
						alts = append(alts, string([]byte{ch}))
						if ch == 255 {
							break
						}
					}
					k += 2
				} else {
					alts = append(alts, class[k:k+1])
				}
			}
			i += end + 1
		default:
			for k := range out {
				out[k] += pattern[i : i+1] // the byte itself (string(c) would encode it as UTF-8)
			}
			continue
		}
		if len(out)*len(alts) > maxExpansions {
			return nil, fmt.Sprintf("more than %d alternatives", maxExpansions)
		}
		var next []string
		for _, o := range out {
			for _, a := range alts {
				next = append(next, o+a)
			}
		}
		out = next
	}
	return out, ""
}

// kernelGlobs is the kernel form of a pattern: one or more kernel globs.
func kernelGlobs(pattern string) ([]kernelGlob, string) {
	pats, why := expand(pattern)
	if why != "" {
		return nil, why
	}
	var out []kernelGlob
	for _, p := range pats {
		// Expansion must not join two '*' into a "**" that the pattern did
		// not have (as "/*{}*" would): that one would cross '/'. A "**"
		// the pattern has may end an expansion ("{a/**,b}").
		body := p
		if strings.Contains(pattern, "**") {
			body = strings.TrimSuffix(body, "**")
		}
		if strings.Contains(body, "**") {
			return nil, "'*' next to alternatives"
		}
		g, why := splitKernelGlob(p)
		if why != "" {
			return nil, why
		}
		out = append(out, g)
	}
	return out, ""
}

// kernelGlob is a pattern in the kernel's form.
type kernelGlob struct {
	prefix string // through the last '/' before the first wildcard
	rest   string // the remainder, without a trailing "**"
	tail   bool   // the pattern ended in "**"
}

// splitKernelGlob returns the kernel form of pattern, or why there is none.
func splitKernelGlob(pattern string) (kernelGlob, string) {
	var g kernelGlob
	if !strings.HasPrefix(pattern, "/") {
		return g, "a pattern that does not start with '/'"
	}
	p := pattern
	if strings.HasSuffix(p, "**") {
		g.tail = true
		p = strings.TrimSuffix(p, "**")
	}
	if strings.ContainsAny(p, "[]{}\\,") {
		return g, "character classes, alternatives and escapes"
	}
	if strings.Contains(p, "**") {
		return g, "'**' before the end of the pattern"
	}
	first := strings.IndexAny(p, "*?")
	if first < 0 {
		first = len(p)
	}
	cut := strings.LastIndexByte(p[:first], '/') + 1
	g.prefix, g.rest = p[:cut], p[cut:]
	if g.tail && strings.HasSuffix(g.rest, "*") {
		// "x***": the trailing "**" covers the '*' before it.
		g.rest = strings.TrimRight(g.rest, "*")
	}
	if len(g.rest) > maxKernelPattern {
		return g, "a pattern longer than 256 bytes after its directory"
	}
	return g, ""
}

// globMatch matches text against a kernel pattern remainder: the classic
// wildcard algorithm with backtracking to the last '*', where neither '*'
// nor '?' crosses '/'. With tail, a match of any prefix of text suffices
// (the "**"), provided the prefix ends at a '/' boundary or the pattern's
// last element allows it — exactly: text[:i] matches rest for some i.
func globMatch(rest, text string, tail bool) bool {
	i, j := 0, 0
	starJ, starI := -1, 0
	for {
		if tail && j == len(rest) {
			return true
		}
		if i == len(text) {
			for j < len(rest) && rest[j] == '*' {
				j++
			}
			return j == len(rest) || (tail && j == len(rest))
		}
		switch {
		case j < len(rest) && rest[j] == '*':
			starJ, starI = j, i
			j++
		case j < len(rest) && (rest[j] == text[i] || (rest[j] == '?' && text[i] != '/')):
			i++
			j++
		case starJ >= 0 && text[starI] != '/':
			starI++
			i, j = starI, starJ+1
		default:
			return false
		}
	}
}
