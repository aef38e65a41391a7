package policy

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// ---------------------------------------------------------------------------
// Shared helpers (used by decide_test.go, select_test.go, load_test.go and
// glob_test.go).
// ---------------------------------------------------------------------------

// utLoad loads YAML through the real loader and fails on any error.
func utLoad(t testing.TB, file, src string) []*Policy {
	t.Helper()
	res := LoadBytes(file, []byte(src))
	if err := res.Err(); err != nil {
		t.Fatalf("loading %s: %v\n--- yaml ---\n%s", file, err, src)
	}
	if res.Status() != FileValid {
		t.Fatalf("loading %s: status %s, issues %v", file, res.Status(), res.Issues)
	}
	return res.Policies
}

// utPod is the pod most tests decide for: namespace default, app=web,
// container "web".
func utPod(ann map[string]string) Pod {
	return Pod{Namespace: "default", Name: "web-0", Labels: map[string]string{"app": "web"}, Annotations: ann}
}

// utCompile builds a Catalog, resolves the container of pod and
// compiles its rule set as nri-armor does at container creation.
func utCompile(t testing.TB, policies []*Policy, pod Pod, container string) *RuleSet {
	t.Helper()
	cat, err := NewCatalog(policies)
	if err != nil {
		t.Fatalf("NewCatalog: %v", err)
	}
	// The pod's namespace may weaken protection: these tests are about
	// what the annotations mean, trust_test.go about who may use them.
	defaults := DefaultDefaults()
	defaults.WeakenNamespaces = []string{pod.Namespace}
	target, err := cat.Resolve(pod, container, defaults)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return Compile(target.Policies, target.Settings.Options())
}

// utRuleSet loads src and compiles the rule set of container "web" of
// utPod(ann).
func utRuleSet(t testing.TB, src string, ann map[string]string) *RuleSet {
	t.Helper()
	return utCompile(t, utLoad(t, "test.yaml", src), utPod(ann), "web")
}

// ksp returns a KubeArmorPolicy named name in namespace default selecting
// app=web; spec is the rest of the spec, written flush left.
func utKSP(name, spec string) string {
	return "apiVersion: security.kubearmor.com/v1\n" +
		"kind: KubeArmorPolicy\n" +
		"metadata:\n" +
		"  name: " + name + "\n" +
		"  namespace: default\n" +
		"spec:\n" +
		"  selector:\n" +
		"    matchLabels:\n" +
		"      app: web\n" +
		utIndent(spec, "  ")
}

func utIndent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.TrimSpace(l) != "" {
			b.WriteString(prefix)
		}
		b.WriteString(l)
		b.WriteString("\n")
	}
	return b.String()
}

// docs joins YAML documents into one multi-document file.
func utDocs(d ...string) string { return strings.Join(d, "---\n") }

// utWant is an expected decision: the action and what produced it.
type utWant struct {
	action  Action
	policy  string // metadata.name of the deciding rule; "" when no rule decided
	field   string // the deciding rule's field, e.g. spec.file.matchPaths[0]
	value   string // optional: the deciding rule's Match.Value
	posture bool   // DefaultPosture decided
}

func utRule(a Action, policy, field string) utWant {
	return utWant{action: a, policy: policy, field: field}
}
func utPosture(a Action) utWant { return utWant{action: a, posture: true} }

var utNoRule = utWant{action: Allow}

func utCheckDecision(t testing.TB, d Decision, w utWant) {
	t.Helper()
	if d.Action != w.action {
		t.Errorf("action = %s, want %s (decision %s)", d.Action, w.action, utDescribe(d))
	}
	if d.DefaultPosture != w.posture {
		t.Errorf("DefaultPosture = %v, want %v (decision %s)", d.DefaultPosture, w.posture, utDescribe(d))
	}
	switch {
	case w.policy == "":
		if d.Rule != nil {
			t.Errorf("decided by rule %s, want no rule", utDescribe(d))
		}
	case d.Rule == nil:
		t.Errorf("no rule decided, want %s %s", w.policy, w.field)
	default:
		if d.Rule.Policy != w.policy || d.Rule.Field != w.field {
			t.Errorf("decided by %s, want %s %s", utDescribe(d), w.policy, w.field)
		}
		if w.value != "" && d.Rule.Match.Value != w.value {
			t.Errorf("decided by %s, want match value %q", utDescribe(d), w.value)
		}
		if d.Rule.Action != d.Action {
			t.Errorf("decision action %s differs from its rule's action %s", d.Action, d.Rule.Action)
		}
	}
}

func utDescribe(d Decision) string {
	if d.Rule == nil {
		if d.DefaultPosture {
			return string(d.Action) + " by DefaultPosture"
		}
		return string(d.Action) + " by no rule"
	}
	r := d.Rule
	return string(d.Action) + " by " + r.Policy + " " + r.Field + " (" + string(r.Match.Type) + " " + r.Match.Value + ")"
}

// Event constructors.
func evRead(path string) Event { return Event{Class: ClassFile, Path: path, UID: 1000, Owner: 0} }
func evWrite(path string) Event {
	return Event{Class: ClassFile, Path: path, Write: true, UID: 1000, Owner: 0}
}
func evExec(path string) Event { return Event{Class: ClassProcess, Path: path, UID: 1000, Owner: 0} }
func evSock(proto string) Event {
	p, st := DefaultSocketType(proto)
	return Event{Class: ClassNetwork, Protocol: p, SocketType: st}
}
func evCap(name string) Event { return Event{Class: ClassCapabilities, Capability: name} }
func evSys(name, path string) Event {
	return Event{Class: ClassSyscalls, Syscall: name, Path: path}
}
func evFrom(ev Event, source string) Event { ev.Source = source; return ev }
func evAs(ev Event, uid, owner uint32) Event {
	ev.UID, ev.Owner = uid, owner
	return ev
}

// utDecideCase is one row of the decision tables.
type utDecideCase struct {
	name string
	yaml string
	ann  map[string]string
	ev   Event
	want utWant
}

func utRunDecide(t *testing.T, cases []utDecideCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := utRuleSet(t, c.yaml, c.ann)
			utCheckDecision(t, Decide(rs, c.ev), c.want)
		})
	}
}

// ---------------------------------------------------------------------------
// Inheritance
// ---------------------------------------------------------------------------

var inheritYAML = utDocs(
	utKSP("inherit", `severity: 3
tags: [spec-tag]
message: spec message
action: Audit
file:
  severity: 5
  tags: [file-tag]
  action: Block
  matchPaths:
  - path: /rule/level
    severity: 9
    tags: [rule-tag]
    message: rule message
    action: Allow
  - path: /section/level
  - path: /mixed/level
    message: rule only message
    severity: 7
process:
  matchPaths:
  - path: /bin/spec-level
network:
  message: network message
  matchProtocols:
  - protocol: udp
    action: Block
    tags: [udp-tag]
`),
	utKSP("no-action", `file:
  matchPaths:
  - path: /no/action
capabilities:
  matchCapabilities:
  - capability: net_raw
syscalls:
  matchSyscalls:
  - syscall: [ptrace]
`),
	utKSP("spec-allow", `action: Allow
severity: 2
process:
  matchDirectories:
  - dir: /opt/tools/
`),
)

