package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
)

// checkPolicies: pod app=web gets rules with every modifier and network
// rules; pod app=allow is in allow-list mode for file and network.
const checkPolicies = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: mods
  namespace: shop
spec:
  selector:
    matchLabels:
      app: web
  file:
    matchDirectories:
    - dir: /data/
      ownerOnly: true
    - dir: /etc/
      readOnly: true
    - dir: /srv/
    matchPaths:
    - path: /run/secret
      fromSource:
      - path: /bin/sh
    - path: /etc/shadow
      action: Audit
  network:
    matchProtocols:
    - protocol: packet
    - protocol: tcp
      action: Audit
  capabilities:
    matchCapabilities:
    - capability: net_raw
  action: Block
---
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: allowlist
  namespace: shop
spec:
  selector:
    matchLabels:
      app: allow
  file:
    matchDirectories:
    - dir: /app/
      recursive: true
  network:
    matchProtocols:
    - protocol: udp
  action: Allow
`

// apparmorOnly selects app=web but has nothing nri-armor enforces.
const apparmorOnly = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: aa-only
  namespace: shop
spec:
  selector:
    matchLabels:
      app: web
  apparmor: |
    deny /etc/** w,
`

type checkCase struct {
	name           string
	args           []string
	code           int
	stdout, stderr []string // each must appear
	notOut, notErr []string // none may appear
}

func runCheckCases(t *testing.T, cases []checkCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := armorctl(t, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d", code, c.code)
			}
			for _, w := range c.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q", w)
				}
			}
			for _, w := range c.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q", w)
				}
			}
			for _, w := range c.notOut {
				if strings.Contains(out, w) {
					t.Errorf("stdout has %q", w)
				}
			}
			for _, w := range c.notErr {
				if strings.Contains(errOut, w) {
					t.Errorf("stderr has %q", w)
				}
			}
			if t.Failed() {
				t.Logf("armorctl %s\nstdout:\n%s\nstderr:\n%s", strings.Join(c.args, " "), out, errOut)
			}
		})
	}
}

// checkArgs returns the arguments of `armorctl check` for pod app=LABEL in
// namespace shop, then extra.
func checkArgs(policies, label string, extra ...string) []string {
	return append([]string{"check", "--policies", policies, "--namespace", "shop", "--labels", "app=" + label}, extra...)
}

// TestCheckOwnerOnly: --uid and --owner have no default that an ownerOnly
// rule could silently read as "the owner".
func TestCheckOwnerOnly(t *testing.T) {
	p := testenv.WriteFile(t, t.TempDir(), "p.yaml", checkPolicies)
	web := func(extra ...string) []string { return checkArgs(p, "web", extra...) }
	runCheckCases(t, []checkCase{
		{name: "ownership decides, not given: both outcomes, usage error",
			args: web("--op", "file", "--path", "/data/x"), code: 2,
			stderr: []string{"depends on who owns /data/x", "Allow (no rule applies) if the acting uid owns it",
				"(KubeArmorPolicy/shop/mods spec.file.matchDirectories[0]) if not", "give --uid and --owner"}},
		{name: "only --uid given", args: web("--op", "file", "--path", "/data/x", "--uid", "0"), code: 2, stderr: []string{"give --uid and --owner"}},
		{name: "root owns the file: exempt, and told why",
			args: web("--op", "file", "--path", "/data/x", "--uid", "0", "--owner", "0"), code: 0,
			stdout: []string{"Allow: no rule applies", "ownerOnly: the owner is exempt from Block (uid 0 owns /data/x)"}},
		{name: "root does not own the file",
			args: web("--op", "file", "--path", "/data/x", "--uid", "0", "--owner", "1000"), code: 4, stdout: []string{"Block by rule #", "dir /data/ ownerOnly"}},
		{name: "ownership does not matter: no flags needed",
			args: web("--op", "file", "--path", "/srv/x"), code: 4, stdout: []string{"Block by rule #"}},
	})
	out, _, _ := armorctl(t, web("--op", "file", "--path", "/srv/x", "-o", "json")...)
	var v struct{ Ownership string }
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Ownership != "unknown" {
		t.Fatalf("ownership %q (%v), want unknown:\n%s", v.Ownership, err, out)
	}
}

