package policy_test

import (
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/policy"
)

const guardDoc = `
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: curl-only, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  file:
    matchPaths:
    - path: /etc/secret
      fromSource: [{path: /usr/bin/curl}]
      action: Allow
    - path: /etc/secret
      action: Block
`

// A fromSource source and the directories above it are read-only to the
// container: nothing else can be put at the source's name.
func TestSourceGuards(t *testing.T) {
	rs := policytest.Compile(t, guardDoc)
	for _, tc := range []struct {
		path  string
		write bool
		want  policy.Action
	}{
		{"/usr/bin/curl", true, policy.Block}, // write over it, rename or link onto it, unlink it
		{"/usr/bin", true, policy.Block},      // rename the directory above it
		{"/usr", true, policy.Block},
		{"/usr/bin/curl", false, policy.Allow}, // reading (and running) it is untouched: the posture's
		{"/usr/bin/wget", true, policy.Allow},  // its neighbours too
	} {
		// (The file class is an allow-list, posture Audit: what no rule
		// names is audited.)
		d := policy.Decide(rs, policy.Event{Class: policy.ClassFile, Path: tc.path, Write: tc.write})
		if got := d.Action; got != tc.want && !(tc.want == policy.Allow && got == policy.Audit && d.Rule == nil) {
			t.Errorf("%s (write %v): %s, want %s", tc.path, tc.write, d.Action, tc.want)
		}
		if tc.want == policy.Block && (d.Rule == nil || !d.Rule.Guard || d.Rule.Policy != "curl-only" || d.Rule.Field != "spec.file.matchPaths[0].fromSource") {
			t.Errorf("%s: decided by %+v, want the guard of curl-only's spec.file.matchPaths[0]", tc.path, d.Rule)
		}
	}
	// The grant itself is unchanged.
	if d := policy.Decide(rs, policy.Event{Class: policy.ClassFile, Path: "/etc/secret", Source: "/usr/bin/curl"}); d.Action != policy.Allow {
		t.Errorf("curl reading the secret: %s", d.Action)
	}

	// An Audit rule's sources are guarded by Audit, and so is every source
	// in audit mode; a host policy's not at all (the node updates them).
	audit := policytest.Compile(t, strings.Replace(guardDoc, "action: Allow", "action: Audit", 1))
	if d := policy.Decide(audit, policy.Event{Class: policy.ClassFile, Path: "/usr/bin/curl", Write: true}); d.Action != policy.Audit {
		t.Errorf("an Audit rule's source written: %s, want Audit", d.Action)
	}
	inAudit := policy.Compile(policytest.Load(t, guardDoc), policy.Options{Postures: policy.DefaultDefaults().Postures, Mode: policy.ModeAudit})
	if d := policy.Decide(inAudit, policy.Event{Class: policy.ClassFile, Path: "/usr/bin/curl", Write: true}); d.Action != policy.Audit {
		t.Errorf("a source written in audit mode: %s, want Audit", d.Action)
	}
	host := policytest.Compile(t, strings.NewReplacer("kind: KubeArmorPolicy", "kind: KubeArmorHostPolicy",
		"metadata: {name: curl-only, namespace: default}", "metadata: {name: curl-only}",
		"selector: {matchLabels: {app: web}}", "nodeSelector: {matchLabels: {kubernetes.io/hostname: n}}").Replace(guardDoc))
	if d := policy.Decide(host, policy.Event{Class: policy.ClassFile, Path: "/usr/bin/curl", Write: true}); d.Rule != nil {
		t.Errorf("a host policy's source written: %s by %+v, want no rule", d.Action, d.Rule)
	}

	// A source that resolves elsewhere in the container's root is guarded
	// there too, with the directories above the resolved name.
	al := rs.Aliased(func(p string) string {
		return map[string]string{"/usr/bin/curl": "/opt/curl/bin/curl"}[p]
	})
	for _, p := range []string{"/opt/curl/bin/curl", "/opt/curl/bin", "/opt/curl", "/opt"} {
		if d := policy.Decide(al, policy.Event{Class: policy.ClassFile, Path: p, Write: true}); d.Action != policy.Block {
			t.Errorf("%s written, the source resolved: %s, want Block", p, d.Action)
		}
	}
}
