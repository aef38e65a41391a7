package policy

import (
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pattern string
		match   []string
		noMatch []string
	}{
		// * stays within one path segment.
		{`/etc/*.conf`, []string{"/etc/a.conf", "/etc/.conf", "/etc/resolv.conf"}, []string{"/etc/a/b.conf", "/etc/a.confx", "/etc/a.con", "/x/etc/a.conf"}},
		{`/home/*/.ssh/**`, []string{"/home/u/.ssh/id_rsa", "/home/u/.ssh/keys/a", "/home/u/.ssh/"}, []string{"/home/u/v/.ssh/x", "/home/u/.ssh", "/home/.ssh/x"}},
		{`/tmp/*`, []string{"/tmp/a", "/tmp/"}, []string{"/tmp/a/b", "/tmp"}},
		// ** crosses segments.
		{`/**`, []string{"/a", "/a/b/c", "/"}, []string{"a"}},
		{`**/passwd`, []string{"/etc/passwd", "/x/y/passwd"}, []string{"passwd", "/etc/passwd.bak"}},
		{`/var/***`, []string{"/var/a/b", "/var/"}, []string{"/va"}},
		{`/usr/**/bin/*`, []string{"/usr/local/bin/x", "/usr/a/b/bin/y"}, []string{"/usr/bin/x", "/usr/local/bin/x/y"}},
		// ? is one character, not '/'.
		{`/tmp/file?.txt`, []string{"/tmp/file1.txt", "/tmp/filex.txt"}, []string{"/tmp/file12.txt", "/tmp/file.txt", "/tmp/file/.txt"}},
		// [...] classes and ranges.
		{`/dev/tty[0-9]`, []string{"/dev/tty0", "/dev/tty5", "/dev/tty9"}, []string{"/dev/tty10", "/dev/ttyS", "/dev/tty"}},
		{`/dev/sd[a-c][0-9]`, []string{"/dev/sda1", "/dev/sdc9"}, []string{"/dev/sdd1", "/dev/sda"}},
		{`/dev/tty[abc]`, []string{"/dev/ttya", "/dev/ttyc"}, []string{"/dev/ttyd", "/dev/ttyab"}},
		{`/x/[]a]`, []string{"/x/]", "/x/a"}, []string{"/x/b", "/x/[]a]"}},
		{`/x/[a-]`, []string{"/x/a", "/x/-"}, []string{"/x/b"}},
		{`/x/[-a]`, []string{"/x/a", "/x/-"}, []string{"/x/b"}},
		{`/x/[.*]`, []string{"/x/.", "/x/*"}, []string{"/x/a"}},
		// [^...] and [!...] negate, never matching '/'.
		{`/dev/tty[^0-9]`, []string{"/dev/ttyS", "/dev/ttyx"}, []string{"/dev/tty5", "/dev/tty/", "/dev/tty"}},
		{`/dev/tty[!0-9]`, []string{"/dev/ttyS"}, []string{"/dev/tty5", "/dev/tty/"}},
		{`/x/[^^]`, []string{"/x/a"}, []string{"/x/^"}},
		// {a,b} alternatives, nested, empty, holding globs.
		{`/etc/{passwd,shadow}`, []string{"/etc/passwd", "/etc/shadow"}, []string{"/etc/group", "/etc/passwdshadow", "/etc/{passwd,shadow}"}},
		{`/usr/{bin,lib/**}/python`, []string{"/usr/bin/python", "/usr/lib/x/y/python"}, []string{"/usr/sbin/python", "/usr/lib/python"}},
		{`/{a,{b,c}d}`, []string{"/a", "/bd", "/cd"}, []string{"/b", "/ad"}},
		{`/etc/passwd{,-}`, []string{"/etc/passwd", "/etc/passwd-"}, []string{"/etc/passwd--"}},
		{`/tmp/{*.sh,*.py}`, []string{"/tmp/a.sh", "/tmp/b.py"}, []string{"/tmp/a/b.py", "/tmp/a.rb"}},
		// Escapes.
		{`/tmp/\*`, []string{"/tmp/*"}, []string{"/tmp/a", "/tmp/"}},
		{`/tmp/a\?b`, []string{"/tmp/a?b"}, []string{"/tmp/axb"}},
		{`/tmp/\[x\]`, []string{"/tmp/[x]"}, []string{"/tmp/x"}},
		{`/tmp/\{a,b\}`, []string{"/tmp/{a,b}"}, []string{"/tmp/a", "/tmp/b"}},
		{`/tmp/a\\b`, []string{`/tmp/a\b`}, []string{"/tmp/ab", `/tmp/a\\b`}},
		{`/tmp/\a`, []string{"/tmp/a"}, []string{`/tmp/\a`}},
		{`/tmp/\**`, []string{"/tmp/*", "/tmp/*x"}, []string{"/tmp/x*"}},
		// Everything else is literal, regular-expression metacharacters included.
		{`/tmp/a.b`, []string{"/tmp/a.b"}, []string{"/tmp/axb"}},
		{`/tmp/a+b`, []string{"/tmp/a+b"}, []string{"/tmp/aab", "/tmp/ab"}},
		{`/tmp/(x)|y`, []string{"/tmp/(x)|y"}, []string{"/tmp/x", "y"}},
		{`/tmp/$HOME^`, []string{"/tmp/$HOME^"}, []string{"/tmp/"}},
		{`/tmp/a,b`, []string{"/tmp/a,b"}, []string{"/tmp/a", "/tmp/b"}},
		// Anchored at both ends.
		{`/etc/passwd`, []string{"/etc/passwd"}, []string{"/etc/passwd2", "/x/etc/passwd", "etc/passwd"}},
	}
	for _, c := range cases {
		g, err := CompileGlob(c.pattern)
		if err != nil {
			t.Errorf("CompileGlob(%q): %v", c.pattern, err)
			continue
		}
		for _, p := range c.match {
			if !g.Match(p) {
				t.Errorf("%q should match %q", c.pattern, p)
			}
		}
		for _, p := range c.noMatch {
			if g.Match(p) {
				t.Errorf("%q should not match %q", c.pattern, p)
			}
		}
	}
}

