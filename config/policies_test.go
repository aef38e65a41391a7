package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/policy"
)

// TestShippedPolicies: every file under policies/ loads with neither an
// error nor a warning (a shipped policy is an example users copy).
func TestShippedPolicies(t *testing.T) {
	results := policy.LoadPaths("policies")
	if len(results) == 0 {
		t.Fatal("no policy files under config/policies")
	}
	for _, r := range results {
		for _, i := range r.Issues {
			if i.Level == policy.LevelError || i.Level == policy.LevelWarning {
				t.Errorf("%s", i)
			}
		}
		if r.Status() != policy.FileValid {
			t.Errorf("%s: %v, want valid", r.File, r.Status())
		}
	}
}

// TestDocumentedPolicies: every policy the README and docs/ show (a yaml
// block of a KubeArmor kind) loads without an error or a warning: readers
// copy them.
func TestDocumentedPolicies(t *testing.T) {
	docs, _ := filepath.Glob("../docs/*.md")
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	n := 0
	for _, doc := range append([]string{"../README.md"}, docs...) {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range block.FindAllStringSubmatch(string(text), -1) {
			if !strings.Contains(m[1], "kind: KubeArmor") {
				continue
			}
			n++
			file := filepath.Join(t.TempDir(), filepath.Base(doc)+".yaml")
			if err := os.WriteFile(file, []byte(m[1]), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, r := range policy.LoadPaths(file) {
				for _, is := range r.Issues {
					if is.Level == policy.LevelError || is.Level == policy.LevelWarning {
						t.Errorf("%s, policy %d: %s", doc, i+1, is)
					}
				}
				if r.Status() != policy.FileValid {
					t.Errorf("%s, policy %d: %v, want valid", doc, i+1, r.Status())
				}
			}
		}
	}
	if n == 0 {
		t.Error("no policy found in README.md and docs/")
	}
}

// TestDemoHardening: demo-hardening.yaml selects the demo's pod and decides
// each operation of hack/demo/demo.sh as the demo says it does.
func TestDemoHardening(t *testing.T) {
	cat, err := policy.NewCatalog(policy.Policies(policy.LoadPaths("policies/demo-hardening.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	pod := policy.Pod{Namespace: "demo", Name: "armor-demo", Labels: map[string]string{"app": "armor-demo"}}
	target, err := cat.Resolve(pod, "app", policy.DefaultDefaults())
	if err != nil {
		t.Fatal(err)
	}
	rs := policy.Compile(target.Policies, target.Settings.Options())
	for _, c := range []struct {
		ev   policy.Event
		want policy.Action
	}{
		{policy.Event{Class: policy.ClassFile, Path: "/etc/passwd"}, policy.Allow},
		{policy.Event{Class: policy.ClassNetwork, Protocol: "udp", SocketType: "dgram"}, policy.Allow},
		{policy.Event{Class: policy.ClassNetwork, Protocol: "icmp", SocketType: "raw"}, policy.Block},
		{policy.Event{Class: policy.ClassProcess, Path: "/usr/bin/apt-get"}, policy.Block},
		{policy.Event{Class: policy.ClassProcess, Path: "/bin/busybox"}, policy.Allow},
		{policy.Event{Class: policy.ClassFile, Path: "/etc/shadow"}, policy.Audit},
	} {
		if d := policy.Decide(rs, c.ev); d.Action != c.want {
			t.Errorf("%+v: %s, want %s", c.ev, d.Action, c.want)
		}
	}
	// The same label in another namespace is not selected.
	pod.Namespace = "default"
	if target, err := cat.Resolve(pod, "app", policy.DefaultDefaults()); err != nil {
		t.Error(err)
	} else if len(target.Policies) != 0 {
		t.Errorf("pod in namespace default: %d policies, want none", len(target.Policies))
	}
}
