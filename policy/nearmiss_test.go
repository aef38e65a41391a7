package policy

import (
	"strings"
	"testing"
)

var nearMissYAML = utDocs(
	utKSP("mods", `file:
  matchPaths:
  - path: /data/secret
    ownerOnly: true
  - path: /etc/hosts
    readOnly: true
  - path: /run/token
    fromSource:
    - path: /bin/sh
  - path: /srv/both
    readOnly: true
    ownerOnly: true
  matchDirectories:
  - dir: /var/log/
  - dir: /home/
    ownerOnly: true
    action: Allow
process:
  matchPaths:
  - path: /usr/bin/curl
    ownerOnly: true
syscalls:
  matchPaths:
  - path: /etc/
    syscall: [unlink]
    action: Block
action: Block
`))

// TestNearMisses: a rule whose matcher covers the event but whose
// modifiers exempt it is a near miss, naming each modifier.
func TestNearMisses(t *testing.T) {
	rs := utRuleSet(t, nearMissYAML, nil)
	for _, c := range []struct {
		name  string
		ev    Event
		field string // the near miss's rule; "" for none
		mods  string // its exempting modifiers, comma-separated
	}{
		{"ownerOnly block: the owner", evAs(evRead("/data/secret"), 7, 7), "spec.file.matchPaths[0]", "ownerOnly"},
		{"ownerOnly block: another uid is blocked", evAs(evRead("/data/secret"), 8, 7), "", ""},
		{"readOnly block: a read", evRead("/etc/hosts"), "spec.file.matchPaths[1]", "readOnly"},
		{"readOnly block: a write is blocked", evWrite("/etc/hosts"), "", ""},
		{"fromSource: no source", evRead("/run/token"), "spec.file.matchPaths[2]", "fromSource"},
		{"fromSource: another source", evFrom(evRead("/run/token"), "/bin/bash"), "spec.file.matchPaths[2]", "fromSource"},
		{"two modifiers: the owner reads", evAs(evRead("/srv/both"), 1, 1), "spec.file.matchPaths[3]", "ownerOnly+readOnly"},
		{"not recursive", evRead("/var/log/nginx/access.log"), "spec.file.matchDirectories[0]", "recursive"},
		{"ownerOnly allow: another uid", evAs(evRead("/home/x"), 1, 2), "spec.file.matchDirectories[1]", "ownerOnly"},
		{"ownerOnly process", evAs(evExec("/usr/bin/curl"), 3, 3), "spec.process.matchPaths[0]", "ownerOnly"},
		{"syscall path: another file", evSys("unlink", "/tmp/x"), "spec.syscalls.matchPaths[0]", "path"},
		{"syscall path: deeper", evSys("unlink", "/etc/ssl/x"), "spec.syscalls.matchPaths[0]", "recursive"},
		{"syscall path: none", evSys("unlink", ""), "spec.syscalls.matchPaths[0]", "path"},
		{"syscall path: covered", evSys("unlink", "/etc/passwd"), "", ""},
		{"nothing matches", evRead("/opt/x"), "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			misses := NearMisses(rs, c.ev)
			if c.field == "" {
				if len(misses) != 0 {
					t.Fatalf("near misses %+v, want none", misses)
				}
				return
			}
			if len(misses) != 1 {
				t.Fatalf("%d near misses %+v, want one", len(misses), misses)
			}
			m := misses[0]
			var mods []string
			for _, e := range m.Exemptions {
				mods = append(mods, e.Modifier)
				if e.Reason == "" {
					t.Errorf("exemption %s without a reason", e.Modifier)
				}
			}
			if m.Rule.Field != c.field || strings.Join(mods, ",") != c.mods {
				t.Fatalf("near miss %s exempted by %v, want %s by %s", m.Rule.Field, mods, c.field, c.mods)
			}
			if d := Decide(rs, c.ev); d.Rule == m.Rule {
				t.Fatalf("the near miss decided: %s", utDescribe(d))
			}
		})
	}
}

// TestExemptionsAgreeWithApplies: a rule has exemptions exactly when
// Applies says it does not apply, whatever the event.
func TestExemptionsAgreeWithApplies(t *testing.T) {
	rs := utRuleSet(t, nearMissYAML, nil)
	var events []Event
	for _, p := range []string{"/data/secret", "/etc/hosts", "/run/token", "/srv/both", "/home/x", "/usr/bin/curl", "/etc/passwd", "/tmp/x", ""} {
		for _, w := range []bool{false, true} {
			for _, src := range []string{"", "/bin/sh", "/bin/bash"} {
				for _, uid := range []uint32{1, 2} {
					for _, class := range []Class{ClassFile, ClassProcess, ClassSyscalls} {
						events = append(events, Event{Class: class, Path: p, Write: w, Source: src, UID: uid, Owner: 1, Syscall: "unlink"})
					}
				}
			}
		}
	}
	for _, ev := range events {
		for _, r := range rs.Class(ev.Class).Rules {
			if applies, ex := r.Applies(&ev), r.Exemptions(&ev); applies != (len(ex) == 0) {
				t.Errorf("rule #%d %s on %+v: Applies %t, exemptions %+v", r.ID, r.Describe(), ev, applies, ex)
			}
		}
	}
}