func TestGlobNonASCII(t *testing.T) {
	cases := []struct {
		pattern, path string
	}{
		{"/tmp/日本", "/tmp/日本"},
		{"/tmp/é*", "/tmp/é.txt"},
		{"/data/naïve/**", "/data/naïve/a/b"},
		{"/srv/{café,bar}/x", "/srv/café/x"},
		{"/tmp/\\é", "/tmp/é"},
		// '?' and classes match bytes, as the kernel sees paths: é is two.
		{"/tmp/??", "/tmp/é"},
		{"/tmp/[\xc3][\xa9a]", "/tmp/é"},
	}
	for _, c := range cases {
		g, err := CompileGlob(c.pattern)
		if err != nil {
			t.Errorf("CompileGlob(%q): %v", c.pattern, err)
			continue
		}
		if !g.Match(c.path) {
			t.Errorf("%q should match %q", c.pattern, c.path)
		}
	}
	if g, _ := CompileGlob("/tmp/?"); g.Match("/tmp/é") {
		t.Error(`"/tmp/?" matches the two bytes of "é"`)
	}
}

func TestGlobErrors(t *testing.T) {
	cases := []struct{ pattern, err string }{
		{"", "empty pattern"},
		{"/tmp/[abc", "unclosed '[' at offset 5"},
		{"/tmp/[]", "unclosed '[' at offset 5"},
		{"/tmp/[^]", "empty character class at offset 5"},
		{"/tmp/[!]", "empty character class at offset 5"},
		{"/tmp/[z-a]", "bad range z-a at offset 5"},
		{"/tmp/{a,b", "unclosed '{'"},
		{"/tmp/{a,{b,c}", "unclosed '{'"},
		{"/tmp/a}", "unmatched '}' at offset 6"},
		{"/tmp/{a}}", "unmatched '}' at offset 8"},
		{`/tmp/\`, `pattern ends with an unfinished escape '\'`},
	}
	for _, c := range cases {
		g, err := CompileGlob(c.pattern)
		if err == nil {
			t.Errorf("CompileGlob(%q) = %v, want error %q", c.pattern, g.Pattern, c.err)
			continue
		}
		if err.Error() != c.err {
			t.Errorf("CompileGlob(%q): %q, want %q", c.pattern, err, c.err)
		}
	}
}

func TestGlobPrefix(t *testing.T) {
	cases := []struct {
		pattern, prefix string
		literal         bool
	}{
		{"/etc/passwd", "/etc/passwd", true},
		{"/etc/*.conf", "/etc/", false},
		{"/etc/pass?d", "/etc/pass", false},
		{"/usr/{bin,lib}", "/usr/", false},
		{"/dev/tty[0-9]", "/dev/tty", false},
		{`/a/\*`, "/a/", false},
		{"**/x", "", false},
		{"/a,b", "/a,b", true},
	}
	for _, c := range cases {
		g, err := CompileGlob(c.pattern)
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", c.pattern, err)
		}
		if g.Prefix != c.prefix || g.IsLiteral() != c.literal || g.Pattern != c.pattern {
			t.Errorf("%q: prefix %q literal %v, want %q %v", c.pattern, g.Prefix, g.IsLiteral(), c.prefix, c.literal)
		}
	}
}

