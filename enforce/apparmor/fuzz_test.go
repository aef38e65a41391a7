package apparmor

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/policy"
)

// FuzzCompile feeds random paths, patterns, program names and raw
// AppArmor rules to the loader and to the compiler. Whatever the input,
// the result is a clean error (the loader's, naming the field, or the
// compiler's, naming the rule) or a profile that apparmor_parser accepts
// with both feature sets, and whose rules give Decide's verdicts: an
// injected path never becomes an allow-all.
func FuzzCompile(f *testing.F) {
	f.Add("/etc/x r, /** rwlkm,", "/etc/", "/var/**/*.{log,txt}", "curl", "deny /etc/shadow r,\n", "Allow", true, false)
	f.Add("/etc/x\" r,", "/etc/\n", "/*/nc", "a,b", "}\nprofile evil {\n", "Block", false, true)
	f.Add("/t/a*b?[c]{d,e}@{HOME}\\", "/t/x y/", "**/.bashrc", "n#c", "file,\n/bin/* px,\n", "Audit", true, true)
	f.Add("/t/caf\xc3\xa9", "/", "/proc/[0-9]*/m[!a]ps", "@", "network inet stream, # ok\n", "Allow", false, false)
	requireParser(f)
	check := Parser{}.RawChecker()
	f.Fuzz(func(t *testing.T, path, dir, pattern, execname, raw, action string, ownerOnly, readOnly bool) {
		// Through the loader, as the daemon and armorctl load policies.
		policy.SetAppArmorChecker(check)
		defer policy.SetAppArmorChecker(nil)
		doc := fmt.Sprintf(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: fz, namespace: ns}
spec:
  selector: {matchLabels: {a: b}}
  process:
    matchPaths:
    - execname: %q
      action: Allow
  file:
    matchPaths:
    - path: %q
      ownerOnly: %t
      readOnly: %t
    matchDirectories:
    - dir: %q
      action: Allow
    matchPatterns:
    - pattern: %q
  apparmor: %q
  action: %q
`, execname, path, ownerOnly, readOnly, dir, pattern, raw, action)
		res := policy.LoadBytes("fz.yaml", []byte(doc))
		if res.Status() == policy.FileValid {
			block := policy.Postures{File: policy.Block, Network: policy.Block, Capabilities: policy.Block}
			rs := policy.Compile(res.Policies, policy.Options{Mode: policy.ModeEnforce, Postures: block})
			compiled(t, rs, RawRulesOf(res.Policies)) // the parser must accept it
			p := compiled(t, rs, nil)
			differential(t, rs, p, parseModel(t, p.Text), fuzzEvents(path, dir, pattern, execname))
		} else if err := res.Err(); err != nil && !strings.HasPrefix(err.Error(), "fz.yaml:") {
			t.Fatalf("loader error without a line: %v", err)
		}

		// Straight to the compiler, as if the loader had let anything
		// through: a clean error, or a profile as above. Allow rules under
		// a Block posture (an injected allow-all would show), and Block
		// rules. Every profile of one input goes to one parser run.
		for i, m := range []policy.Match{
			{Type: policy.MatchPath, Value: path},
			{Type: policy.MatchDir, Value: dir, Recursive: readOnly},
			{Type: policy.MatchPattern, Value: pattern},
		} {
			for _, a := range []policy.Action{policy.Allow, policy.Block} {
				rs := &policy.RuleSet{}
				rs.File.Rules = []*policy.Rule{{ID: 1, Class: policy.ClassFile, Action: a, Match: m, OwnerOnly: ownerOnly, Origin: "KubeArmorPolicy/ns/fz", Field: "spec.file"}}
				rs.File.AllowList, rs.File.Posture = a == policy.Allow, policy.Block
				p, err := Compile(fmt.Sprintf("nri-armor.fuzz.%s%d", a, i), rs, nil)
				if err != nil {
					if !strings.Contains(err.Error(), "KubeArmorPolicy/ns/fz spec.file") {
						t.Fatalf("%+v: error without the rule: %v", m, err)
					}
					continue
				}
				if _, err := policy.CompileGlob(m.Value); m.Type == policy.MatchPattern && err != nil {
					t.Fatalf("%+v: invalid pattern compiled: %v", m, err)
				}
				queueParse(t, p.Text)
				differential(t, rs, p, parseModel(t, p.Text), fuzzEvents(path, dir, pattern, execname))
			}
		}
	})
}

// fuzzEvents are events on the fuzzed names and on a path no rule should
// reach (an allow-all would).
func fuzzEvents(path, dir, pattern, execname string) []event {
	var out []event
	names := []string{"/nri-armor-canary", "/nri-armor-canary/x", path, path + "/x", dir, dir + "x", dir + "x/y", "/" + execname, "/usr/bin/" + execname}
	if g, err := policy.CompileGlob(pattern); err == nil {
		names = append(names, g.Prefix, g.Prefix+"x", g.Prefix+"x/y")
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "/") || strings.IndexByte(n, 0) >= 0 {
			continue
		}
		// As the kernel names files: no "//", no trailing '/'.
		for strings.Contains(n, "//") {
			n = strings.ReplaceAll(n, "//", "/")
		}
		if n != "/" {
			n = strings.TrimSuffix(n, "/")
		}
		for _, write := range []bool{false, true} {
			for _, uid := range []uint32{0, 1} {
				ev := policy.Event{Class: policy.ClassFile, Path: n, Write: write, UID: uid}
				out = append(out, event{ev: ev, name: n})
				if n != "/" {
					out = append(out, event{ev: ev, name: n + "/", dirName: true})
				}
			}
		}
		out = append(out, event{ev: policy.Event{Class: policy.ClassProcess, Path: n}, name: n})
	}
	return out
}
