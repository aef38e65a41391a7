package bpf

import "strings"

// The in-kernel pattern matcher handles the common subset of matchPatterns:
// literal characters, '*' (within a segment), '?' (one character but '/')
// and a trailing "**" (anything after). Other patterns ([...], {a,b}, "**"
// mid-pattern, escapes) are reported as not enforced in the kernel.
//
// A pattern is stored split at the last '/' before its first wildcard: the
// prefix is looked up like a directory (by its hash, while the path is
// walked), the rest is matched against the rest of the path by globMatch,
// which armor.bpf.c mirrors step for step.

// maxKernelPattern bounds the stored remainder (the programs' buffer).
const maxKernelPattern = 256

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
