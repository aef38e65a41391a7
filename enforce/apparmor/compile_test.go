package apparmor

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const examplePolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: harden-web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  process:
    matchPaths:
    - path: /usr/bin/apt
    - execname: curl
      fromSource:
      - path: /bin/sh
  file:
    matchDirectories:
    - dir: /etc/
      recursive: true
      readOnly: true
    matchPaths:
    - path: /etc/shadow
      action: Audit
    - path: /home/app/.ssh/id_ed25519
      ownerOnly: true
    matchPatterns:
    - pattern: /var/log/**/*.{log,txt}
      action: Audit
  network:
    matchProtocols:
    - protocol: raw
    - protocol: tcp,udp
      action: Allow
  capabilities:
    matchCapabilities:
    - capability: net_raw
  action: Block
`

// TestCompileGolden: the profile of a policy with a bit of everything, as
// a reader sees it (testdata/golden/example.profile; -update rewrites it).
func TestCompileGolden(t *testing.T) {
	rs := policy.Compile(policytest.Load(t, examplePolicy), policy.Options{
		Mode: policy.ModeEnforce, Postures: policy.Postures{File: policy.Audit, Network: policy.Block, Capabilities: policy.Audit}})
	p, err := Compile("nri-armor.shop.web.0123456789abcdef", rs, nil)
	if err != nil {
		t.Fatal(err)
	}
	queueParse(t, p.Text)
	var b strings.Builder
	b.WriteString(p.Text)
	b.WriteString("\n# Unenforced:\n")
	for _, u := range p.Unenforced {
		fmt.Fprintf(&b, "#   rule %d (%s), partial %t: %s\n", u.Rule.ID, u.Rule.Describe(), u.Partial, u.Reason)
	}
	fmt.Fprintf(&b, "# Unlogged: %v\n", p.Unlogged)
	golden := filepath.Join("testdata", "golden", "example.profile")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if b.String() != string(want) {
		t.Fatalf("profile differs from %s (go test ./enforce/apparmor -update after checking the change):\n%s", golden, b.String())
	}
}

// oneRule compiles a policy of one rule line (YAML under spec) with the
// given postures, and returns the profile's lines of rule 1.
func oneRule(t *testing.T, spec string, postures policy.Postures) (Profile, []string) {
	t.Helper()
	doc := "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: p, namespace: ns}\nspec:\n  selector: {matchLabels: {a: b}}\n" + spec
	rs := policy.Compile(policytest.Load(t, doc), policy.Options{Mode: policy.ModeEnforce, Postures: postures})
	p := compiled(t, rs, nil)
	var lines []string
	for _, l := range strings.Split(p.Text, "\n") {
		if strings.HasSuffix(l, "  # rule 1") {
			lines = append(lines, strings.TrimSpace(strings.TrimSuffix(l, "  # rule 1")))
		}
	}
	return p, lines
}

var auditPostures = policy.Postures{File: policy.Audit, Network: policy.Audit, Capabilities: policy.Audit}

// TestMapping: what each kind of rule becomes.
func TestMapping(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{"  file:\n    matchPaths:\n    - path: /etc/shadow\n", `audit deny "/etc/shadow{,/}" rwl,`},
		{"  file:\n    matchPaths:\n    - path: /etc/shadow\n      action: Audit\n", `audit "/etc/shadow{,/}" rwl,|"/etc/shadow{,/}" mk,`},
		{"  file:\n    matchPaths:\n    - path: /etc/shadow\n      readOnly: true\n", `audit deny "/etc/shadow{,/}" wl,`},
		{"  file:\n    matchPaths:\n    - path: /etc/shadow\n      ownerOnly: true\n", `audit deny other "/etc/shadow{,/}" rwl,`},
		{"  file:\n    matchPaths:\n    - path: /etc/shadow\n      ownerOnly: true\n      readOnly: true\n", `audit deny other "/etc/shadow{,/}" r,|audit deny "/etc/shadow{,/}" wl,`},
		{"  file:\n    matchPaths:\n    - path: /etc/shadow\n      ownerOnly: true\n      action: Allow\n", `owner "/etc/shadow{,/}" rwlmk,`},
		{"  file:\n    matchPaths:\n    - path: /etc/shadow\n      readOnly: true\n      action: Allow\n", `"/etc/shadow{,/}" rmk,`},
		{"  file:\n    matchDirectories:\n    - dir: /etc/\n", `audit deny "/etc{,/,/*,/*/}" rwl,`},
		{"  file:\n    matchDirectories:\n    - dir: /etc/\n      recursive: true\n", `audit deny "/etc{,/**}" rwl,`},
		{"  file:\n    matchPatterns:\n    - pattern: /home/*/.ssh/*\n", `audit deny "/home/*/.ssh/*" rwl,|audit deny "/home/*/.ssh/*/" rwl,`},
		{"  file:\n    matchPatterns:\n    - pattern: /var/**\n", `audit deny "/var/**" rwl,`},
		{"  file:\n    matchPatterns:\n    - pattern: \"**/.bashrc\"\n", `audit deny "/{,**/}.bashrc" rwl,|audit deny "/{,**/}.bashrc/" rwl,`},
		{"  file:\n    matchPatterns:\n    - pattern: /proc/[0-9]*/m[!a]ps\n", `audit deny "/proc/{0,1,2,3,4,5,6,7,8,9}*/m[^a/]ps" rwl,|audit deny "/proc/{0,1,2,3,4,5,6,7,8,9}*/m[^a/]ps/" rwl,`},
		{"  file:\n    matchPatterns:\n    - pattern: /*\n", `audit deny "/" rwl,|audit deny "/*" rwl,|audit deny "/*/" rwl,`},
		{"  file:\n    matchPatterns:\n    - pattern: mysqld\n", ``},
		{"  process:\n    matchPaths:\n    - path: /usr/bin/apt\n", `audit deny "/usr/bin/apt{,/}" mx,`},
		{"  process:\n    matchPaths:\n    - execname: nc\n      action: Audit\n", `audit "/{,**/}nc" ix,`},
		{"  process:\n    matchDirectories:\n    - dir: /usr/bin/\n      action: Allow\n", `"/usr/bin{,/,/*,/*/}" ix,`},
		{"  process:\n    matchPatterns:\n    - pattern: /*/*/nc\n      ownerOnly: true\n", `audit deny other "/*/*/nc" mx,`},
		{"  network:\n    matchProtocols:\n    - protocol: raw\n", `audit deny network inet raw,|audit deny network inet6 raw,|audit deny network packet raw,|audit deny network packet packet,`},
		{"  network:\n    matchProtocols:\n    - protocol: tcp\n      action: Audit\n", `audit network inet stream,|audit network inet6 stream,`},
		{"  network:\n    matchProtocols:\n    - protocol: all\n      action: Allow\n", `network inet,|network inet6,|network packet,`},
		{"  capabilities:\n    matchCapabilities:\n    - capability: CAP_SYS_ADMIN\n", `audit deny capability sys_admin,`},
		{"  capabilities:\n    matchCapabilities:\n    - capability: chown\n      action: Audit\n", `audit capability chown,`},
	} {
		_, lines := oneRule(t, c.spec, auditPostures)
		if got := strings.Join(lines, "|"); got != c.want {
			t.Errorf("%s\ngot  %s\nwant %s", c.spec, got, c.want)
		}
	}
}

// TestPostures: a class allows what no rule matches unless it is in
// allow-list mode with a Block posture; process and file share AppArmor's
// file rules (x for one, the rest for the other).
func TestPostures(t *testing.T) {
	block := policy.Postures{File: policy.Block, Network: policy.Block, Capabilities: policy.Block}
	has := func(p Profile, line string) bool {
		for _, l := range strings.Split(p.Text, "\n") {
			if strings.TrimSpace(l) == line || strings.HasPrefix(strings.TrimSpace(l), line+"  #") {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		spec     string
		postures policy.Postures
		has      []string
		hasNot   []string
		unlogged []policy.Class
	}{
		{"  process:\n    matchPaths:\n    - path: /bin/app\n      action: Allow\n", block,
			[]string{`"/{,**}" rwlkm,`, `network,`, `capability,`}, []string{`file,`}, nil},
		{"  file:\n    matchPaths:\n    - path: /etc/app\n      action: Allow\n", block,
			[]string{`"/{,**}" ix,`}, []string{`file,`}, nil},
		{"  process:\n    matchPaths:\n    - path: /bin/app\n      action: Allow\n  file:\n    matchPaths:\n    - path: /etc/app\n      action: Allow\n", block,
			nil, []string{`file,`, `"/{,**}" ix,`, `"/{,**}" rwlkm,`}, nil},
		{"  process:\n    matchPaths:\n    - path: /bin/app\n      action: Allow\n", auditPostures,
			[]string{`file,`}, nil, []policy.Class{policy.ClassProcess}},
		{"  network:\n    matchProtocols:\n    - protocol: tcp\n      action: Allow\n", block,
			[]string{`network inet stream,`}, []string{`network,`}, nil},
		{"  capabilities:\n    matchCapabilities:\n    - capability: chown\n      action: Allow\n", block,
			[]string{`capability chown,`}, []string{`capability,`}, nil},
		{"  capabilities:\n    matchCapabilities:\n    - capability: chown\n      action: Allow\n", auditPostures,
			[]string{`capability,`}, nil, []policy.Class{policy.ClassCapabilities}},
	} {
		p, _ := oneRule(t, c.spec, c.postures)
		for _, l := range c.has {
			if !has(p, l) {
				t.Errorf("%s: no line %s:\n%s", c.spec, l, p.Text)
			}
		}
		for _, l := range c.hasNot {
			if has(p, l) {
				t.Errorf("%s: line %s:\n%s", c.spec, l, p.Text)
			}
		}
		if fmt.Sprint(p.Unlogged) != fmt.Sprint(c.unlogged) {
			t.Errorf("%s: unlogged %v, want %v", c.spec, p.Unlogged, c.unlogged)
		}
	}
	// Under a Block posture the families no rule covers stay allowed.
	p, _ := oneRule(t, "  network:\n    matchProtocols:\n    - protocol: udp\n      action: Allow\n", block)
	m := parseModel(t, p.Text)
	for _, c := range []struct {
		family, kind string
		want         policy.Action
	}{{"unix", "stream", policy.Allow}, {"netlink", "raw", policy.Allow}, {"inet", "dgram", policy.Allow}, {"inet", "stream", policy.Block}, {"packet", "raw", policy.Block}} {
		if got := m.socket(c.family, c.kind).action; got != c.want {
			t.Errorf("%s %s: %s, want %s", c.family, c.kind, got, c.want)
		}
	}
}

// TestUnenforced: what the profile cannot express is reported, with why.
func TestUnenforced(t *testing.T) {
	block := policy.Postures{File: policy.Block, Network: policy.Block, Capabilities: policy.Block}
	for _, c := range []struct {
		spec     string
		postures policy.Postures
		partial  bool
		reason   string
	}{
		{"  process:\n    matchPaths:\n    - path: /usr/bin/curl\n      fromSource:\n      - path: /bin/sh\n", auditPostures, false, "not applied, armor-tracer reports"},
		{"  process:\n    matchPaths:\n    - path: /usr/bin/python3\n", auditPostures, true, "script's interpreter (#!), or run by the runtime itself"},
		{"  process:\n    matchDirectories:\n    - dir: /usr/bin/\n      action: Audit\n", auditPostures, true, "or by the runtime itself, is not logged"},
		{"  process:\n    matchPaths:\n    - path: /usr/bin/python3\n      action: Allow\n", auditPostures, false, ""},
		{"  file:\n    matchDirectories:\n    - dir: /etc/app/\n      action: Allow\n      fromSource:\n      - path: /bin/app\n", block, false, "held to the other rules and the posture (stricter)"},
		{"  network:\n    matchProtocols:\n    - protocol: icmp\n      fromSource:\n      - path: /bin/ping\n", auditPostures, false, "fromSource"},
		{"  capabilities:\n    matchCapabilities:\n    - capability: net_raw\n      fromSource:\n      - path: /bin/ping\n", auditPostures, false, "fromSource"},
		{"  syscalls:\n    matchSyscalls:\n    - syscall: [unlink]\n", auditPostures, false, "seccomp"},
		{"  network:\n    matchProtocols:\n    - protocol: dccp\n", auditPostures, false, "no name for DCCP"},
		{"  network:\n    matchProtocols:\n    - protocol: tcp\n", auditPostures, true, "not on raw sockets"},
		{"  network:\n    matchProtocols:\n    - protocol: udp\n      action: Allow\n", block, true, "does not hold for every datagram socket"},
		{"  network:\n    matchProtocols:\n    - protocol: icmp\n      action: Allow\n", auditPostures, false, ""},
		{"  file:\n    matchPatterns:\n    - pattern: /etc/{a,b/c}\n", auditPostures, false, "a '/' inside a {…} group"},
		{"  file:\n    matchPatterns:\n    - pattern: /etc/{,x}\n", auditPostures, false, "may be empty"},
		{"  file:\n    matchPatterns:\n    - pattern: \"{/etc,/usr}/x\"\n", auditPostures, false, "does not start with '/'"},
	} {
		p, _ := oneRule(t, c.spec, c.postures)
		if c.reason == "" {
			if len(p.Unenforced) != 0 {
				t.Errorf("%s: unenforced %+v", c.spec, p.Unenforced)
			}
			continue
		}
		if len(p.Unenforced) != 1 || p.Unenforced[0].Partial != c.partial || !strings.Contains(p.Unenforced[0].Reason, c.reason) {
			t.Errorf("%s: got %+v, want partial %t, %q", c.spec, p.Unenforced, c.partial, c.reason)
		}
	}
}

// TestInjection: no rule text can end a rule: what could is refused, by
// the loader and by the compiler, and every other character is written so
// that the rule matches that path and nothing more.
func TestInjection(t *testing.T) {
	rule := func(m policy.Match) *policy.RuleSet {
		rs := &policy.RuleSet{}
		rs.File.Rules = []*policy.Rule{{ID: 1, Class: policy.ClassFile, Action: policy.Block, Match: m, Origin: "KubeArmorPolicy/ns/p", Field: "spec.file.matchPaths[0]"}}
		return rs
	}
	for _, bad := range []string{"/etc/x r, /** rwlkm,", "/etc/x\" r,", "/etc/x # c", "/etc/x\n/** rwlkm,", "/etc/\x01x", "/etc/x\x00"} {
		for _, m := range []policy.Match{{Type: policy.MatchPath, Value: bad}, {Type: policy.MatchDir, Value: bad + "/"}, {Type: policy.MatchPattern, Value: bad}} {
			if _, err := Compile("nri-armor.t", rule(m), nil); err == nil || !strings.Contains(err.Error(), "KubeArmorPolicy/ns/p spec.file.matchPaths[0]") {
				t.Errorf("%+v: got %v, want an error naming the rule", m, err)
			}
		}
		res := policy.LoadBytes("p.yaml", []byte(fmt.Sprintf("apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: p, namespace: ns}\nspec:\n  selector: {matchLabels: {a: b}}\n  file:\n    matchPaths:\n    - path: %q\n", bad)))
		if err := res.Err(); err == nil || !strings.HasPrefix(err.Error(), "p.yaml:8: spec.file.matchPaths[0].path: ") {
			t.Errorf("%q: loader: %v", bad, err)
		}
	}
	// Characters the parser would read as globs, escapes or variables: a
	// Block on that path blocks that path only.
	for _, odd := range []string{`/t/a*b`, `/t/a?`, `/t/[ab]`, `/t/{a}b`, `/t/@{HOME}`, `/t/a\`, `/t/a\*`, `/t/x@`, `/t/$a^b.c+d|e(f)`, "/t/caf\xc3\xa9", `/t/a b`} {
		rs := rule(policy.Match{Type: policy.MatchPath, Value: odd})
		rs.File.AllowList, rs.File.Posture = false, ""
		p := compiled(t, rs, nil)
		m := parseModel(t, p.Text)
		for _, name := range []string{odd, odd + "/", "/t/a", "/t/ab", "/t/a*", "/t/axb", "/t/{a,b}x", "/t/a\\b", "/t/HOME", "/t/a"} {
			want := policy.Allow
			if name == odd || name == odd+"/" {
				want = policy.Block
			}
			if got := m.file(name, false, "r").action; got != want {
				t.Errorf("rule on %q, read %q: %s, want %s\n%s", odd, name, got, want, p.Text)
			}
		}
	}
	if _, err := Compile(`x", peer=unconfined`, &policy.RuleSet{}, nil); err == nil {
		t.Error("a profile name with a quote was accepted")
	}
}

