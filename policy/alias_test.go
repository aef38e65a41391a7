package policy_test

import (
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/policy"
)

const aliasDoc = `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: no-shell, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  severity: 7
  process:
    matchPaths:
    - path: /bin/sh
    - path: /usr/bin/env
    matchDirectories:
    - dir: /sbin/
      recursive: true
    matchPatterns:
    - pattern: /bin/*sh
  file:
    matchPaths:
    - path: /etc/shadow
      readOnly: true
      fromSource: [{path: /usr/bin/python3}]
  network:
    matchProtocols:
    - protocol: raw
      fromSource: [{path: /usr/bin/python3}]
  action: Block
`

// links is the merged-/usr image's view of the rule paths.
var links = map[string]string{
	"/bin/sh":          "/usr/bin/dash",
	"/sbin":            "/usr/sbin",
	"/usr/bin/python3": "/usr/bin/python3.11",
}

func TestAliased(t *testing.T) {
	rs := policytest.Compile(t, aliasDoc)
	al := rs.Aliased(func(p string) string { return links[p] })
	if al == rs || al.Digest == rs.Digest {
		t.Fatal("Aliased returned the compiled set: no alias made")
	}
	// An exec of the resolved file is refused by the rule the user wrote.
	for _, tc := range []struct {
		ev           policy.Event
		field, alias string
	}{
		{policy.Event{Class: policy.ClassProcess, Path: "/usr/bin/dash"}, "spec.process.matchPaths[0]", "/bin/sh"},
		{policy.Event{Class: policy.ClassProcess, Path: "/usr/sbin/x/y"}, "spec.process.matchDirectories[0]", "/sbin/"},
		{policy.Event{Class: policy.ClassFile, Path: "/etc/shadow", Write: true, Source: "/usr/bin/python3.11"}, "spec.file.matchPaths[0]", ""},
		{policy.Event{Class: policy.ClassNetwork, Protocol: "raw", SocketType: "raw", Source: "/usr/bin/python3.11"}, "spec.network.matchProtocols[0]", ""},
	} {
		d := policy.Decide(al, tc.ev)
		if d.Action != policy.Block || d.Rule == nil || d.Rule.Policy != "no-shell" || d.Rule.Field != tc.field || d.Rule.Severity != 7 || d.Rule.ResolvedFrom != tc.alias {
			t.Errorf("Decide(%+v) = %s by %+v; want Block by no-shell %s (severity 7, resolved from %q)", tc.ev, d.Action, d.Rule, tc.field, tc.alias)
		}
		if before := policy.Decide(rs, tc.ev); before.Action == policy.Block {
			t.Errorf("without aliases %+v is already blocked: the case proves nothing", tc.ev)
		}
	}
	// The names written still match; the pattern and /usr/bin/env have no alias.
	if d := policy.Decide(al, policy.Event{Class: policy.ClassProcess, Path: "/bin/sh"}); d.Action != policy.Block {
		t.Errorf("/bin/sh: %s, want Block", d.Action)
	}
	var aliases []string
	for _, r := range al.Aliases() {
		aliases = append(aliases, r.Describe())
	}
	want := []string{
		"path /usr/bin/dash (alias: /bin/sh resolves to it)",
		"dir /usr/sbin/ recursive (alias: /sbin/ resolves to it)",
		"path /etc/shadow readOnly fromSource=/usr/bin/python3,/usr/bin/python3.11",
		"protocol raw fromSource=/usr/bin/python3,/usr/bin/python3.11",
		// The sources' guards (guard.go), one per rule that names them.
		"path /usr/bin/python3.11 readOnly (guards a fromSource program) (alias: /usr/bin/python3 resolves to it)",
		"path /usr/bin/python3.11 readOnly (guards a fromSource program) (alias: /usr/bin/python3 resolves to it)",
	}
	if len(aliases) != len(want) {
		t.Fatalf("aliases:\n%q\nwant\n%q", aliases, want)
	}
	for _, w := range want {
		found := false
		for _, a := range aliases {
			found = found || a == w
		}
		if !found {
			t.Errorf("no alias %q in %q", w, aliases)
		}
	}
}

// TestAliasedNone: without a link the compiled set itself is returned, so
// containers of images without links share it.
func TestAliasedNone(t *testing.T) {
	rs := policytest.Compile(t, aliasDoc)
	if al := rs.Aliased(func(string) string { return "" }); al != rs {
		t.Errorf("Aliased with no link made a new set %s", al.ShortDigest())
	}
}

// TestValidateHintsSymlinkedPaths: paths images commonly link get a
// hint (never an error nor a warning) naming the field.
func TestValidateHintsSymlinkedPaths(t *testing.T) {
	res := policy.LoadBytes("no-shell.yaml", []byte(aliasDoc))
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	var warned []string
	for _, i := range res.Issues {
		if i.Level == policy.LevelHint && strings.Contains(i.Message, "symlink") {
			warned = append(warned, i.Field)
		}
	}
	want := []string{
		"spec.process.matchPaths[0].path",
		"spec.process.matchDirectories[0].dir",
		"spec.file.matchPaths[0].fromSource[0].path",
		"spec.network.matchProtocols[0].fromSource[0].path",
	}
	if strings.Join(warned, " ") != strings.Join(want, " ") {
		t.Errorf("warned about %q, want %q", warned, want)
	}
}
