package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
)

const fuzzSeedPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: seed
  namespace: default
spec:
  selector:
    matchLabels:
      app: web
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
    matchPatterns:
    - pattern: /var/**/*.{log,txt}
      action: Audit
  network:
    matchProtocols:
    - protocol: raw,icmp
  capabilities:
    matchCapabilities:
    - capability: CAP_NET_RAW
  syscalls:
    matchPaths:
    - path: /tmp/
      recursive: true
      syscall: [unlink, rmdir]
  action: Block
`

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, and
// whatever validates must also compile and decide.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(fuzzSeedPolicy))
	f.Add([]byte("kind: KubeArmorPolicy\n---\n- a\n---\n"))
	f.Add([]byte("a: &a [*a, *a]\nkind: KubeArmorHostPolicy\n"))
	f.Add([]byte("kind: KubeArmorPolicy\nspec:\n\tfile: {}\n"))
	// The shared corpus makes good seeds where it is present.
	if dir, err := testenv.CorpusDir(f); err == nil {
		files, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*.yaml"))
		for i, file := range files {
			if b, err := os.ReadFile(file); err == nil && i%10 == 0 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res := LoadBytes("fuzz.yaml", data)
		for _, i := range res.Issues {
			if i.File != "fuzz.yaml" || i.Message == "" {
				t.Fatalf("issue without file or message: %+v", i)
			}
			if strings.Contains(i.Message, "internal error") {
				t.Fatalf("loader recovered from a panic: %s", i.Message)
			}
		}
		if res.Status() != FileValid {
			return
		}
		cat, err := NewCatalog(res.Policies)
		if err != nil {
			t.Fatalf("valid file, but catalog: %v", err)
		}
		for _, mode := range []Mode{ModeEnforce, ModeAudit} {
			rs := Compile(res.Policies, Options{Postures: Postures{File: Block, Network: Audit, Capabilities: Block}, Mode: mode})
			again := Compile(cat.Policies(), Options{Postures: Postures{File: Block, Network: Audit, Capabilities: Block}, Mode: mode})
			if rs.Digest != again.Digest {
				t.Fatalf("same policies, different digests")
			}
			for _, ev := range []Event{
				{Class: ClassProcess, Path: "/usr/bin/apt", Source: "/bin/sh"},
				{Class: ClassFile, Path: "/etc/passwd", Write: true},
				{Class: ClassNetwork, Protocol: "tcp", SocketType: "stream"},
				{Class: ClassCapabilities, Capability: "net_raw"},
				{Class: ClassSyscalls, Syscall: "unlink", Path: "/tmp/x"},
			} {
				Decide(rs, ev)
			}
		}
	})
}

// FuzzDecide builds a policy from fuzzed rule fields, and checks that the
// indexed matcher agrees with a plain scan over every rule.
func FuzzDecide(f *testing.F) {
	f.Add("/etc/passwd", "/etc/", "/etc/*/x?", "Block", true, false, false, "/bin/sh", "/etc/passwd", false, uint32(0), uint32(1), "/bin/sh")
	f.Add("/a/b", "/a/", "/a/**", "Allow", false, true, true, "/x", "/a/b/c", true, uint32(5), uint32(5), "/x")
	f.Add("/srv/app.conf", "/srv/", "/srv/{a,b}[0-9]", "Audit", true, true, false, "", "/srv/a7", true, uint32(1), uint32(2), "")
	f.Fuzz(func(t *testing.T, path, dir, pattern, action string, recursive, readOnly, ownerOnly bool,
		source, evPath string, write bool, uid, owner uint32, evSource string) {
		src := ""
		if source != "" {
			src = fmt.Sprintf("      fromSource:\n      - path: %q\n", source)
		}
		doc := fmt.Sprintf(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: fz}
spec:
  selector: {matchLabels: {a: b}}
  file:
    matchPaths:
    - path: %q
      readOnly: %t
      ownerOnly: %t
%s    - path: %q
      action: Allow
    matchDirectories:
    - dir: %q
      recursive: %t
      ownerOnly: %t
%s    matchPatterns:
    - pattern: %q
      readOnly: %t
  action: %q
`, path, readOnly, ownerOnly, src, path, dir, recursive, ownerOnly, src, pattern, readOnly, action)
		res := LoadBytes("fz.yaml", []byte(doc))
		if res.Status() != FileValid {
			return
		}
		rs := Compile(res.Policies, Options{Postures: Postures{File: Block}, Mode: ModeEnforce})
		ev := Event{Class: ClassFile, Path: evPath, Write: write, UID: uid, Owner: owner, Source: evSource}
		got := Decide(rs, ev)
		want := decideByScan(rs, ev)
		if got.Action != want.Action || got.Rule != want.Rule || got.DefaultPosture != want.DefaultPosture {
			t.Fatalf("index and scan disagree for %+v:\nindex %+v\nscan  %+v\n%s", ev, got, want, rs.JSON())
		}
	})
}

// decideByScan is Decide without the index: every rule, matched directly.
func decideByScan(rs *RuleSet, ev Event) Decision {
	cr := rs.Class(ev.Class)
	var best *Rule
	for _, r := range cr.Rules {
		if !scanMatches(r, ev) || !r.Applies(&ev) {
			continue
		}
		if best == nil || r.Beats(best) {
			best = r
		}
	}
	switch {
	case best != nil:
		return Decision{Action: best.Action, Rule: best}
	case cr.AllowList:
		return Decision{Action: cr.Posture, DefaultPosture: true}
	}
	return Decision{Action: Allow}
}

func scanMatches(r *Rule, ev Event) bool {
	if ev.Path == "" {
		return false
	}
	switch r.Match.Type {
	case MatchPath:
		return ev.Path == r.Match.Value
	case MatchExecName:
		return filepath.Base(ev.Path) == r.Match.Value && strings.Contains(ev.Path, "/")
	case MatchDir:
		return inDir(ev.Path, r.Match.Value, r.Match.Recursive)
	case MatchPattern:
		g, err := CompileGlob(r.Match.Value)
		return err == nil && g.Match(ev.Path)
	}
	return false
}