// TestBase: the runtime's default profile, in effect.
func TestBase(t *testing.T) {
	p := compiled(t, &policy.RuleSet{}, nil)
	m := parseModel(t, p.Text)
	for _, c := range []struct {
		name, req string
		want      policy.Action
	}{
		{"/proc/1/attr/current", "w", policy.Allow},
		{"/proc/4242/task/4243/comm", "w", policy.Allow},
		{"/proc/sys/kernel/shmmax", "w", policy.Allow},
		{"/proc/sys/kernel/shm_rmid_forced", "w", policy.Allow},
		{"/proc/meminfo", "r", policy.Allow},
		{"/proc/meminfo", "w", policy.Block},
		{"/proc/sys/net/ipv4/ip_forward", "w", policy.Block},
		{"/proc/sys/kernel/core_pattern", "w", policy.Block},
		{"/proc/sys/kernel/sysrq", "w", policy.Block},
		{"/proc/sys/vm/drop_caches", "w", policy.Block},
		{"/proc/sysvipc/shm", "w", policy.Block},
		{"/proc/net/dev", "w", policy.Block},
		{"/proc/sysrq-trigger", "w", policy.Block},
		{"/proc/kcore", "r", policy.Block},
		{"/sys/fs/cgroup/memory.max", "w", policy.Allow},
		{"/sys/fs/bpf/x", "w", policy.Block},
		{"/sys/class/net/eth0/mtu", "w", policy.Block},
		{"/sys/kernel/mm/ksm/run", "w", policy.Block},
		{"/sys/class/net/eth0/mtu", "r", policy.Allow},
		{"/sys/firmware/efi/x", "r", policy.Block},
		{"/sys/kernel/security/apparmor/profiles", "r", policy.Block},
		{"/sys/devices/virtual/powercap/x", "r", policy.Block},
		{"/etc/passwd", "w", policy.Allow},
		{"/usr/bin/sh", "x", policy.Allow},
	} {
		if got := m.file(c.name, true, c.req).action; got != c.want {
			t.Errorf("%s %s: %s, want %s", c.req, c.name, got, c.want)
		}
	}
	for _, l := range []string{"deny mount,", "umount,", `signal (send,receive) peer="nri-armor.*",`, `ptrace (trace,tracedby,read,readby) peer="nri-armor.*",`, "signal (receive) peer=runc,"} {
		if !strings.Contains(p.Text, "  "+l+"\n") {
			t.Errorf("no %s", l)
		}
	}
}