func TestDecideInheritance(t *testing.T) {
	rs := utRuleSet(t, inheritYAML, nil)
	cases := []struct {
		name     string
		ev       Event
		want     utWant
		severity int
		tags     []string
		message  string
	}{
		{"all from rule", evRead("/rule/level"), utRule(Allow, "inherit", "spec.file.matchPaths[0]"), 9, []string{"rule-tag"}, "rule message"},
		{"action/severity/tags from section, message from spec", evRead("/section/level"), utRule(Block, "inherit", "spec.file.matchPaths[1]"), 5, []string{"file-tag"}, "spec message"},
		{"message and severity from rule, rest from section", evRead("/mixed/level"), utRule(Block, "inherit", "spec.file.matchPaths[2]"), 7, []string{"file-tag"}, "rule only message"},
		{"all from spec", evExec("/bin/spec-level"), utRule(Audit, "inherit", "spec.process.matchPaths[0]"), 3, []string{"spec-tag"}, "spec message"},
		{"rule action and tags, section message, spec severity", evSock("udp"), utRule(Block, "inherit", "spec.network.matchProtocols[0]"), 3, []string{"udp-tag"}, "network message"},
		{"empty action everywhere is Block (file)", evRead("/no/action"), utRule(Block, "no-action", "spec.file.matchPaths[0]"), 0, nil, ""},
		{"empty action everywhere is Block (capabilities)", evCap("CAP_NET_RAW"), utRule(Block, "no-action", "spec.capabilities.matchCapabilities[0]"), 0, nil, ""},
		{"empty action everywhere is Audit for syscalls (KubeArmor only audits them)", evSys("ptrace", ""), utRule(Audit, "no-action", "spec.syscalls.matchSyscalls[0]"), 0, nil, ""},
		{"spec action Allow reaches the rule", evExec("/opt/tools/x"), utRule(Allow, "spec-allow", "spec.process.matchDirectories[0]"), 2, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(rs, c.ev)
			utCheckDecision(t, d, c.want)
			if d.Rule == nil {
				return
			}
			if d.Rule.Severity != c.severity {
				t.Errorf("severity = %d, want %d", d.Rule.Severity, c.severity)
			}
			if !reflect.DeepEqual(d.Rule.Tags, c.tags) {
				t.Errorf("tags = %q, want %q", d.Rule.Tags, c.tags)
			}
			if d.Rule.Message != c.message {
				t.Errorf("message = %q, want %q", d.Rule.Message, c.message)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Allow-list mode, postures and modes
// ---------------------------------------------------------------------------

var (
	fileAllowYAML = utKSP("allow-app", `file:
  matchDirectories:
  - dir: /app/
    recursive: true
  action: Allow
`)
	processAllowYAML = utKSP("allow-proc", `process:
  matchPaths:
  - path: /bin/app
  action: Allow
`)
	networkAllowYAML = utKSP("allow-tcp", `network:
  matchProtocols:
  - protocol: tcp
  action: Allow
`)
	capsAllowYAML = utKSP("allow-bind", `capabilities:
  matchCapabilities:
  - capability: net_bind_service
  action: Allow
`)
	blockSecretYAML = utKSP("block-secret", `file:
  matchPaths:
  - path: /app/secret
  action: Block
`)
	allowAndBlockYAML = utDocs(fileAllowYAML, blockSecretYAML)
)

func utAnn(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestDecideAllowList(t *testing.T) {
	utRunDecide(t, []utDecideCase{
		// An Allow rule in file puts file in allow-list mode.
		{"file allow matches", fileAllowYAML, nil, evRead("/app/bin/run"), utRule(Allow, "allow-app", "spec.file.matchDirectories[0]")},
		{"file unmatched: default posture audit", fileAllowYAML, nil, evRead("/etc/passwd"), utPosture(Audit)},
		{"file unmatched: posture file=block", fileAllowYAML, utAnn(AnnotationPosture, "file=block"), evRead("/etc/passwd"), utPosture(Block)},
		{"file unmatched: write, posture file=block", fileAllowYAML, utAnn(AnnotationPosture, "file=block"), evWrite("/etc/passwd"), utPosture(Block)},
		{"file unmatched: kubearmor-file-posture block", fileAllowYAML, utAnn(KubeArmorFilePosture, "block"), evRead("/etc/passwd"), utPosture(Block)},
		{"file unmatched: network=block does not touch file", fileAllowYAML, utAnn(AnnotationPosture, "network=block,capabilities=block"), evRead("/etc/passwd"), utPosture(Audit)},
		// ... and only file.
		{"file allow: process not in allow-list", fileAllowYAML, utAnn(AnnotationPosture, "file=block"), evExec("/bin/sh"), utNoRule},
		{"file allow: network not in allow-list", fileAllowYAML, utAnn(AnnotationPosture, "file=block,network=block"), evSock("udp"), utNoRule},
		{"file allow: capabilities not in allow-list", fileAllowYAML, utAnn(AnnotationPosture, "file=block,capabilities=block"), evCap("sys_admin"), utNoRule},

		// Process follows the file posture.
		{"process allow matches", processAllowYAML, utAnn(AnnotationPosture, "file=block"), evExec("/bin/app"), utRule(Allow, "allow-proc", "spec.process.matchPaths[0]")},
		{"process unmatched: file posture block", processAllowYAML, utAnn(AnnotationPosture, "file=block,network=audit,capabilities=audit"), evExec("/bin/sh"), utPosture(Block)},
		{"process unmatched: file posture audit", processAllowYAML, utAnn(AnnotationPosture, "file=audit,network=block,capabilities=block"), evExec("/bin/sh"), utPosture(Audit)},
		{"process unmatched: default posture", processAllowYAML, nil, evExec("/bin/sh"), utPosture(Audit)},
		{"process allow: file itself not in allow-list", processAllowYAML, utAnn(AnnotationPosture, "file=block"), evRead("/etc/passwd"), utNoRule},

		// Network and capabilities have their own postures.
		{"network allow matches", networkAllowYAML, utAnn(AnnotationPosture, "network=block"), evSock("tcp"), utRule(Allow, "allow-tcp", "spec.network.matchProtocols[0]")},
		{"network unmatched: default audit", networkAllowYAML, nil, evSock("udp"), utPosture(Audit)},
		{"network unmatched: network=block", networkAllowYAML, utAnn(AnnotationPosture, "network=block"), evSock("udp"), utPosture(Block)},
		{"network unmatched: kubearmor-network-posture", networkAllowYAML, utAnn(KubeArmorNetworkPosture, "Block"), evSock("icmp"), utPosture(Block)},
		{"network unmatched: file=block does not touch network", networkAllowYAML, utAnn(AnnotationPosture, "file=block"), evSock("udp"), utPosture(Audit)},
		{"caps allow matches", capsAllowYAML, utAnn(AnnotationPosture, "capabilities=block"), evCap("CAP_NET_BIND_SERVICE"), utRule(Allow, "allow-bind", "spec.capabilities.matchCapabilities[0]")},
		{"caps unmatched: default audit", capsAllowYAML, nil, evCap("sys_admin"), utPosture(Audit)},
		{"caps unmatched: capabilities=block", capsAllowYAML, utAnn(AnnotationPosture, "capabilities=block"), evCap("sys_admin"), utPosture(Block)},
		{"caps unmatched: kubearmor-capabilities-posture", capsAllowYAML, utAnn(KubeArmorCapabilitiesPosture, "block"), evCap("sys_admin"), utPosture(Block)},
		{"caps unmatched: network=block does not touch caps", capsAllowYAML, utAnn(AnnotationPosture, "network=block"), evCap("sys_admin"), utPosture(Audit)},

		// Block rules still apply on top of allow-list mode.
		{"block on top of allow-list", allowAndBlockYAML, utAnn(AnnotationPosture, "file=block"), evRead("/app/secret"), utRule(Block, "block-secret", "spec.file.matchPaths[0]")},
		{"allowed next to the blocked file", allowAndBlockYAML, utAnn(AnnotationPosture, "file=block"), evRead("/app/public"), utRule(Allow, "allow-app", "spec.file.matchDirectories[0]")},
		{"block alone: no allow-list mode", blockSecretYAML, utAnn(AnnotationPosture, "file=block"), evRead("/etc/passwd"), utNoRule},

		// Audit mode: every Block becomes Audit, postures included.
		{"audit mode: posture block becomes audit", allowAndBlockYAML, utAnn(AnnotationPosture, "file=block", AnnotationMode, "audit"), evRead("/etc/passwd"), utPosture(Audit)},
		{"audit mode: block rule becomes audit", allowAndBlockYAML, utAnn(AnnotationPosture, "file=block", AnnotationMode, "audit"), evRead("/app/secret"), utRule(Audit, "block-secret", "spec.file.matchPaths[0]")},
		{"audit mode: allow stays allow", allowAndBlockYAML, utAnn(AnnotationMode, "audit"), evRead("/app/x"), utRule(Allow, "allow-app", "spec.file.matchDirectories[0]")},
		{"audit mode: process posture via file", processAllowYAML, utAnn(AnnotationPosture, "file=block", AnnotationMode, "Audit"), evExec("/bin/sh"), utPosture(Audit)},
		{"audit mode: network posture", networkAllowYAML, utAnn(AnnotationPosture, "network=block", AnnotationMode, "audit"), evSock("udp"), utPosture(Audit)},
		{"audit mode: capabilities posture", capsAllowYAML, utAnn(KubeArmorCapabilitiesPosture, "block", AnnotationMode, "audit"), evCap("sys_admin"), utPosture(Audit)},
		{"kubearmor-policy audited", allowAndBlockYAML, utAnn(KubeArmorPolicy, "audited", KubeArmorFilePosture, "block"), evRead("/app/secret"), utRule(Audit, "block-secret", "spec.file.matchPaths[0]")},
		{"kubearmor-policy audited: posture", allowAndBlockYAML, utAnn(KubeArmorPolicy, "audited", KubeArmorFilePosture, "block"), evRead("/etc/passwd"), utPosture(Audit)},
		{"audit mode for this container", allowAndBlockYAML, utAnn(AnnotationMode+".container.web", "audit"), evRead("/app/secret"), utRule(Audit, "block-secret", "spec.file.matchPaths[0]")},
		{"audit mode for another container", allowAndBlockYAML, utAnn(AnnotationMode+".container.sidecar", "audit"), evRead("/app/secret"), utRule(Block, "block-secret", "spec.file.matchPaths[0]")},
		{"nri-armor mode enforce beats kubearmor audited", allowAndBlockYAML, utAnn(KubeArmorPolicy, "audited", AnnotationMode, "enforce"), evRead("/app/secret"), utRule(Block, "block-secret", "spec.file.matchPaths[0]")},

		// Disabled mode: the set is empty.
		{"disabled: blocked file allowed", allowAndBlockYAML, utAnn(AnnotationMode, "disabled", AnnotationPosture, "file=block"), evRead("/app/secret"), utNoRule},
		{"disabled: no posture", allowAndBlockYAML, utAnn(AnnotationMode, "disabled", AnnotationPosture, "file=block"), evRead("/etc/passwd"), utNoRule},
		{"kubearmor-policy disabled", allowAndBlockYAML, utAnn(KubeArmorPolicy, "disabled", AnnotationPosture, "file=block"), evRead("/app/secret"), utNoRule},
	})
}

func TestCompileAllowListPerClass(t *testing.T) {
	type flags struct{ process, file, network, capabilities, syscalls bool }
	cases := []struct {
		name string
		yaml string
		want flags
	}{
		{"file allow", fileAllowYAML, flags{file: true}},
		{"process allow", processAllowYAML, flags{process: true}},
		{"network allow", networkAllowYAML, flags{network: true}},
		{"capabilities allow", capsAllowYAML, flags{capabilities: true}},
		{"block only", blockSecretYAML, flags{}},
		{"syscalls allow has no allow-list mode", utKSP("sys-allow", "syscalls:\n  matchSyscalls:\n  - syscall: [unlink]\n    action: Allow\n"), flags{}},
		{"all four", utDocs(fileAllowYAML, processAllowYAML, networkAllowYAML, capsAllowYAML), flags{true, true, true, true, false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := utRuleSet(t, c.yaml, utAnn(AnnotationPosture, "file=block,network=audit,capabilities=block"))
			got := flags{rs.Process.AllowList, rs.File.AllowList, rs.Network.AllowList, rs.Capabilities.AllowList, rs.Syscalls.AllowList}
			if got != c.want {
				t.Fatalf("allow-list flags = %+v, want %+v", got, c.want)
			}
			postures := map[Class]Action{ClassProcess: Block, ClassFile: Block, ClassNetwork: Audit, ClassCapabilities: Block}
			for cl, p := range postures {
				cr := rs.Class(cl)
				if cr.AllowList && cr.Posture != p {
					t.Errorf("%s posture = %q, want %q", cl, cr.Posture, p)
				}
				if !cr.AllowList && cr.Posture != "" {
					t.Errorf("%s not in allow-list mode but has posture %q", cl, cr.Posture)
				}
			}
		})
	}
}

func TestDisabledModeEmptySet(t *testing.T) {
	for _, a := range []map[string]string{
		utAnn(AnnotationMode, "disabled"),
		utAnn(AnnotationMode, " Disabled "),
		utAnn(KubeArmorPolicy, "disabled"),
		utAnn(AnnotationMode+".container.web", "disabled"),
	} {
		rs := utRuleSet(t, utDocs(allowAndBlockYAML, processAllowYAML, networkAllowYAML, capsAllowYAML), a)
		if !rs.Empty() || len(rs.Policies) != 0 {
			t.Errorf("%v: rule set not empty: %s", a, rs.JSON())
		}
		for _, c := range Classes {
			if rs.Class(c).AllowList {
				t.Errorf("%v: class %s in allow-list mode", a, c)
			}
		}
	}
	// Compile itself ignores policies in disabled mode too.
	pols := utLoad(t, "test.yaml", allowAndBlockYAML)
	if rs := Compile(pols, Options{Postures: Postures{File: Block}, Mode: ModeDisabled}); !rs.Empty() {
		t.Errorf("Compile in disabled mode gave rules: %s", rs.JSON())
	}
}

// ---------------------------------------------------------------------------
// Modifiers: fromSource, ownerOnly, readOnly, directories
// ---------------------------------------------------------------------------

var (
	fromSourceYAML = utDocs(
		utKSP("block-etc-app", `file:
  matchDirectories:
  - dir: /etc/app/
    recursive: true
  action: Block
`),
		utKSP("allow-etc-app-from-app", `file:
  matchDirectories:
  - dir: /etc/app/
    recursive: true
    fromSource:
    - path: /bin/app
  action: Allow
`),
		utKSP("block-shadow-from-cat", `file:
  matchPaths:
  - path: /etc/shadow
    fromSource:
    - path: /bin/cat
    - path: /usr/bin/cat
  action: Block
`),
		utKSP("allow-conf", `file:
  matchPaths:
  - path: /etc/app/conf
  action: Allow
`),
		utKSP("audit-conf-from-app", `file:
  matchPaths:
  - path: /etc/app/conf
    fromSource:
    - path: /bin/app
  action: Audit
`),
	)
	ownerOnlyBlockYAML = utDocs(
		utKSP("block-owner", `file:
  matchPaths:
  - path: /data/secret
    ownerOnly: true
  matchDirectories:
  - dir: /data/private/
    ownerOnly: true
  action: Block
`),
		utKSP("block-proc-owner", `process:
  matchPaths:
  - path: /usr/local/bin/tool
    ownerOnly: true
  action: Block
`),
	)
	ownerOnlyAllowYAML = utKSP("allow-owner", `file:
  matchPaths:
  - path: /home/user/key
    ownerOnly: true
  action: Allow
`)
	readOnlyAllowYAML = utKSP("allow-ro", `file:
  matchDirectories:
  - dir: /srv/
    recursive: true
    readOnly: true
  action: Allow
`)
	readOnlyBlockYAML = utDocs(
		utKSP("block-ro", `file:
  matchPaths:
  - path: /etc/hosts
    readOnly: true
  matchPatterns:
  - pattern: /etc/*.conf
    readOnly: true
  action: Block
`),
		utKSP("block-ro-owner", `file:
  matchPaths:
  - path: /var/db/data
    readOnly: true
    ownerOnly: true
  action: Block
`),
	)
	roOwnerDirYAML = utKSP("ro-owner-dir", `file:
  matchDirectories:
  - dir: /srv/keys/
    recursive: true
    readOnly: true
    ownerOnly: true
  matchPatterns:
  - pattern: /opt/*.pem
    readOnly: true
    ownerOnly: true
  action: Block
`)
	dirYAML = utDocs(
		utKSP("flat", `file:
  matchDirectories:
  - dir: /var/log/
`),
		utKSP("deep", `file:
  matchDirectories:
  - dir: /opt/data/
    recursive: true
`),
		utKSP("flat-proc", `process:
  matchDirectories:
  - dir: /usr/sbin/
`),
		utKSP("deep-proc", `process:
  matchDirectories:
  - dir: /usr/libexec/
    recursive: true
`),
		utKSP("root-flat", `file:
  matchDirectories:
  - dir: /
  action: Audit
`),
	)
	allowDirBlockInsideYAML = utDocs(
		// Block first in the file, Allow second: order must not matter.
		utKSP("block-inside", `file:
  matchPaths:
  - path: /app/secret.key
  matchDirectories:
  - dir: /app/private/
    recursive: true
  action: Block
`),
		utKSP("allow-app", `file:
  matchDirectories:
  - dir: /app/
    recursive: true
  action: Allow
`),
		utKSP("audit-inside", `file:
  matchPatterns:
  - pattern: /app/**.log
  action: Audit
`),
	)
	// The same two rules in one policy, Allow listed before Block.
	allowThenBlockOnePolicyYAML = utKSP("one", `file:
  matchDirectories:
  - dir: /app/
    recursive: true
    action: Allow
  matchPaths:
  - path: /app/secret.key
    action: Block
`)
)

func TestDecideModifiers(t *testing.T) {
	blk := utAnn(AnnotationPosture, "file=block")
	utRunDecide(t, []utDecideCase{
		// fromSource
		{"fromSource allow overrides block dir", fromSourceYAML, blk, evFrom(evRead("/etc/app/db/x"), "/bin/app"), utRule(Allow, "allow-etc-app-from-app", "spec.file.matchDirectories[0]")},
		{"other source: block dir", fromSourceYAML, blk, evFrom(evRead("/etc/app/db/x"), "/bin/sh"), utRule(Block, "block-etc-app", "spec.file.matchDirectories[0]")},
		{"no source: block dir", fromSourceYAML, blk, evRead("/etc/app/db/x"), utRule(Block, "block-etc-app", "spec.file.matchDirectories[0]")},
		{"source is a prefix of the fromSource path: no match", fromSourceYAML, blk, evFrom(evRead("/etc/app/x"), "/bin/ap"), utRule(Block, "block-etc-app", "spec.file.matchDirectories[0]")},
		{"fromSource block: first source", fromSourceYAML, nil, evFrom(evRead("/etc/shadow"), "/bin/cat"), utRule(Block, "block-shadow-from-cat", "spec.file.matchPaths[0]")},
		{"fromSource block: second source", fromSourceYAML, nil, evFrom(evRead("/etc/shadow"), "/usr/bin/cat"), utRule(Block, "block-shadow-from-cat", "spec.file.matchPaths[0]")},
		{"fromSource block: other source falls to posture", fromSourceYAML, blk, evFrom(evRead("/etc/shadow"), "/bin/less"), utPosture(Block)},
		{"fromSource audit beats generic allow (source first, then action)", fromSourceYAML, blk, evFrom(evRead("/etc/app/conf"), "/bin/app"), utRule(Audit, "audit-conf-from-app", "spec.file.matchPaths[0]")},
		{"without the source: block dir beats allow path", fromSourceYAML, blk, evFrom(evRead("/etc/app/conf"), "/bin/sh"), utRule(Block, "block-etc-app", "spec.file.matchDirectories[0]")},

		// ownerOnly
		{"ownerOnly block: owner exempt", ownerOnlyBlockYAML, nil, evAs(evRead("/data/secret"), 1000, 1000), utNoRule},
		{"ownerOnly block: other blocked", ownerOnlyBlockYAML, nil, evAs(evRead("/data/secret"), 1001, 1000), utRule(Block, "block-owner", "spec.file.matchPaths[0]")},
		{"ownerOnly block: root is not the owner", ownerOnlyBlockYAML, nil, evAs(evWrite("/data/secret"), 0, 1000), utRule(Block, "block-owner", "spec.file.matchPaths[0]")},
		{"ownerOnly block dir: other blocked", ownerOnlyBlockYAML, nil, evAs(evRead("/data/private/a"), 5, 6), utRule(Block, "block-owner", "spec.file.matchDirectories[0]")},
		{"ownerOnly block dir: owner exempt", ownerOnlyBlockYAML, nil, evAs(evRead("/data/private/a"), 6, 6), utNoRule},
		{"ownerOnly allow: owner allowed", ownerOnlyAllowYAML, blk, evAs(evRead("/home/user/key"), 1000, 1000), utRule(Allow, "allow-owner", "spec.file.matchPaths[0]")},
		{"ownerOnly allow: owner writes too", ownerOnlyAllowYAML, blk, evAs(evWrite("/home/user/key"), 1000, 1000), utRule(Allow, "allow-owner", "spec.file.matchPaths[0]")},
		{"ownerOnly allow: other falls to posture block", ownerOnlyAllowYAML, blk, evAs(evRead("/home/user/key"), 1001, 1000), utPosture(Block)},
		{"ownerOnly allow: other falls to posture audit", ownerOnlyAllowYAML, nil, evAs(evRead("/home/user/key"), 0, 1000), utPosture(Audit)},
		{"ownerOnly process block: owner runs", ownerOnlyBlockYAML, nil, evAs(evExec("/usr/local/bin/tool"), 42, 42), utNoRule},
		{"ownerOnly process block: other runs", ownerOnlyBlockYAML, nil, evAs(evExec("/usr/local/bin/tool"), 43, 42), utRule(Block, "block-proc-owner", "spec.process.matchPaths[0]")},

		// readOnly
		{"readOnly block: read passes", readOnlyBlockYAML, nil, evRead("/etc/hosts"), utNoRule},
		{"readOnly block: write blocked", readOnlyBlockYAML, nil, evWrite("/etc/hosts"), utRule(Block, "block-ro", "spec.file.matchPaths[0]")},
		{"readOnly block pattern: read passes", readOnlyBlockYAML, nil, evRead("/etc/resolv.conf"), utNoRule},
		{"readOnly block pattern: write blocked", readOnlyBlockYAML, nil, evWrite("/etc/resolv.conf"), utRule(Block, "block-ro", "spec.file.matchPatterns[0]")},
		{"readOnly allow: read allowed", readOnlyAllowYAML, blk, evRead("/srv/www/index.html"), utRule(Allow, "allow-ro", "spec.file.matchDirectories[0]")},
		{"readOnly allow: write falls to posture block", readOnlyAllowYAML, blk, evWrite("/srv/www/index.html"), utPosture(Block)},
		{"readOnly allow: write falls to posture audit", readOnlyAllowYAML, nil, evWrite("/srv/www/index.html"), utPosture(Audit)},
		{"readOnly+ownerOnly allow: owner read allowed", utKSP("ro-own", "file:\n  matchPaths:\n  - path: /k\n    readOnly: true\n    ownerOnly: true\n  action: Allow\n"), blk, evAs(evRead("/k"), 9, 9), utRule(Allow, "ro-own", "spec.file.matchPaths[0]")},
		{"readOnly+ownerOnly allow: owner write to posture", utKSP("ro-own", "file:\n  matchPaths:\n  - path: /k\n    readOnly: true\n    ownerOnly: true\n  action: Allow\n"), blk, evAs(evWrite("/k"), 9, 9), utPosture(Block)},
		{"readOnly+ownerOnly allow: other read to posture", utKSP("ro-own", "file:\n  matchPaths:\n  - path: /k\n    readOnly: true\n    ownerOnly: true\n  action: Allow\n"), blk, evAs(evRead("/k"), 8, 9), utPosture(Block)},
		// readOnly+ownerOnly on a Block rule: only the owner may read, and
		// nobody may write (KubeArmor's specification).
		{"readOnly+ownerOnly block: owner read passes", readOnlyBlockYAML, nil, evAs(evRead("/var/db/data"), 7, 7), utNoRule},
		{"readOnly+ownerOnly block: owner write blocked", readOnlyBlockYAML, nil, evAs(evWrite("/var/db/data"), 7, 7), utRule(Block, "block-ro-owner", "spec.file.matchPaths[0]")},
		{"readOnly+ownerOnly block: other read blocked", readOnlyBlockYAML, nil, evAs(evRead("/var/db/data"), 8, 7), utRule(Block, "block-ro-owner", "spec.file.matchPaths[0]")},
		{"readOnly+ownerOnly block: root read blocked (root is not the owner)", readOnlyBlockYAML, nil, evAs(evRead("/var/db/data"), 0, 7), utRule(Block, "block-ro-owner", "spec.file.matchPaths[0]")},
		{"readOnly+ownerOnly block: other write blocked", readOnlyBlockYAML, nil, evAs(evWrite("/var/db/data"), 8, 7), utRule(Block, "block-ro-owner", "spec.file.matchPaths[0]")},
		{"readOnly+ownerOnly block dir: owner read passes", roOwnerDirYAML, nil, evAs(evRead("/srv/keys/a"), 5, 5), utNoRule},
		{"readOnly+ownerOnly block dir: owner write blocked", roOwnerDirYAML, nil, evAs(evWrite("/srv/keys/a"), 5, 5), utRule(Block, "ro-owner-dir", "spec.file.matchDirectories[0]")},
		{"readOnly+ownerOnly block dir: other read blocked", roOwnerDirYAML, nil, evAs(evRead("/srv/keys/a"), 6, 5), utRule(Block, "ro-owner-dir", "spec.file.matchDirectories[0]")},
		{"readOnly+ownerOnly block pattern: owner read passes", roOwnerDirYAML, nil, evAs(evRead("/opt/x.pem"), 5, 5), utNoRule},
		{"readOnly+ownerOnly block pattern: owner write blocked", roOwnerDirYAML, nil, evAs(evWrite("/opt/x.pem"), 5, 5), utRule(Block, "ro-owner-dir", "spec.file.matchPatterns[0]")},
		{"readOnly+ownerOnly block pattern: other read blocked", roOwnerDirYAML, nil, evAs(evRead("/opt/x.pem"), 6, 5), utRule(Block, "ro-owner-dir", "spec.file.matchPatterns[0]")},
		{"audit mode: readOnly block write audited", readOnlyBlockYAML, utAnn(AnnotationMode, "audit"), evWrite("/etc/hosts"), utRule(Audit, "block-ro", "spec.file.matchPaths[0]")},
		{"audit mode: readOnly block read still passes", readOnlyBlockYAML, utAnn(AnnotationMode, "audit"), evRead("/etc/hosts"), utNoRule},
	})
}

// In allow-list mode, a read that a Block readOnly rule lets pass and an
// owner that a Block ownerOnly rule exempts are matched by no Allow rule:
// by rule 5 of Decide (and the spec's "anything the Allow rules do not match
// falls to the default posture") they get the posture.
func TestDecideModifiersInAllowList(t *testing.T) {
	y := utDocs(fileAllowYAML, readOnlyBlockYAML, readOnlyAllowYAML, ownerOnlyBlockYAML)
	blk := utAnn(AnnotationPosture, "file=block")
	utRunDecide(t, []utDecideCase{
		{"readOnly block read, allow-list: posture", y, blk, evRead("/etc/hosts"), utPosture(Block)},
		{"readOnly block write, allow-list: rule", y, blk, evWrite("/etc/hosts"), utRule(Block, "block-ro", "spec.file.matchPaths[0]")},
		{"ownerOnly block owner, allow-list: posture", y, blk, evAs(evRead("/data/secret"), 3, 3), utPosture(Block)},
		{"ownerOnly block other, allow-list: rule", y, blk, evAs(evRead("/data/secret"), 4, 3), utRule(Block, "block-owner", "spec.file.matchPaths[0]")},
		{"readOnly allow read inside allowed dir", y, blk, evRead("/srv/a"), utRule(Allow, "allow-ro", "spec.file.matchDirectories[0]")},
		{"readOnly allow write inside a dir allowed for writes too", y, blk, evWrite("/app/x"), utRule(Allow, "allow-app", "spec.file.matchDirectories[0]")},
	})
}

func TestDecideDirectories(t *testing.T) {
	utRunDecide(t, []utDecideCase{
		{"flat: direct child", dirYAML, nil, evRead("/var/log/syslog"), utRule(Block, "flat", "spec.file.matchDirectories[0]")},
		{"flat: the directory itself", dirYAML, nil, evRead("/var/log"), utRule(Block, "flat", "spec.file.matchDirectories[0]")},
		{"flat: grandchild not covered", dirYAML, nil, evRead("/var/log/nginx/access.log"), utNoRule},
		{"flat: subdirectory itself is a direct child", dirYAML, nil, evRead("/var/log/nginx"), utRule(Block, "flat", "spec.file.matchDirectories[0]")},
		{"flat: sibling with common prefix not covered", dirYAML, nil, evRead("/var/logs/x"), utNoRule},
		{"flat: parent not covered", dirYAML, nil, evRead("/var/x"), utNoRule},
		{"deep: direct child", dirYAML, nil, evRead("/opt/data/a"), utRule(Block, "deep", "spec.file.matchDirectories[0]")},
		{"deep: subtree", dirYAML, nil, evWrite("/opt/data/a/b/c/d"), utRule(Block, "deep", "spec.file.matchDirectories[0]")},
		{"deep: the directory itself", dirYAML, nil, evRead("/opt/data"), utRule(Block, "deep", "spec.file.matchDirectories[0]")},
		{"deep: sibling with common prefix not covered", dirYAML, nil, evRead("/opt/database/x"), utNoRule},
		{"root flat: top-level file", dirYAML, nil, evRead("/vmlinuz"), utRule(Audit, "root-flat", "spec.file.matchDirectories[0]")},
		{"root flat: top-level directory", dirYAML, nil, evRead("/opt"), utRule(Audit, "root-flat", "spec.file.matchDirectories[0]")},
		{"root flat: nested file", dirYAML, nil, evRead("/opt/x/y"), utNoRule},
		{"process flat: direct child", dirYAML, nil, evExec("/usr/sbin/nginx"), utRule(Block, "flat-proc", "spec.process.matchDirectories[0]")},
		{"process flat: nested not covered", dirYAML, nil, evExec("/usr/sbin/sub/tool"), utNoRule},
		{"process deep: nested", dirYAML, nil, evExec("/usr/libexec/git-core/git-upload-pack"), utRule(Block, "deep-proc", "spec.process.matchDirectories[0]")},
		{"process rules do not apply to file events", dirYAML, nil, evRead("/usr/libexec/git-core/x"), utNoRule},
		{"file rules do not apply to exec events", dirYAML, nil, evExec("/opt/data/bin/run"), utNoRule},
	})
}

func TestDecideBlockInsideAllowedDir(t *testing.T) {
	blk := utAnn(AnnotationPosture, "file=block")
	utRunDecide(t, []utDecideCase{
		{"blocked file inside allowed dir", allowDirBlockInsideYAML, blk, evRead("/app/secret.key"), utRule(Block, "block-inside", "spec.file.matchPaths[0]")},
		{"blocked subtree inside allowed dir", allowDirBlockInsideYAML, blk, evRead("/app/private/a/b"), utRule(Block, "block-inside", "spec.file.matchDirectories[0]")},
		{"allowed sibling", allowDirBlockInsideYAML, blk, evRead("/app/public/index.html"), utRule(Allow, "allow-app", "spec.file.matchDirectories[0]")},
		{"audit pattern inside allowed dir", allowDirBlockInsideYAML, blk, evWrite("/app/logs/today.log"), utRule(Audit, "audit-inside", "spec.file.matchPatterns[0]")},
		{"block beats audit inside allowed dir", allowDirBlockInsideYAML, blk, evWrite("/app/private/x.log"), utRule(Block, "block-inside", "spec.file.matchDirectories[0]")},
		{"outside: posture", allowDirBlockInsideYAML, blk, evRead("/etc/passwd"), utPosture(Block)},
		{"one policy, allow listed first", allowThenBlockOnePolicyYAML, blk, evRead("/app/secret.key"), utRule(Block, "one", "spec.file.matchPaths[0]")},
		{"one policy, allowed neighbour", allowThenBlockOnePolicyYAML, blk, evRead("/app/other.key"), utRule(Allow, "one", "spec.file.matchDirectories[0]")},
	})
}

// Rule 4: among rules of the same action, the most specific is reported.
func TestDecideReportedRule(t *testing.T) {
	y := utDocs(
		utKSP("a-etc", "file:\n  matchDirectories:\n  - dir: /etc/\n    recursive: true\n"),
		utKSP("b-etc-ssl", "file:\n  matchDirectories:\n  - dir: /etc/ssl/\n    recursive: true\n"),
		utKSP("c-key", "file:\n  matchPaths:\n  - path: /etc/ssl/private/key.pem\n"),
		utKSP("d-pattern", "file:\n  matchPatterns:\n  - pattern: /etc/**.pem\n"),
		utKSP("e-dup", "file:\n  matchPaths:\n  - path: /etc/passwd\n"),
		utKSP("f-dup", "file:\n  matchPaths:\n  - path: /etc/passwd\n"),
		utKSP("g-exec", "process:\n  matchPaths:\n  - execname: python3\n  matchDirectories:\n  - dir: /usr/bin/\n  matchPatterns:\n  - pattern: /usr/bin/py*\n"),
		utKSP("h-audit-path", "file:\n  matchPaths:\n  - path: /etc/ssl/certs/ca.pem\n  action: Audit\n"),
	)
	utRunDecide(t, []utDecideCase{
		{"exact path beats directories and patterns", y, nil, evRead("/etc/ssl/private/key.pem"), utRule(Block, "c-key", "spec.file.matchPaths[0]")},
		{"longest directory beats shorter one and pattern", y, nil, evRead("/etc/ssl/other.pem"), utRule(Block, "b-etc-ssl", "spec.file.matchDirectories[0]")},
		{"directory beats pattern", y, nil, evRead("/etc/x.pem"), utRule(Block, "a-etc", "spec.file.matchDirectories[0]")},
		{"same specificity: lowest rule id (policy name order)", y, nil, evRead("/etc/passwd"), utRule(Block, "e-dup", "spec.file.matchPaths[0]")},
		{"action before specificity: block dir beats audit path", y, nil, evRead("/etc/ssl/certs/ca.pem"), utRule(Block, "b-etc-ssl", "spec.file.matchDirectories[0]")},
		{"execname beats directory and pattern", y, nil, evExec("/usr/bin/python3"), utRule(Block, "g-exec", "spec.process.matchPaths[0]")},
		{"directory beats pattern (process)", y, nil, evExec("/usr/bin/pydoc"), utRule(Block, "g-exec", "spec.process.matchDirectories[0]")},
	})
}

// ---------------------------------------------------------------------------
// Process: execname, matchPaths, directories
// ---------------------------------------------------------------------------

func TestDecideProcess(t *testing.T) {
	y := utDocs(
		utKSP("proc", `process:
  matchPaths:
  - execname: sh
  - path: /usr/bin/curl
  - path: /usr/bin/wget
    fromSource:
    - path: /bin/bash
  matchDirectories:
  - dir: /tmp/
    recursive: true
  matchPatterns:
  - pattern: /home/*/bin/*
`),
		utKSP("proc-allow", `process:
  matchPaths:
  - execname: python3
  action: Allow
`),
	)
	blk := utAnn(AnnotationPosture, "file=block")
	utRunDecide(t, []utDecideCase{
		{"execname in /bin", y, nil, evExec("/bin/sh"), utRule(Block, "proc", "spec.process.matchPaths[0]")},
		{"execname anywhere", y, nil, evExec("/opt/busybox/sh"), utRule(Block, "proc", "spec.process.matchPaths[0]")},
		{"execname is the whole file name", y, nil, evExec("/bin/bash"), utPosture(Audit)},
		{"execname is not a directory component", y, nil, evExec("/sh/true"), utPosture(Audit)},
		{"matchPaths exact", y, nil, evExec("/usr/bin/curl"), utRule(Block, "proc", "spec.process.matchPaths[1]")},
		{"matchPaths: other directory", y, nil, evExec("/usr/local/bin/curl"), utPosture(Audit)},
		{"matchPaths: path as prefix does not match", y, nil, evExec("/usr/bin/curl2"), utPosture(Audit)},
		{"matchPaths fromSource: parent is the source", y, nil, evFrom(evExec("/usr/bin/wget"), "/bin/bash"), utRule(Block, "proc", "spec.process.matchPaths[2]")},
		{"matchPaths fromSource: other parent", y, blk, evFrom(evExec("/usr/bin/wget"), "/bin/dash"), utPosture(Block)},
		{"directory recursive", y, nil, evExec("/tmp/x/y/payload"), utRule(Block, "proc", "spec.process.matchDirectories[0]")},
		{"pattern", y, nil, evExec("/home/alice/bin/tool"), utRule(Block, "proc", "spec.process.matchPatterns[0]")},
		{"pattern * does not cross /", y, blk, evExec("/home/alice/bin/sub/tool"), utPosture(Block)},
		{"allowed execname", y, blk, evExec("/usr/bin/python3"), utRule(Allow, "proc-allow", "spec.process.matchPaths[0]")},
		{"block dir beats audit dir and allowed execname", utDocs(y, utKSP("py-tmp", "process:\n  matchDirectories:\n  - dir: /tmp/\n    action: Audit\n")), blk, evExec("/tmp/python3"), utRule(Block, "proc", "spec.process.matchDirectories[0]")},
	})
}

// ---------------------------------------------------------------------------
// Network, capabilities, syscalls
// ---------------------------------------------------------------------------

func TestDecideNetwork(t *testing.T) {
	tcpudp := utKSP("tcpudp", "network:\n  matchProtocols:\n  - protocol: \"tcp,udp\"\n")
	spaced := utKSP("spaced", "network:\n  matchProtocols:\n  - protocol: \"TCP, Udp\"\n")
	upper := utKSP("upper", "network:\n  matchProtocols:\n  - protocol: ICMP\n  - protocol: Sctp\n")
	raw := utKSP("raw", "network:\n  matchProtocols:\n  - protocol: raw\n")
	all := utKSP("all", "network:\n  matchProtocols:\n  - protocol: all\n  action: Audit\n")
	stream := utKSP("stream", "network:\n  matchProtocols:\n  - protocol: stream\n")
	src := utKSP("src", "network:\n  matchProtocols:\n  - protocol: udp\n    fromSource:\n    - path: /usr/bin/dig\n")
	allowTCP := utKSP("allow-tcp", "network:\n  matchProtocols:\n  - protocol: tcp\n  action: Allow\n")
	utRunDecide(t, []utDecideCase{
		{"tcp,udp: tcp", tcpudp, nil, evSock("tcp"), utWant{action: Block, policy: "tcpudp", field: "spec.network.matchProtocols[0]", value: "tcp"}},
		{"tcp,udp: udp", tcpudp, nil, evSock("udp"), utWant{action: Block, policy: "tcpudp", field: "spec.network.matchProtocols[0]", value: "udp"}},
		{"tcp,udp: icmp not covered", tcpudp, nil, evSock("icmp"), utNoRule},
		{"TCP, Udp: tcp", spaced, nil, evSock("tcp"), utWant{action: Block, policy: "spaced", field: "spec.network.matchProtocols[0]", value: "tcp"}},
		{"TCP, Udp: udp", spaced, nil, evSock("udp"), utWant{action: Block, policy: "spaced", field: "spec.network.matchProtocols[0]", value: "udp"}},
		{"ICMP upper case", upper, nil, evSock("icmp"), utWant{action: Block, policy: "upper", field: "spec.network.matchProtocols[0]", value: "icmp"}},
		{"Sctp mixed case", upper, nil, evSock("sctp"), utWant{action: Block, policy: "upper", field: "spec.network.matchProtocols[1]", value: "sctp"}},
		{"icmpv6 is not icmp", upper, nil, evSock("icmpv6"), utNoRule},
		{"raw: icmp socket is raw", raw, nil, evSock("icmp"), utWant{action: Block, policy: "raw", field: "spec.network.matchProtocols[0]", value: "raw"}},
		{"raw: raw socket of any protocol", raw, nil, Event{Class: ClassNetwork, Protocol: "tcp", SocketType: "raw"}, utWant{action: Block, policy: "raw", field: "spec.network.matchProtocols[0]", value: "raw"}},
		{"raw: socket type only", raw, nil, evSock("raw"), utWant{action: Block, policy: "raw", field: "spec.network.matchProtocols[0]", value: "raw"}},
		{"raw: tcp stream not covered", raw, nil, evSock("tcp"), utNoRule},
		{"all: tcp", all, nil, evSock("tcp"), utWant{action: Audit, policy: "all", field: "spec.network.matchProtocols[0]", value: "all"}},
		{"all: packet", all, nil, evSock("packet"), utWant{action: Audit, policy: "all", field: "spec.network.matchProtocols[0]", value: "all"}},
		{"stream: tcp", stream, nil, evSock("tcp"), utWant{action: Block, policy: "stream", field: "spec.network.matchProtocols[0]", value: "stream"}},
		{"stream: sctp", stream, nil, evSock("sctp"), utWant{action: Block, policy: "stream", field: "spec.network.matchProtocols[0]", value: "stream"}},
		{"stream: udp not covered", stream, nil, evSock("udp"), utNoRule},
		{"fromSource: the source", src, nil, evFrom(evSock("udp"), "/usr/bin/dig"), utRule(Block, "src", "spec.network.matchProtocols[0]")},
		{"fromSource: other source", src, nil, evFrom(evSock("udp"), "/usr/bin/nc"), utNoRule},
		{"block all beats allow tcp", utDocs(allowTCP, utKSP("block-all", "network:\n  matchProtocols:\n  - protocol: all\n")), nil, evSock("tcp"), utWant{action: Block, policy: "block-all", field: "spec.network.matchProtocols[0]", value: "all"}},
		{"allow tcp + posture: udp", allowTCP, utAnn(AnnotationPosture, "network=block"), evSock("udp"), utPosture(Block)},
	})
	// "tcp,udp" expands into one rule per protocol.
	rs := utRuleSet(t, tcpudp, nil)
	var vals []string
	for _, r := range rs.Network.Rules {
		vals = append(vals, r.Match.Value)
	}
	if !reflect.DeepEqual(vals, []string{"tcp", "udp"}) {
		t.Errorf("tcp,udp compiled to %q, want [tcp udp]", vals)
	}
}

func TestDecideCapabilities(t *testing.T) {
	lower := utKSP("caps", "capabilities:\n  matchCapabilities:\n  - capability: net_raw\n")
	prefixed := utKSP("caps", "capabilities:\n  matchCapabilities:\n  - capability: CAP_NET_RAW\n")
	mixed := utKSP("caps", "capabilities:\n  matchCapabilities:\n  - capability: Cap_Sys_Admin\n    action: Audit\n")
	src := utKSP("caps-src", "capabilities:\n  matchCapabilities:\n  - capability: sys_ptrace\n    fromSource:\n    - path: /usr/bin/strace\n")
	utRunDecide(t, []utDecideCase{
		{"net_raw rule, CAP_NET_RAW event", lower, nil, evCap("CAP_NET_RAW"), utRule(Block, "caps", "spec.capabilities.matchCapabilities[0]")},
		{"net_raw rule, net_raw event", lower, nil, evCap("net_raw"), utRule(Block, "caps", "spec.capabilities.matchCapabilities[0]")},
		{"CAP_NET_RAW rule, net_raw event", prefixed, nil, evCap("net_raw"), utRule(Block, "caps", "spec.capabilities.matchCapabilities[0]")},
		{"CAP_NET_RAW rule, cap_net_raw event", prefixed, nil, evCap("cap_net_raw"), utRule(Block, "caps", "spec.capabilities.matchCapabilities[0]")},
		{"other capability", prefixed, nil, evCap("CAP_NET_ADMIN"), utNoRule},
		{"mixed case rule", mixed, nil, evCap("CAP_SYS_ADMIN"), utRule(Audit, "caps", "spec.capabilities.matchCapabilities[0]")},
		{"fromSource: the source", src, nil, evFrom(evCap("sys_ptrace"), "/usr/bin/strace"), utRule(Block, "caps-src", "spec.capabilities.matchCapabilities[0]")},
		{"fromSource: other source", src, nil, evFrom(evCap("sys_ptrace"), "/usr/bin/gdb"), utNoRule},
	})
	// Both spellings compile to the same rule set.
	a, b := utRuleSet(t, lower, nil), utRuleSet(t, prefixed, nil)
	if !bytes.Equal(a.JSON(), b.JSON()) {
		t.Errorf("net_raw and CAP_NET_RAW compile differently:\n%s\n%s", a.JSON(), b.JSON())
	}
	if v := a.Capabilities.Rules[0].Match.Value; v != "net_raw" {
		t.Errorf("capability compiled as %q, want net_raw", v)
	}
}

func TestDecideSyscalls(t *testing.T) {
	y := utDocs(
		utKSP("sys", `syscalls:
  action: Block
  matchSyscalls:
  - syscall: [unlink, UNLINKAT]
  - syscall: [ptrace]
    fromSource:
    - dir: /usr/bin/
      recursive: true
    - path: /opt/debugger
    - dir: /sbin/
  matchPaths:
  - path: /etc/passwd
    syscall: [chmod, fchmodat]
  - path: /var/lib/
    recursive: true
    syscall: [mkdir]
  - path: /tmp/
    syscall: [rmdir]
`),
		utKSP("sys-audit", `syscalls:
  action: Audit
  matchSyscalls:
  - syscall: [chmod]
`),
		// No action anywhere: syscall rules audit (as KubeArmor), they do not block.
		utKSP("sys-default", `syscalls:
  matchSyscalls:
  - syscall: [kexec_load]
`),
	)
	utRunDecide(t, []utDecideCase{
		{"by name", y, nil, evSys("unlink", "/x"), utWant{action: Block, policy: "sys", field: "spec.syscalls.matchSyscalls[0]", value: "unlink"}},
		{"upper-case rule name normalised", y, nil, evSys("unlinkat", ""), utWant{action: Block, policy: "sys", field: "spec.syscalls.matchSyscalls[0]", value: "unlinkat"}},
		{"upper-case event name", y, nil, evSys("UNLINK", ""), utWant{action: Block, policy: "sys", field: "spec.syscalls.matchSyscalls[0]", value: "unlink"}},
		{"other syscall", y, nil, evSys("rename", ""), utNoRule},
		{"no action anywhere: Audit, not Block", y, nil, evSys("kexec_load", ""), utRule(Audit, "sys-default", "spec.syscalls.matchSyscalls[0]")},
		{"fromSource dir recursive", y, nil, evFrom(evSys("ptrace", ""), "/usr/bin/x/gdb"), utRule(Block, "sys", "spec.syscalls.matchSyscalls[1]")},
		{"fromSource path", y, nil, evFrom(evSys("ptrace", ""), "/opt/debugger"), utRule(Block, "sys", "spec.syscalls.matchSyscalls[1]")},
		{"fromSource dir, direct child", y, nil, evFrom(evSys("ptrace", ""), "/sbin/x"), utRule(Block, "sys", "spec.syscalls.matchSyscalls[1]")},
		{"fromSource dir not recursive", y, nil, evFrom(evSys("ptrace", ""), "/sbin/x/y"), utNoRule},
		{"fromSource: other source", y, nil, evFrom(evSys("ptrace", ""), "/opt/other"), utNoRule},
		{"fromSource: no source", y, nil, evSys("ptrace", ""), utNoRule},
		{"on a file path", y, nil, evSys("chmod", "/etc/passwd"), utWant{action: Block, policy: "sys", field: "spec.syscalls.matchPaths[0]", value: "chmod"}},
		{"on a file path: block beats audit of the same syscall", y, nil, evSys("chmod", "/etc/passwd"), utRule(Block, "sys", "spec.syscalls.matchPaths[0]")},
		{"on another path: only the audit rule", y, nil, evSys("chmod", "/etc/shadow"), utRule(Audit, "sys-audit", "spec.syscalls.matchSyscalls[0]")},
		{"second syscall of a path rule", y, nil, evSys("fchmodat", "/etc/passwd"), utWant{action: Block, policy: "sys", field: "spec.syscalls.matchPaths[0]", value: "fchmodat"}},
		{"path rule without path in the event", y, nil, evSys("fchmodat", ""), utNoRule},
		{"recursive dir: deep", y, nil, evSys("mkdir", "/var/lib/a/b/c"), utRule(Block, "sys", "spec.syscalls.matchPaths[1]")},
		{"recursive dir: outside", y, nil, evSys("mkdir", "/var/libx/a"), utNoRule},
		{"flat dir: direct child", y, nil, evSys("rmdir", "/tmp/a"), utRule(Block, "sys", "spec.syscalls.matchPaths[2]")},
		{"flat dir: grandchild", y, nil, evSys("rmdir", "/tmp/a/b"), utNoRule},
	})
}

// ---------------------------------------------------------------------------
// Determinism and digests
// ---------------------------------------------------------------------------

var (
	detA = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: det-a
  namespace: default
spec:
  selector:
    matchLabels:
      app: web
  severity: 5
  tags: [MITRE, T1003]
  message: credentials
  file:
    matchPaths:
    - path: /etc/shadow
      fromSource:
      - path: /bin/cat
      - path: /bin/less
    matchDirectories:
    - dir: /root/.ssh/
      recursive: true
  action: Block
`
	// detA re-formatted: flow style, other key order, comments, quoting,
	// other spellings of the same values.
	detAReformatted = `# the same policy, written differently
kind: "KubeArmorPolicy"
apiVersion: 'security.kubearmor.com/v1'
metadata: {namespace: default, name: det-a, labels: {owner: sec}}
spec:
  action: block            # lower case: accepted with a warning
  file:
    matchDirectories: [{recursive: true, dir: "/root/.ssh/"}]
    matchPaths:
      - fromSource: [{path: /bin/cat}, {path: /bin/less}]
        path: "/etc/shadow"
  message: "credentials"
  tags:
    - MITRE
    - T1003
  severity: 0x5
  selector: {matchLabels: {app: "web"}}
`
	// detA with its fromSource list in the other order: another policy
	// digest (the document differs) but the same compiled rules.
	detASwapped = strings.Replace(detA, "      - path: /bin/cat\n      - path: /bin/less\n", "      - path: /bin/less\n      - path: /bin/cat\n", 1)
	detB        = utKSP("det-b", `network:
  matchProtocols:
  - protocol: "tcp,udp"
  - protocol: RAW
capabilities:
  matchCapabilities:
  - capability: CAP_NET_RAW
  action: Allow
`)
	detBReformatted = utKSP("det-b", `capabilities: {action: Allow, matchCapabilities: [{capability: net_raw}]}
network:
  matchProtocols: [{protocol: "TCP,UDP"}, {protocol: raw}]
`)
	detC = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorClusterPolicy
metadata:
  name: det-c
spec:
  process:
    matchPatterns:
    - pattern: /tmp/**
  syscalls:
    matchSyscalls:
    - syscall: [ptrace, unlink]
`
)

func TestRuleSetDeterminism(t *testing.T) {
	a := utLoad(t, "a.yaml", detA)
	a2 := utLoad(t, "a2.yaml", detAReformatted)
	b := utLoad(t, "b.yaml", detB)
	b2 := utLoad(t, "b2.yaml", detBReformatted)
	c := utLoad(t, "c.yaml", detC)
	a3 := utLoad(t, "a3.yaml", detASwapped)
	if detASwapped == detA {
		t.Fatal("detASwapped is detA")
	}
	all := utLoad(t, "all.yaml", utDocs(detC, detB, detA))

	if a[0].Digest != a2[0].Digest {
		t.Errorf("policy digest differs for re-formatted YAML: %s vs %s", a[0].Digest, a2[0].Digest)
	}
	if b[0].Digest != b2[0].Digest {
		t.Errorf("policy digest differs for re-formatted YAML: %s vs %s", b[0].Digest, b2[0].Digest)
	}
	opts := Options{Postures: Postures{File: Block, Network: Audit, Capabilities: Block}, Mode: ModeEnforce}
	ref := Compile([]*Policy{a[0], b[0], c[0]}, opts)
	if !strings.HasPrefix(ref.Digest, "sha256:") || len(ref.Digest) != len("sha256:")+64 {
		t.Fatalf("bad digest %q", ref.Digest)
	}
	variants := map[string][]*Policy{
		"reversed":                  {c[0], b[0], a[0]},
		"rotated":                   {b[0], c[0], a[0]},
		"re-formatted a":            {a2[0], b[0], c[0]},
		"re-formatted a and b":      {c[0], a2[0], b2[0]},
		"one multi-document file":   all,
		"fromSource order swapped":  {a3[0], b[0], c[0]},
		"via catalog and resolving": nil,
	}
	for name, pols := range variants {
		t.Run(name, func(t *testing.T) {
			var rs *RuleSet
			if pols == nil {
				rs = utCompile(t, utDetPolicies(t), utPod(utAnn(AnnotationPosture, "file=block,capabilities=block")), "web")
			} else {
				rs = Compile(pols, opts)
			}
			if !bytes.Equal(rs.JSON(), ref.JSON()) {
				t.Errorf("JSON differs:\n got %s\nwant %s", rs.JSON(), ref.JSON())
			}
			if rs.Digest != ref.Digest {
				t.Errorf("digest %s, want %s", rs.Digest, ref.Digest)
			}
		})
	}

	// Compiling twice gives the same bytes; IDs are 1..n in order.
	again := Compile([]*Policy{a[0], b[0], c[0]}, opts)
	if !bytes.Equal(again.JSON(), ref.JSON()) {
		t.Error("compiling twice gives different JSON")
	}
	id := 1
	for _, cl := range Classes {
		for _, r := range ref.Class(cl).Rules {
			if r.ID != id {
				t.Errorf("rule %s %s has id %d, want %d", r.Policy, r.Field, r.ID, id)
			}
			if got := ref.RuleByID(id); got != r {
				t.Errorf("RuleByID(%d) = %v, want %v", id, got, r)
			}
			id++
		}
	}
	if ref.RuleByID(0) != nil || ref.RuleByID(id) != nil {
		t.Error("RuleByID out of range returned a rule")
	}
}

func utDetPolicies(t *testing.T) []*Policy {
	return utLoad(t, "d.yaml", utDocs(detB, detAReformatted, detC))
}

func TestDigestChanges(t *testing.T) {
	opts := Options{Postures: DefaultDefaults().Postures, Mode: ModeEnforce}
	base := Compile(utLoad(t, "a.yaml", detA), opts)
	cases := []struct{ name, old, new string }{
		{"path", "path: /etc/shadow", "path: /etc/gshadow"},
		{"action", "action: Block", "action: Audit"},
		{"recursive", "recursive: true", "recursive: false"},
		{"severity", "severity: 5", "severity: 6"},
		{"tag", "T1003", "T1004"},
		{"message", "message: credentials", "message: secrets"},
		{"fromSource", "path: /bin/less", "path: /bin/more"},
		{"readOnly added", "      - path: /bin/less\n", "      - path: /bin/less\n      readOnly: true\n"},
		{"name", "name: det-a", "name: det-a2"},
		{"namespace", "namespace: default", "namespace: prod"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			changed := strings.Replace(detA, c.old, c.new, 1)
			if changed == detA {
				t.Fatalf("replacement %q not found", c.old)
			}
			p := utLoad(t, "a.yaml", changed)
			rs := Compile(p, opts)
			if rs.Digest == base.Digest {
				t.Errorf("digest unchanged after changing %s", c.name)
			}
			if p[0].Digest == utLoad(t, "a.yaml", detA)[0].Digest {
				t.Errorf("policy digest unchanged after changing %s", c.name)
			}
		})
	}
	// Options are part of the set: posture and mode change the digest.
	pols := utLoad(t, "all.yaml", utDocs(detA, detB))
	d1 := Compile(pols, Options{Postures: Postures{File: Audit, Network: Audit, Capabilities: Audit}, Mode: ModeEnforce}).Digest
	d2 := Compile(pols, Options{Postures: Postures{File: Audit, Network: Audit, Capabilities: Block}, Mode: ModeEnforce}).Digest
	d3 := Compile(pols, Options{Postures: Postures{File: Audit, Network: Audit, Capabilities: Audit}, Mode: ModeAudit}).Digest
	if d1 == d2 || d1 == d3 || d2 == d3 {
		t.Errorf("digests should differ: %s %s %s", d1, d2, d3)
	}
	// Policy metadata that does not change the meaning does not change the set.
	relabelled := strings.Replace(detA, "  namespace: default\n", "  namespace: default\n  labels: {team: x}\n  annotations: {note: y}\n", 1)
	if Compile(utLoad(t, "a.yaml", relabelled), opts).Digest != base.Digest {
		t.Error("metadata labels/annotations changed the rule set digest")
	}
}

func TestCompilerCache(t *testing.T) {
	pols := utLoad(t, "all.yaml", utDocs(detA, detB, detC))
	opts := Options{Postures: DefaultDefaults().Postures, Mode: ModeEnforce}
	c := NewCompiler(0)
	r1 := c.Compile(pols, opts)
	r2 := c.Compile([]*Policy{pols[2], pols[0], pols[1]}, opts)
	if r1 != r2 {
		t.Error("same policies in another order were compiled again")
	}
	r3 := c.Compile(pols, Options{Postures: Postures{File: Audit, Network: Audit, Capabilities: Block}, Mode: ModeEnforce})
	if r3 == r1 || r3.Digest == r1.Digest {
		t.Error("another posture shared the cached set")
	}
	if hits, misses := c.Stats(); hits != 1 || misses != 2 {
		t.Errorf("stats = %d hits, %d misses; want 1, 2", hits, misses)
	}
	if !bytes.Equal(r1.JSON(), Compile(pols, opts).JSON()) {
		t.Error("cached set differs from a fresh compile")
	}
}