// TestCheckNearMiss: a rule that matched but that a modifier exempted is
// named with the modifier, never reported as "no rule matched".
func TestCheckNearMiss(t *testing.T) {
	p := testenv.WriteFile(t, t.TempDir(), "p.yaml", checkPolicies)
	web := func(extra ...string) []string { return checkArgs(p, "web", extra...) }
	runCheckCases(t, []checkCase{
		{name: "readOnly: a read passes", args: web("--op", "file", "--path", "/etc/passwd"), code: 0,
			stdout: []string{"Allow: no rule applies (1 matched", "Block dir /etc/ readOnly", "readOnly: reads pass",
				"from KubeArmorPolicy/shop/mods spec.file.matchDirectories[1]"},
			notOut: []string{"no rule matched"}},
		{name: "fromSource: another executable", args: web("--op", "file", "--path", "/run/secret", "--source", "/bin/bash"), code: 0,
			stdout: []string{"Block path /run/secret fromSource=/bin/sh", "fromSource: the acting executable /bin/bash is not one of the rule's sources"}},
		{name: "fromSource: the executable", args: web("--op", "file", "--path", "/run/secret", "--source", "/bin/sh"), code: 4,
			stdout: []string{"Block by rule #"}, notOut: []string{"near miss"}},
		{name: "recursive: deeper than a flat directory", args: web("--op", "file", "--path", "/srv/a/b"), code: 0,
			stdout: []string{"Block dir /srv/", "recursive: /srv/ is not recursive"}},
		{name: "a rule decides, another is a near miss", args: web("--op", "file", "--path", "/etc/shadow"), code: 3,
			stdout: []string{"Audit by rule #", "near misses", "readOnly: reads pass"}},
		{name: "nothing matches", args: web("--op", "file", "--path", "/opt/x"), code: 0,
			stdout: []string{"Allow: no rule matched"}, notOut: []string{"near miss"}},
	})
	out, _, _ := armorctl(t, web("--op", "file", "--path", "/etc/passwd", "-o", "json")...)
	var v struct {
		Action     string
		Rule       *struct{}
		NearMisses []struct {
			Rule       struct{ Policy, Field string }
			Exemptions []struct{ Modifier, Reason string }
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Action != "Allow" || v.Rule != nil || len(v.NearMisses) != 1 || v.NearMisses[0].Rule.Policy != "mods" ||
		v.NearMisses[0].Rule.Field != "spec.file.matchDirectories[1]" || len(v.NearMisses[0].Exemptions) != 1 ||
		v.NearMisses[0].Exemptions[0].Modifier != "readOnly" {
		t.Fatalf("json near misses: %+v\n%s", v, out)
	}
}

// TestCheckWarnings: no policy selecting the pod, files that held no policy
// and policies that give no rule are said, on stderr and in -o json; explain
// says the same.
func TestCheckWarnings(t *testing.T) {
	dir := t.TempDir()
	p := testenv.WriteFile(t, dir, "p.yaml", checkPolicies)
	aa := testenv.WriteFile(t, dir, "aa.yaml", apparmorOnly)
	netpol := testenv.WriteFile(t, dir, "netpol.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\n")
	empty := testenv.WriteFile(t, dir, "empty/README", "")
	empty = strings.TrimSuffix(empty, "/README")
	file := []string{"--op", "file", "--path", "/opt/x"}
	runCheckCases(t, []checkCase{
		{name: "wrong namespace", args: append([]string{"check", "--policies", p, "--namespace", "other", "--labels", "app=web"}, file...), code: 0,
			stderr: []string{`armorctl check: warning: no policy selects the pod (namespace "other", labels "app=web"): the KubeArmorPolicies loaded are in namespace(s) shop`}},
		{name: "wrong labels", args: checkArgs(p, "db", file...), code: 0,
			stderr: []string{`warning: no policy selects the pod (namespace "shop", labels "app=db"): the KubeArmorPolicies of namespace "shop" (allowlist, mods) select other labels`}},
		{name: "a file that is no policy, a directory without one", args: checkArgs(p+","+netpol+","+empty, "web", file...), code: 0,
			stderr: []string{"warning: " + netpol + ":1: skipped: networking.k8s.io/v1 NetworkPolicy is not a KubeArmor policy",
				"warning: " + empty + ": no policy file"},
			notErr: []string{"no policy selects"}},
		{name: "a policy with only apparmor: rules", args: checkArgs(p+","+aa, "web", file...), code: 0,
			stderr: []string{"warning: KubeArmorPolicy/shop/aa-only applies to the pod but gives it no rule: its apparmor: rules are used by the AppArmor backend only"}},
		{name: "mode disabled", args: checkArgs(p, "web", append(file, "--annotations", "nri-armor.dev/mode=disabled", "--weaken-namespaces", "shop")...), code: 0,
			stderr: []string{"warning: mode disabled"}},
		{name: "mode disabled, not honoured outside weakenNamespaces", args: checkArgs(p, "web", append(file, "--annotations", "nri-armor.dev/mode=disabled")...),
			stderr: []string{`warning: annotation nri-armor.dev/mode="disabled": not honoured`}, notErr: []string{"warning: mode disabled"}},
		{name: "no warning when a policy selects the pod", args: checkArgs(p, "web", file...), code: 0, notErr: []string{"warning"}},
		{name: "explain: no policy selects the pod", args: []string{"explain", "--policies", p, "--namespace", "other"}, code: 0,
			stderr: []string{"armorctl explain: warning: no policy selects the pod"}, stdout: []string{"no rules"}},
		{name: "explain --host: no host policy", args: []string{"explain", "--policies", p, "--host"}, code: 0,
			stderr: []string{"warning: no host policy applies to the node: no KubeArmorHostPolicy was loaded"}},
	})
	for _, cmd := range [][]string{
		append([]string{"check", "-o", "json", "--policies", p + "," + netpol, "--namespace", "other"}, file...),
		{"explain", "-o", "json", "--policies", p + "," + netpol, "--namespace", "other"},
	} {
		out, _, _ := armorctl(t, cmd...)
		var v struct{ Warnings []string }
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Warnings) != 2 || !strings.Contains(v.Warnings[0], "skipped") || !strings.HasPrefix(v.Warnings[1], "no policy selects the pod") {
			t.Fatalf("%s -o json warnings: %q", cmd[0], v.Warnings)
		}
	}
}

// TestCheckEnums: every value a flag takes from a list is checked; a
// typo is a usage error, never an Allow.
func TestCheckEnums(t *testing.T) {
	p := testenv.WriteFile(t, t.TempDir(), "p.yaml", checkPolicies)
	web := func(extra ...string) []string { return checkArgs(p, "web", extra...) }
	runCheckCases(t, []checkCase{
		{name: "op", args: web("--op", "teleport"), code: 2, stderr: []string{`unknown --op "teleport"`}},
		{name: "protocol", args: web("--op", "network", "--protocol", "bogus"), code: 2, stderr: []string{`unknown --protocol "bogus" (dccp, dgram, icmp`}},
		{name: "protocol all is a rule's word, not a socket's", args: web("--op", "network", "--protocol", "all"), code: 2, stderr: []string{`unknown --protocol "all"`}},
		{name: "socket type", args: web("--op", "network", "--protocol", "tcp", "--socket-type", "streem"), code: 2, stderr: []string{`unknown --socket-type "streem"`}},
		{name: "family", args: web("--op", "network", "--family", "inet7", "--protocol", "tcp"), code: 2, stderr: []string{`unknown --family "inet7"`}},
		{name: "capability", args: web("--op", "capabilities", "--capability", "net_rawx"), code: 2, stderr: []string{`unknown --capability "net_rawx"`}},
		{name: "syscall", args: web("--op", "syscall", "--syscall", "teleport"), code: 2, stderr: []string{`unknown --syscall "teleport"`}},
		{name: "output", args: web("--op", "file", "--path", "/x", "-o", "yaml"), code: 2, stderr: []string{`-o must be text or json, got "yaml"`}},
		{name: "default mode", args: web("--op", "file", "--path", "/x", "--default-mode", "enforcing"), code: 2, stderr: []string{`--default-mode "enforcing": must be enforce, audit or disabled`}},
		{name: "default posture action", args: web("--op", "file", "--path", "/x", "--default-posture", "file=allow"), code: 2,
			stderr: []string{`--default-posture "file=allow": posture must be audit or block, got "allow"`}, notErr: []string{"annotation"}},
		{name: "a flag of another op", args: web("--op", "file", "--path", "/x", "--protocol", "tcp"), code: 2, stderr: []string{"--protocol: not for --op file"}},
		{name: "capability normalised", args: web("--op", "capabilities", "--capability", "CAP_NET_RAW"), code: 4, stdout: []string{"Block by rule #"}},
		{name: "syscall normalised", args: web("--op", "syscall", "--syscall", "PTRACE"), code: 0, stdout: []string{"Allow"}},
	})
}

// TestCheckFamily: --family names the socket's address family, as the
// kernel programs see it.
func TestCheckFamily(t *testing.T) {
	p := testenv.WriteFile(t, t.TempDir(), "p.yaml", checkPolicies)
	web := func(extra ...string) []string {
		return checkArgs(p, "web", append([]string{"--op", "network"}, extra...)...)
	}
	allow := func(extra ...string) []string {
		return checkArgs(p, "allow", append([]string{"--op", "network"}, extra...)...)
	}
	runCheckCases(t, []checkCase{
		{name: "unix: no network rule covers it", args: web("--family", "unix", "--socket-type", "stream"), code: 0,
			stdout: []string{"Allow: network rules do not cover unix sockets"}},
		{name: "unix in an allow-list class: still no posture", args: allow("--family", "AF_UNIX"), code: 0,
			stdout: []string{"do not cover unix sockets"}},
		{name: "packet", args: web("--family", "packet", "--socket-type", "raw"), code: 4,
			stdout: []string{"Block by rule #", "protocol packet"}},
		{name: "--protocol packet is the family", args: web("--protocol", "packet"), code: 4, stdout: []string{"protocol packet"}},
		{name: "inet6 tcp", args: web("--family", "inet6", "--protocol", "tcp"), code: 3, stdout: []string{"Audit by rule #", "protocol tcp"}},
		{name: "a stream socket is tcp, as in the kernel", args: web("--socket-type", "stream"), code: 3, stdout: []string{"protocol tcp"}},
		{name: "an IP protocol on a packet socket", args: web("--family", "packet", "--protocol", "tcp"), code: 2,
			stderr: []string{"--protocol tcp is an IP protocol: it needs --family inet or inet6, not packet"}},
		{name: "packet and another family", args: web("--family", "inet", "--protocol", "packet"), code: 2, stderr: []string{"packet is the packet family"}},
		{name: "inet needs a protocol", args: web("--family", "inet"), code: 2, stderr: []string{"needs --protocol or --socket-type"}},
	})
	out, _, _ := armorctl(t, web("-o", "json", "--family", "inet6", "--protocol", "udp")...)
	var v struct {
		Family string
		Event  struct{ Protocol, SocketType string }
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Family != "inet6" || v.Event.Protocol != "udp" || v.Event.SocketType != "dgram" {
		t.Fatalf("json family: %+v (%v)\n%s", v, err, out)
	}
}

// TestCheckDefaultPosture: --default-posture takes shorthands, and its
// errors name the flag.
func TestCheckDefaultPosture(t *testing.T) {
	p := testenv.WriteFile(t, t.TempDir(), "p.yaml", checkPolicies)
	allow := func(extra ...string) []string { return checkArgs(p, "allow", extra...) }
	file := []string{"--op", "file", "--path", "/etc/passwd"}
	tcp := []string{"--op", "network", "--protocol", "tcp"}
	runCheckCases(t, []checkCase{
		{name: "node default: audit", args: allow(file...), code: 3, stdout: []string{"Audit by DefaultPosture"}},
		{name: "block: every class", args: allow(append(file, "--default-posture", "block")...), code: 4, stdout: []string{"Block by DefaultPosture"}},
		{name: "block: network too", args: allow(append(tcp, "--default-posture", "Block")...), code: 4, stdout: []string{"Block by DefaultPosture"}},
		{name: "per class: file", args: allow(append(file, "--default-posture", "file=block,network=audit")...), code: 4},
		{name: "per class: network", args: allow(append(tcp, "--default-posture", "file=block,network=audit")...), code: 3},
		{name: "a bare action, then a class", args: allow(append(tcp, "--default-posture", "block,network=audit")...), code: 3},
		{name: "a pod annotation still wins, where the node lets it weaken", args: allow(append(file, "--default-posture", "block", "--annotations", "nri-armor.dev/posture=file=audit", "--weaken-namespaces", "shop")...), code: 3},
		{name: "a weakening pod annotation does not win elsewhere", args: allow(append(file, "--default-posture", "block", "--annotations", "nri-armor.dev/posture=file=audit")...), code: 4,
			stderr: []string{`annotation nri-armor.dev/posture="file=audit": not honoured`}},
		{name: "unknown class", args: allow(append(file, "--default-posture", "process=block")...), code: 2,
			stderr: []string{`--default-posture "process=block": unknown class "process" (use file, network or capabilities; process follows file)`},
			notErr: []string{"annotation"}},
		{name: "a bad pod annotation is still named as one", args: allow(append(file, "--annotations", "nri-armor.dev/posture=block")...), code: 1,
			stderr: []string{"annotation nri-armor.dev/posture="}},
	})
}

// TestCheckPaths: a relative or unresolved path would match no rule and
// say Allow; it is refused.
func TestCheckPaths(t *testing.T) {
	p := testenv.WriteFile(t, t.TempDir(), "p.yaml", checkPolicies)
	web := func(extra ...string) []string { return checkArgs(p, "web", extra...) }
	runCheckCases(t, []checkCase{
		{name: "relative --path", args: web("--op", "file", "--path", "srv/x"), code: 2, stderr: []string{`--path "srv/x": must be an absolute path`}},
		{name: "relative --path of a process", args: web("--op", "process", "--path", "./apt"), code: 2, stderr: []string{"must be an absolute path"}},
		{name: "relative syscall --path", args: web("--op", "syscall", "--syscall", "unlink", "--path", "x"), code: 2, stderr: []string{"must be an absolute path"}},
		{name: "dot-dot", args: web("--op", "file", "--path", "/etc/../srv/x"), code: 2, stderr: []string{"without . or .. components"}},
		{name: "relative --source", args: web("--op", "file", "--path", "/run/secret", "--source", "sh"), code: 2, stderr: []string{`--source "sh": must be an absolute path`}},
		{name: "absolute", args: web("--op", "file", "--path", "/srv/x"), code: 4},
	})
}

// TestCheckExitStatus: 0 Allow, 3 Audit, 4 Block; 1 an error, 2 a usage
// error; a verdict is never mistaken for an error.
func TestCheckExitStatus(t *testing.T) {
	dir := t.TempDir()
	p := testenv.WriteFile(t, dir, "p.yaml", checkPolicies)
	bad := testenv.WriteFile(t, dir, "bad.yaml", badPolicy)
	web := func(extra ...string) []string { return checkArgs(p, "web", extra...) }
	runCheckCases(t, []checkCase{
		{name: "Allow", args: web("--op", "file", "--path", "/opt/x"), code: 0, stdout: []string{"Allow"}},
		{name: "Audit", args: web("--op", "file", "--path", "/etc/shadow"), code: 3, stdout: []string{"Audit"}},
		{name: "Block", args: web("--op", "file", "--path", "/srv/x"), code: 4, stdout: []string{"Block"}},
		{name: "Block, json", args: web("--op", "file", "--path", "/srv/x", "-o", "json"), code: 4, stdout: []string{`"action": "Block"`}},
		{name: "invalid policy file", args: checkArgs(p+","+bad, "web", "--op", "file", "--path", "/srv/x"), code: 1, stderr: []string{"nothing compiled"}},
		{name: "unknown policy named by the pod", args: web("--op", "file", "--path", "/srv/x", "--annotations", "nri-armor.dev/policies=nope"), code: 1},
		{name: "usage: missing --path", args: web("--op", "file"), code: 2, stderr: []string{"--op file needs --path"}},
		{name: "usage: no --policies", args: []string{"check", "--op", "file", "--path", "/x"}, code: 2, stderr: []string{"--policies is required"}},
		{name: "usage: stray argument", args: web("--op", "file", "--path", "/x", "extra"), code: 2, stderr: []string{`unexpected argument "extra"`}},
		{name: "usage: unknown flag", args: web("--op", "file", "--path", "/x", "--nope"), code: 2},
	})
}