// Patterns loaded from YAML and decided, through the index's prefix buckets.
func TestDecidePatterns(t *testing.T) {
	y := utDocs(
		utKSP("pat", `file:
  matchPatterns:
  - pattern: /home/*/.ssh/**
  - pattern: "**/*.pem"
  - pattern: /etc/{passwd,shadow}
  - pattern: /dev/tty[0-9]
  - pattern: /tmp/\*
  - pattern: /var/log/?.log
    action: Audit
  - pattern: /srv/[^.]*
  - pattern: '*.core'
`),
		utKSP("pat-proc", `process:
  matchPatterns:
  - pattern: /usr/{bin,sbin}/*ftp*
  - pattern: /opt/**/bin/[a-c]?
    ownerOnly: true
`),
	)
	runs := []utDecideCase{
		{"* segment then **", y, nil, evRead("/home/alice/.ssh/id_rsa"), utRule(Block, "pat", "spec.file.matchPatterns[0]")},
		{"** deep", y, nil, evRead("/home/alice/.ssh/keys/old/id_rsa"), utRule(Block, "pat", "spec.file.matchPatterns[0]")},
		{"not .ssh", y, nil, evRead("/home/alice/.sshx"), utNoRule},
		{"leading ** anywhere", y, nil, evRead("/srv/certs/a.pem"), utRule(Block, "pat", "spec.file.matchPatterns[1]")},
		{"two patterns: lowest rule id reported", y, nil, evRead("/home/alice/.ssh/x.pem"), utRule(Block, "pat", "spec.file.matchPatterns[1]")},
		{"alternatives", y, nil, evWrite("/etc/shadow"), utRule(Block, "pat", "spec.file.matchPatterns[2]")},
		{"alternatives: other file", y, nil, evWrite("/etc/group"), utNoRule},
		{"class", y, nil, evRead("/dev/tty1"), utRule(Block, "pat", "spec.file.matchPatterns[3]")},
		{"class: not a digit", y, nil, evRead("/dev/ttyS0"), utNoRule},
		{"escaped star is literal", y, nil, evRead("/tmp/*"), utRule(Block, "pat", "spec.file.matchPatterns[4]")},
		{"escaped star does not glob", y, nil, evRead("/tmp/x"), utNoRule},
		{"? one character", y, nil, evRead("/var/log/a.log"), utRule(Audit, "pat", "spec.file.matchPatterns[5]")},
		{"? not two characters", y, nil, evRead("/var/log/ab.log"), utNoRule},
		{"negated class", y, nil, evRead("/srv/index.html"), utRule(Block, "pat", "spec.file.matchPatterns[6]")},
		{"negated class: dot file", y, nil, evRead("/srv/.env"), utNoRule},
		{"relative pattern with leading *: no absolute path matches", y, nil, evRead("/app/x.core"), utNoRule},
		{"process pattern in bin", y, nil, evExec("/usr/bin/sftp-server"), utRule(Block, "pat-proc", "spec.process.matchPatterns[0]")},
		{"process pattern in sbin", y, nil, evExec("/usr/sbin/vsftpd"), utRule(Block, "pat-proc", "spec.process.matchPatterns[0]")},
		{"process pattern: other dir", y, nil, evExec("/usr/local/bin/ftp"), utNoRule},
		{"process pattern ownerOnly: other user", y, nil, evAs(evExec("/opt/x/y/bin/a1"), 1, 2), utRule(Block, "pat-proc", "spec.process.matchPatterns[1]")},
		{"process pattern ownerOnly: owner", y, nil, evAs(evExec("/opt/x/y/bin/a1"), 2, 2), utNoRule},
		{"process pattern: class out of range", y, nil, evAs(evExec("/opt/x/bin/d1"), 1, 2), utNoRule},
	}
	utRunDecide(t, runs)
}