// TestRawRules: raw AppArmor rules are placed in the body under their
// policy's name; rules that could leave it are refused with the file and
// line.
func TestRawRules(t *testing.T) {
	src := policy.TextSource{File: "p.yaml", Line: 10, Exact: true}
	p := compiled(t, &policy.RuleSet{}, []RawRules{{Origin: "KubeArmorPolicy/ns/p", Source: src, Text: "deny /etc/secret r,\nnetwork inet stream,\n"}})
	if !strings.Contains(p.Text, "  # spec.apparmor of KubeArmorPolicy/ns/p (p.yaml:10)\n  deny /etc/secret r,\n  network inet stream,\n}\n") {
		t.Fatalf("raw rules not placed:\n%s", p.Text)
	}
	_, err := Compile("nri-armor.t", &policy.RuleSet{}, []RawRules{{Origin: "KubeArmorPolicy/ns/p", Source: src, Text: "file,\n}\nprofile evil {\n"}})
	if err == nil || !strings.HasPrefix(err.Error(), "p.yaml:11: spec.apparmor of KubeArmorPolicy/ns/p: line 2") {
		t.Fatalf("got %v", err)
	}
	pols := policytest.Load(t, "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: p, namespace: ns}\nspec:\n  selector: {matchLabels: {a: b}}\n  apparmor: |\n    deny /x r,\n")
	if raw := RawRulesOf(pols); len(raw) != 1 || raw[0].Source != (policy.TextSource{File: "test.yaml", Line: 7, Exact: true}) || raw[0].Text != "deny /x r,\n" {
		t.Fatalf("RawRulesOf: %+v", raw)
	}
}

