package policy

import (
	"fmt"
	"strings"
	"testing"
)

// TestRuleBreakersRefused: a path, directory, pattern, source or program
// name that holds a character that could end a rule in an AppArmor profile
// is an error that names the file, line and field — whatever the backend.
func TestRuleBreakersRefused(t *testing.T) {
	const head = "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: p, namespace: ns}\nspec:\n  selector: {matchLabels: {a: b}}\n"
	for _, c := range []struct {
		name, body, field string
		line              int
		bad               string
	}{
		{"injected rule", "  file:\n    matchPaths:\n    - path: \"/etc/x r, /** rwlkm,\"\n", "spec.file.matchPaths[0].path", 8, `","`},
		{"quote", "  file:\n    matchPaths:\n    - path: '/etc/x\" r,'\n", "spec.file.matchPaths[0].path", 8, `"\""`},
		{"comment", "  file:\n    matchDirectories:\n    - dir: \"/etc/x#/\"\n", "spec.file.matchDirectories[0].dir", 8, `"#"`},
		{"newline", "  process:\n    matchPaths:\n    - path: \"/bin/x\\n/** ix,\"\n", "spec.process.matchPaths[0].path", 8, "the control character 0x0a"},
		{"tab", "  file:\n    matchPaths:\n    - path: \"/a\\tb\"\n", "spec.file.matchPaths[0].path", 8, "the control character 0x09"},
		{"source", "  file:\n    matchPaths:\n    - path: /etc/x\n      fromSource:\n      - path: \"/bin/a,b\"\n", "spec.file.matchPaths[0].fromSource[0].path", 10, `","`},
		{"execname", "  process:\n    matchPaths:\n    - execname: \"a,b\"\n", "spec.process.matchPaths[0].execname", 8, `","`},
		{"pattern comma outside braces", "  file:\n    matchPatterns:\n    - pattern: \"/etc/a,b*\"\n", "spec.file.matchPatterns[0].pattern", 8, `","`},
		{"pattern escaped comma", "  file:\n    matchPatterns:\n    - pattern: \"/etc/{a\\\\,b,c}\"\n", "spec.file.matchPatterns[0].pattern", 8, `","`},
		{"pattern comma in class", "  file:\n    matchPatterns:\n    - pattern: \"/etc/[,a]\"\n", "spec.file.matchPatterns[0].pattern", 8, `","`},
		{"syscall path", "  syscalls:\n    matchPaths:\n    - path: \"/tmp/#x\"\n      syscall: [unlink]\n", "spec.syscalls.matchPaths[0].path", 8, `"#"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := LoadBytes("p.yaml", []byte(head+c.body))
			want := fmt.Sprintf("p.yaml:%d: %s: must not contain %s", c.line, c.field, c.bad)
			for _, e := range res.Errors() {
				if strings.HasPrefix(e.Error(), want) {
					return
				}
			}
			t.Fatalf("no error %q in %v", want, res.Issues)
		})
	}
	// Commas that separate a pattern's alternatives are its syntax.
	res := LoadBytes("p.yaml", []byte(head+"  file:\n    matchPatterns:\n    - pattern: \"/var/**/*.{log,txt,{a,b}}\"\n"))
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckAppArmorText(t *testing.T) {
	for _, c := range []struct {
		text string
		line int
		want string // part of the problem; "" means none
	}{
		{"file,\nnetwork inet stream,\n", 0, ""},
		{"  deny /etc/shadow r,  # no\n\t/usr/bin/** ix,\n", 0, ""},
		{"signal (receive) peer=\"unconfined\",\n/etc/{a,b} r,\n@{HOME}/x r,\n", 0, ""},
		{"profile child {\n  file,\n}\n", 0, ""},
		{"\"/etc/a b}\" r,\n", 0, ""},
		{"file,\n}\nprofile evil {\n  /** rwlkm,\n", 2, "closes a block"},
		{"file,\n/x r,\n/etc/{a r,\n", 3, "do not balance"},
		{"/a\\{ r,\n}\nprofile e {\n/b\\} r,\n", 1, "outside a quoted string"},
		{"^hat {\n/x r,\n", 1, "not closed"},
		{"#include <abstractions/base>\n", 1, "#include"},
		{"include <tunables/global>\n", 1, "\"include\" statements"},
		{"  abi <abi/3.0>,\n", 1, "\"abi\" statements"},
		{"/etc/a#} r,\n", 1, "'#' inside a word"},
		{"/x\"}\" r,\n", 1, "inside a word"},
		{"\"/x r,\n", 1, "not closed"},
		{"/x r,\r\n", 1, "control character 0x0d"},
		{"file,\n/usr/bin/* Px,\n", 2, "exec transitions"},
		{"/bin/sh cx -> child,\n", 1, "exec transitions"},
		{"/bin/sh rix,\n/opt/** ux,\n", 2, "exec transitions"},
	} {
		line, problem := CheckAppArmorText(c.text)
		if c.want == "" {
			if problem != "" {
				t.Errorf("%q: unexpected problem at line %d: %s", c.text, line, problem)
			}
			continue
		}
		if line != c.line || !strings.Contains(problem, c.want) {
			t.Errorf("%q: got line %d %q, want line %d with %q", c.text, line, problem, c.line, c.want)
		}
	}
}

// TestAppArmorTextLines: a problem in spec.apparmor is reported at the
// file's line that holds it (a literal block maps line by line), and the
// checker set with SetAppArmorChecker decides what parses.
func TestAppArmorTextLines(t *testing.T) {
	doc := "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: p, namespace: ns}\nspec:\n  selector: {matchLabels: {a: b}}\n  apparmor: |\n    file,\n    /x r,\n    }\n"
	res := LoadBytes("p.yaml", []byte(doc))
	if err := res.Err(); err == nil || !strings.HasPrefix(err.Error(), "p.yaml:9: spec.apparmor: line 3 of the AppArmor rules: '}' closes") {
		t.Fatalf("got %v", err)
	}

	SetAppArmorChecker(func(text string) []TextIssue {
		if strings.Contains(text, "bogus") {
			return []TextIssue{{Line: 2, Message: "syntax error"}}
		}
		return []TextIssue{{Message: "not checked", Warning: true}}
	})
	defer SetAppArmorChecker(nil)
	doc = strings.Replace(doc, "    }\n", "    bogus\n", 1)
	res = LoadBytes("p.yaml", []byte(doc))
	if err := res.Err(); err == nil || err.Error() != "p.yaml:8: spec.apparmor: line 2 of the AppArmor rules: syntax error" {
		t.Fatalf("got %v", err)
	}
	doc = strings.Replace(doc, "    bogus\n", "", 1)
	res = LoadBytes("p.yaml", []byte(doc))
	var warned *Issue
	for _, w := range res.Warnings() {
		if w.Field == "spec.apparmor" {
			warned = w
		}
	}
	if res.Err() != nil || warned == nil || warned.Line != 7 || warned.Message != "not checked" {
		t.Fatalf("got %v", res.Issues)
	}
	if src := res.Policies[0].AppArmorSource; src != (TextSource{File: "p.yaml", Line: 7, Exact: true}) {
		t.Fatalf("source %+v", src)
	}
}