func TestLoadInvalidPatterns(t *testing.T) {
	cases := []struct{ body, want string }{
		{"file:\n  matchPatterns:\n  - pattern: /tmp/[abc\n", "bad.yaml:12: spec.file.matchPatterns[0].pattern: unclosed '[' at offset 5"},
		{"file:\n  matchPatterns:\n  - pattern: /a/*\n  - pattern: /tmp/{a,b\n", "bad.yaml:13: spec.file.matchPatterns[1].pattern: unclosed '{'"},
		{"file:\n  matchPatterns:\n  - pattern: /tmp/a}\n", "bad.yaml:12: spec.file.matchPatterns[0].pattern: unmatched '}' at offset 6"},
		{"file:\n  matchPatterns:\n  - pattern: /tmp/[z-a]\n", "bad.yaml:12: spec.file.matchPatterns[0].pattern: bad range z-a at offset 5"},
		{"file:\n  matchPatterns:\n  - pattern: \"\"\n", "bad.yaml:12: spec.file.matchPatterns[0].pattern: empty pattern"},
		{"process:\n  matchPatterns:\n  - pattern: /bin/\\\n", `bad.yaml:12: spec.process.matchPatterns[0].pattern: pattern ends with an unfinished escape '\'`},
		{"process:\n  matchPatterns:\n  - pattern: /bin/[^]\n    ownerOnly: true\n", "bad.yaml:12: spec.process.matchPatterns[0].pattern: empty character class at offset 5"},
		{"file:\n  matchPatterns:\n  - pattern: /" + strings.Repeat("*", PathMax) + "\n", "bad.yaml:12: spec.file.matchPatterns[0].pattern: longer than PATH_MAX (4096 bytes)"},
		{"file:\n  matchPatterns:\n  - readOnly: true\n", "bad.yaml:12: spec.file.matchPatterns[0].pattern: required field missing"},
	}
	for _, c := range cases {
		res := LoadBytes("bad.yaml", []byte(utKSP("p", c.body)))
		errs := utIssueStrings(res.Errors())
		if res.Status() != FileInvalid || len(errs) != 1 || errs[0] != c.want {
			t.Errorf("%q:\n got %s %q\nwant %q", c.body, res.Status(), errs, c.want)
		}
	}
}