// TestCorpus: every valid container policy of the shared corpus compiles
// to a profile apparmor_parser accepts (host policies have no profile).
// With Block postures: a class in allow-list mode lists what it allows
// (under an Audit posture it is allowed all, as a class without Allow
// rules is). Profiles alike but for their name are checked once.
func TestCorpus(t *testing.T) {
	requireParser(t)
	dir := testenv.Corpus(t)
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && policy.IsPolicyFile(path) {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	block := policy.Postures{File: policy.Block, Network: policy.Block, Capabilities: policy.Block}
	seen := map[string]bool{}
	n := 0
	for _, f := range files {
		res := policy.LoadFile(f)
		if res.Status() != policy.FileValid {
			continue
		}
		var pols []*policy.Policy
		for _, p := range res.Policies {
			if p.Kind != policy.KindHostPolicy {
				pols = append(pols, p)
			}
		}
		if len(pols) == 0 {
			continue
		}
		rs := policy.Compile(pols, policy.Options{Mode: policy.ModeEnforce, Postures: block})
		p, err := Compile("nri-armor.corpus", rs, RawRulesOf(pols))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		n++
		if key := p.Text[strings.Index(p.Text, "\nprofile "):]; !seen[key] {
			seen[key] = true
			compiled(t, rs, RawRulesOf(pols))
		}
	}
	if n == 0 {
		t.Fatal("no valid container policy in the corpus")
	}
	t.Logf("%d files, %d policies' profiles, %d distinct", len(files), n, len(seen))
}
