package policy

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
)

func utIssueStrings(issues []*Issue) []string {
	var out []string
	for _, i := range issues {
		out = append(out, i.Error())
	}
	return out
}

// TestLoadErrors checks that invalid documents are rejected whole, with the
// file, the line and the field path of each error.
func TestLoadErrors(t *testing.T) {
	longPath := "/" + strings.Repeat("a", PathMax)
	cases := []struct {
		name string
		src  string
		// exact, when set, is the complete list of error texts.
		exact []string
		// contains, when set, must be among the error texts.
		contains []string
	}{
		{
			name:  "unknown field recurive",
			src:   utKSP("p", "file:\n  matchDirectories:\n  - dir: /etc/\n    recurive: true\n"),
			exact: []string{"bad.yaml:13: spec.file.matchDirectories[0].recurive: unknown field"},
		},
		{
			name:  "unknown field at top level of spec",
			src:   utKSP("p", "files:\n  matchPaths:\n  - path: /a\n"),
			exact: []string{"bad.yaml:10: spec.files: unknown field"},
		},
		{
			name:  "unknown field in metadata-free place",
			src:   "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetdata:\n  name: p\nspec: {}\n",
			exact: []string{"bad.yaml:3: metdata: unknown field", "bad.yaml:1: metadata: required field missing"},
		},
		{
			name:  "wrong type: severity string",
			src:   utKSP("p", "severity: high\nfile:\n  matchPaths:\n  - path: /a\n"),
			exact: []string{`bad.yaml:10: spec.severity: expected an integer, got the string "high"`},
		},
		{
			name:  "wrong type: quoted boolean",
			src:   utKSP("p", "file:\n  matchPaths:\n  - path: /a\n    readOnly: \"yes\"\n"),
			exact: []string{`bad.yaml:13: spec.file.matchPaths[0].readOnly: expected true or false, got the string "yes"`},
		},
		{
			name:  "wrong type: tags not a list",
			src:   utKSP("p", "tags: security\nfile:\n  matchPaths:\n  - path: /a\n"),
			exact: []string{`bad.yaml:10: spec.tags: expected a list, got the string "security"`},
		},
		{
			name:  "wrong type: matchPaths not a list",
			src:   utKSP("p", "file:\n  matchPaths: /etc/passwd\n"),
			exact: []string{`bad.yaml:11: spec.file.matchPaths: expected a list, got the string "/etc/passwd"`},
		},
		{
			name:  "wrong type: path is an integer",
			src:   utKSP("p", "file:\n  matchPaths:\n  - path: 42\n"),
			exact: []string{`bad.yaml:12: spec.file.matchPaths[0].path: expected a string, got int 42`},
		},
		{
			name:  "missing required: file path",
			src:   utKSP("p", "file:\n  matchPaths:\n  - readOnly: true\n"),
			exact: []string{"bad.yaml:12: spec.file.matchPaths[0].path: required field missing"},
		},
		{
			name:  "missing required: protocol",
			src:   utKSP("p", "network:\n  matchProtocols:\n  - fromSource:\n    - path: /bin/x\n"),
			exact: []string{"bad.yaml:12: spec.network.matchProtocols[0].protocol: required field missing"},
		},
		{
			name:  "missing required: dir",
			src:   utKSP("p", "process:\n  matchDirectories:\n  - recursive: true\n"),
			exact: []string{"bad.yaml:12: spec.process.matchDirectories[0].dir: required field missing"},
		},
		{
			name:  "missing required: metadata.name",
			src:   "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  namespace: x\nspec: {}\n",
			exact: []string{"bad.yaml:4: metadata.name: required field missing"},
		},
		{
			name:  "missing required: spec",
			src:   "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  name: p\n",
			exact: []string{"bad.yaml:1: spec: required field missing"},
		},
		{
			name:  "bad path: relative",
			src:   utKSP("p", "file:\n  matchPaths:\n  - path: etc/passwd\n"),
			exact: []string{`bad.yaml:12: spec.file.matchPaths[0].path: must be an absolute path, got "etc/passwd"`},
		},
		{
			name:  "bad path: trailing slash",
			src:   utKSP("p", "file:\n  matchPaths:\n  - path: /etc/\n"),
			exact: []string{`bad.yaml:12: spec.file.matchPaths[0].path: must not end with '/' (use a directory rule), got "/etc/"`},
		},
		{
			name:  "bad path: dot-dot component",
			src:   utKSP("p", "process:\n  matchPaths:\n  - path: /etc/../bin/sh\n"),
			exact: []string{`bad.yaml:12: spec.process.matchPaths[0].path: must not contain ".." components, got "/etc/../bin/sh"`},
		},
		{
			name:  "bad path: longer than PATH_MAX",
			src:   utKSP("p", "file:\n  matchPaths:\n  - path: "+longPath+"\n"),
			exact: []string{"bad.yaml:12: spec.file.matchPaths[0].path: longer than PATH_MAX (4096 bytes)"},
		},
		{
			name:  "bad fromSource path",
			src:   utKSP("p", "file:\n  matchPaths:\n  - path: /etc/shadow\n    fromSource:\n    - path: cat\n"),
			exact: []string{`bad.yaml:14: spec.file.matchPaths[0].fromSource[0].path: must be an absolute path, got "cat"`},
		},
		{
			name:  "bad dir: no trailing slash",
			src:   utKSP("p", "file:\n  matchDirectories:\n  - dir: /etc\n"),
			exact: []string{`bad.yaml:12: spec.file.matchDirectories[0].dir: must end with '/', got "/etc"`},
		},
		{
			name:  "bad dir: relative",
			src:   utKSP("p", "process:\n  matchDirectories:\n  - dir: bin/\n"),
			exact: []string{`bad.yaml:12: spec.process.matchDirectories[0].dir: must be an absolute directory path, got "bin/"`},
		},
		{
			name:  "bad severity: 11",
			src:   utKSP("p", "severity: 11\nfile:\n  matchPaths:\n  - path: /a\n"),
			exact: []string{"bad.yaml:10: spec.severity: must be between 1 and 10, got 11"},
		},
		{
			name:  "bad severity: 0 on a rule",
			src:   utKSP("p", "file:\n  matchPaths:\n  - path: /a\n    severity: 0\n"),
			exact: []string{"bad.yaml:13: spec.file.matchPaths[0].severity: must be between 1 and 10, got 0"},
		},
		{
			name:  "bad severity: negative on a section",
			src:   utKSP("p", "file:\n  severity: -1\n  matchPaths:\n  - path: /a\n"),
			exact: []string{"bad.yaml:11: spec.file.severity: must be between 1 and 10, got -1"},
		},
		{
			name:  "bad action",
			src:   utKSP("p", "file:\n  matchPaths:\n  - path: /a\naction: Deny\n"),
			exact: []string{`bad.yaml:13: spec.action: must be Allow, Audit or Block, got "Deny"`},
		},
		{
			name:  "bad action on a rule",
			src:   utKSP("p", "file:\n  matchPaths:\n  - path: /a\n    action: Permit\n"),
			exact: []string{`bad.yaml:13: spec.file.matchPaths[0].action: must be Allow, Audit or Block, got "Permit"`},
		},
		{
			name:  "bad capability",
			src:   utKSP("p", "capabilities:\n  matchCapabilities:\n  - capability: net_rawr\n"),
			exact: []string{`bad.yaml:12: spec.capabilities.matchCapabilities[0].capability: unknown capability "net_rawr"`},
		},
		{
			name:     "bad capability with CAP_ prefix",
			src:      utKSP("p", "capabilities:\n  matchCapabilities:\n  - capability: CAP_NET_RAW\n  - capability: CAP_FLY\n"),
			contains: []string{`bad.yaml:13: spec.capabilities.matchCapabilities[1].capability: unknown capability "CAP_FLY"`},
		},
		{
			name:  "bad protocol",
			src:   utKSP("p", "network:\n  matchProtocols:\n  - protocol: tcpp\n"),
			exact: []string{`bad.yaml:12: spec.network.matchProtocols[0].protocol: unknown protocol "tcpp"`},
		},
		{
			name:  "bad protocol in a list",
			src:   utKSP("p", "network:\n  matchProtocols:\n  - protocol: tcp,foo\n"),
			exact: []string{`bad.yaml:12: spec.network.matchProtocols[0].protocol: unknown protocol "foo"`},
		},
		{
			name:  "bad syscall",
			src:   utKSP("p", "syscalls:\n  matchSyscalls:\n  - syscall:\n    - open\n    - opne\n"),
			exact: []string{`bad.yaml:14: spec.syscalls.matchSyscalls[0].syscall[1]: unknown system call "opne" (on amd64 and arm64)`},
		},
		{
			name:  "empty syscall list",
			src:   utKSP("p", "syscalls:\n  matchSyscalls:\n  - syscall: []\n"),
			exact: []string{"bad.yaml:12: spec.syscalls.matchSyscalls[0].syscall: must list at least one system call"},
		},
		{
			name:  "syscall path: recursive on a file",
			src:   utKSP("p", "syscalls:\n  matchPaths:\n  - path: /etc/passwd\n    recursive: true\n    syscall: [chmod]\n"),
			exact: []string{"bad.yaml:13: spec.syscalls.matchPaths[0].recursive: applies only to a directory path (ending in '/')"},
		},
		{
			name:  "syscall fromSource with path and dir",
			src:   utKSP("p", "syscalls:\n  matchSyscalls:\n  - syscall: [ptrace]\n    fromSource:\n    - path: /bin/a\n      dir: /bin/\n"),
			exact: []string{"bad.yaml:14: spec.syscalls.matchSyscalls[0].fromSource[0]: needs exactly one of path or dir"},
		},
		{
			name:  "execname with a slash",
			src:   utKSP("p", "process:\n  matchPaths:\n  - execname: /bin/sh\n"),
			exact: []string{`bad.yaml:12: spec.process.matchPaths[0].execname: must be a file name without '/', got "/bin/sh"`},
		},
		{
			name:  "path and execname",
			src:   utKSP("p", "process:\n  matchPaths:\n  - path: /bin/sh\n    execname: sh\n"),
			exact: []string{"bad.yaml:12: spec.process.matchPaths[0]: set path or execname, not both"},
		},
		{
			name:  "neither path nor execname",
			src:   utKSP("p", "process:\n  matchPaths:\n  - ownerOnly: true\n"),
			exact: []string{"bad.yaml:12: spec.process.matchPaths[0]: needs path or execname"},
		},
		{
			name:  "bad apiVersion",
			src:   "apiVersion: security.kubearmor.com/v2\nkind: KubeArmorPolicy\nmetadata:\n  name: p\nspec:\n  selector: {}\n  file:\n    matchPaths:\n    - path: /a\n",
			exact: []string{`bad.yaml:1: apiVersion: must be security.kubearmor.com/v1, got "security.kubearmor.com/v2"`},
		},
		{
			name:  "ksp with nodeSelector",
			src:   utKSP("p", "nodeSelector:\n  matchLabels:\n    a: b\nfile:\n  matchPaths:\n  - path: /a\n"),
			exact: []string{"bad.yaml:10: spec.nodeSelector: not allowed in KubeArmorPolicy (use spec.selector)"},
		},
		{
			name:  "csp with matchLabels",
			src:   "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorClusterPolicy\nmetadata:\n  name: c\nspec:\n  selector:\n    matchLabels:\n      app: web\n  file:\n    matchPaths:\n    - path: /a\n",
			exact: []string{"bad.yaml:7: spec.selector.matchLabels: not allowed in KubeArmorClusterPolicy (use matchExpressions with key label)"},
		},
		{
			name:  "hsp network rule without fromSource",
			src:   "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata:\n  name: h\nspec:\n  nodeSelector:\n    matchLabels:\n      kubernetes.io/hostname: n1\n  network:\n    matchProtocols:\n    - protocol: raw\n",
			exact: []string{"bad.yaml:11: spec.network.matchProtocols[0].fromSource: required field missing (host network and capabilities rules need fromSource)"},
		},
		{
			name:     "hsp with selector",
			src:      "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata:\n  name: h\nspec:\n  selector:\n    matchLabels: {a: b}\n  file:\n    matchPaths:\n    - path: /a\n",
			contains: []string{"bad.yaml:6: spec.selector: not allowed in KubeArmorHostPolicy (use spec.nodeSelector)"},
		},
		{
			name: "bad matchExpressions",
			src:  "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorClusterPolicy\nmetadata:\n  name: c\nspec:\n  selector:\n    matchExpressions:\n    - key: pod\n      operator: Exists\n      values: [app]\n    - key: label\n      operator: In\n      values: [app]\n  file:\n    matchPaths:\n    - path: /a\n",
			exact: []string{
				`bad.yaml:8: spec.selector.matchExpressions[0].key: must be namespace or label, got "pod"`,
				`bad.yaml:9: spec.selector.matchExpressions[0].operator: must be In or NotIn, got "Exists"`,
				`bad.yaml:13: spec.selector.matchExpressions[1].values[0]: must be key=value, got "app"`,
			},
		},
		{
			name:  "ksp matchExpressions key namespace",
			src:   "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  name: p\nspec:\n  selector:\n    matchExpressions:\n    - key: namespace\n      operator: In\n      values: [x]\n  file:\n    matchPaths:\n    - path: /a\n",
			exact: []string{`bad.yaml:8: spec.selector.matchExpressions[0].key: must be label, got "namespace"`},
		},
		{
			name:  "unknown preset",
			src:   utKSP("p", "presets:\n- name: protectEverything\n"),
			exact: []string{`bad.yaml:11: spec.presets[0].name: unknown preset "protectEverything"`},
		},
		{
			name:  "policy name with a comma",
			src:   utKSP("a,b", "file:\n  matchPaths:\n  - path: /a\n"),
			exact: []string{`bad.yaml:4: metadata.name: must not contain ',' (annotations list policy names separated by commas)`},
		},
		{
			name:  "tab as indentation (YAML syntax error)",
			src:   "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n\tname: p\nspec: {}\n",
			exact: []string{"bad.yaml:4: yaml: found character that cannot start any token"},
		},
		{
			name:  "tab before a comment",
			src:   utKSP("p", "file:\n  matchPaths:\n  - path: /x\t# the file\n"),
			exact: []string{"bad.yaml:12: yaml: tab character used as indentation or separation (YAML whitespace must be spaces)"},
		},
		{
			name:  "tab at the end of a line",
			src:   utKSP("p", "file:\n  matchPaths:\n  - path: /x\n    readOnly: true\t\n"),
			exact: []string{"bad.yaml:13: yaml: tab character used as indentation or separation (YAML whitespace must be spaces)"},
		},
		{
			name:  "tab indentation inside a flow mapping",
			src:   utKSP("p", "file: {\n\tmatchPaths: [{path: /x}]}\n"),
			exact: []string{"bad.yaml:11: yaml: tab character used as indentation or separation (YAML whitespace must be spaces)"},
		},
		{
			name:  "YAML scanner error names its line",
			src:   utKSP("p", "file:\n  matchPaths:\n  - path: /x\n    message: \"a\\qb\"\n"),
			exact: []string{"bad.yaml:13: yaml: found unknown escape character"},
		},
		{
			name: "error in the second document names the line in the file",
			src: utDocs(utKSP("ok", "file:\n  matchPaths:\n  - path: /a\n"),
				utKSP("bad", "file:\n  matchPaths:\n  - path: /b\n    recursive: true\n")),
			exact: []string{"bad.yaml:26: spec.file.matchPaths[0].recursive: unknown field"},
		},
		{
			name:  "several errors in one document are all reported",
			src:   utKSP("p", "severity: 12\nfile:\n  matchPaths:\n  - path: a\n  - path: /b/\n  matchDirectories:\n  - dir: /c\n"),
			exact: []string{"bad.yaml:10: spec.severity: must be between 1 and 10, got 12", `bad.yaml:13: spec.file.matchPaths[0].path: must be an absolute path, got "a"`, `bad.yaml:14: spec.file.matchPaths[1].path: must not end with '/' (use a directory rule), got "/b/"`, `bad.yaml:16: spec.file.matchDirectories[0].dir: must end with '/', got "/c"`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := LoadBytes("bad.yaml", []byte(c.src))
			if res.Status() != FileInvalid {
				t.Fatalf("status %s, want invalid; issues %q", res.Status(), utIssueStrings(res.Issues))
			}
			if len(res.Policies) != 0 {
				t.Errorf("an invalid file yielded %d policies", len(res.Policies))
			}
			if res.Err() == nil {
				t.Error("Err() is nil for an invalid file")
			}
			errs := utIssueStrings(res.Errors())
			for _, e := range res.Errors() {
				if e.File != "bad.yaml" || e.Line <= 0 {
					t.Errorf("error without file and line: %+v", e)
				}
			}
			if c.exact != nil && !reflect.DeepEqual(sortedCopy(errs), sortedCopy(c.exact)) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(errs, "\n  "), strings.Join(c.exact, "\n  "))
			}
			for _, want := range c.contains {
				found := false
				for _, e := range errs {
					found = found || e == want
				}
				if !found {
					t.Errorf("missing error %q among\n  %s", want, strings.Join(errs, "\n  "))
				}
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// YAML parser errors (as opposed to scanner errors) must name the line
// where the problem is.
func TestLoadYAMLParserErrorLine(t *testing.T) {
	cases := []struct {
		name string
		src  string
		ok   []int // acceptable lines: where the construct opens, or where the parser gave up
	}{
		{"unclosed flow sequence", "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  name: p\nspec:\n  file:\n    matchPaths: [{path: /a}\n", []int{7, 8}},
		{"unclosed flow mapping", "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  name: p\nspec:\n  file: {matchPaths: [{path: /a}]\n", []int{6, 7}},
		{"unclosed flow sequence in a rule", utKSP("p", "file:\n  matchPaths:\n  - path: [/x\n"), []int{12, 13}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := LoadBytes("f.yaml", []byte(c.src))
			errs := res.Errors()
			if len(errs) != 1 {
				t.Fatalf("errors %q, want one", utIssueStrings(errs))
			}
			for _, l := range c.ok {
				if errs[0].Line == l {
					return
				}
			}
			t.Errorf("%s: line %d, want one of %v", errs[0].Error(), errs[0].Line, c.ok)
		})
	}
}

// Tabs inside block scalars are content, not indentation (POLICY-SPEC.md:
// "Tabs used as YAML indentation are a YAML error"; load.go's tabLine says
// "Tabs inside block scalars (|, >) ... are content and pass").
func TestLoadTabInFoldedBlockScalar(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"more-indented line with a tab, 4th line", "apparmor: >\n  file,\n  network,\n  capability,\n  \tdeny /x r,\nfile:\n  matchPaths:\n  - path: /a\n", "file, network, capability,\n\tdeny /x r,\n"},
		{"trailing tab, 3rd line", "message: >\n  one\n  two\n  three\t\nfile:\n  matchPaths:\n  - path: /a\n", ""},
		{"strip chomping", "message: >-\n  a\n  b\n  c\n  \td\nfile:\n  matchPaths:\n  - path: /a\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := LoadBytes("f.yaml", []byte(utKSP("p", c.body)))
			if res.Status() != FileValid {
				t.Fatalf("status %s: %q", res.Status(), utIssueStrings(res.Errors()))
			}
			if c.want != "" && res.Policies[0].Spec.AppArmor != c.want {
				t.Errorf("apparmor %q, want %q", res.Policies[0].Spec.AppArmor, c.want)
			}
		})
	}
}

// A key given twice in a label map is never silently dropped: it is
// reported (as an error or a warning) with its line and field path.
func TestLoadDuplicateMapKeyReported(t *testing.T) {
	src := "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  name: p\nspec:\n  selector:\n    matchLabels:\n      app: web\n      app: api\n  file:\n    matchPaths:\n    - path: /a\n"
	res := LoadBytes("f.yaml", []byte(src))
	for _, i := range res.Issues {
		if i.Line == 9 && i.Field == "spec.selector.matchLabels.app" && (i.Level == LevelError || i.Level == LevelWarning) {
			return
		}
	}
	t.Errorf("duplicate label key not reported at line 9: %q", utIssueStrings(res.Issues))
}

// A file with one bad document is rejected whole: its good documents are
// not used either.
func TestLoadRejectsWholeFile(t *testing.T) {
	src := utDocs(
		utKSP("good", "file:\n  matchPaths:\n  - path: /a\n"),
		utKSP("bad", "file:\n  matchPaths:\n  - path: relative\n"),
	)
	res := LoadBytes("mixed.yaml", []byte(src))
	if res.Status() != FileInvalid || res.Policies != nil {
		t.Fatalf("status %s with %d policies, want invalid with none", res.Status(), len(res.Policies))
	}
}

func TestLoadSeveralDocuments(t *testing.T) {
	src := "---\n" + utDocs(
		utKSP("first", "file:\n  matchPaths:\n  - path: /a\n"),
		"# only a comment\n",
		utKSP("second", "process:\n  matchPaths:\n  - execname: sh\n"),
		"apiVersion: security.kubearmor.com/v1\nkind: KubeArmorClusterPolicy\nmetadata:\n  name: third\nspec:\n  network:\n    matchProtocols:\n    - protocol: raw\n",
	)
	res := LoadBytes("multi.yaml", []byte(src))
	if res.Status() != FileValid {
		t.Fatalf("status %s: %q", res.Status(), utIssueStrings(res.Issues))
	}
	var got []string
	var lines []int
	for _, p := range res.Policies {
		got = append(got, p.Ref())
		lines = append(lines, p.Source.Line)
		if p.Source.File != "multi.yaml" || p.Digest == "" {
			t.Errorf("%s: source %+v digest %q", p.Ref(), p.Source, p.Digest)
		}
	}
	want := []string{"KubeArmorPolicy/default/first", "KubeArmorPolicy/default/second", "KubeArmorClusterPolicy/third"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("policies %q, want %q", got, want)
	}
	// "---" is line 1; first is lines 2-13, "---" 14, the comment 15, "---"
	// 16, second is lines 17-28, "---" 29, third starts on 30.
	if wantLines := []int{2, 17, 30}; !reflect.DeepEqual(lines, wantLines) {
		t.Errorf("document lines %v, want %v", lines, wantLines)
	}
}

func TestLoadSkipsOtherKinds(t *testing.T) {
	cilium := "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: c\nspec:\n  endpointSelector: {}\n  whatever: [1, 2]\n"
	kyverno := "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: k\nspec:\n  rules: []\n"
	cases := []struct {
		name     string
		src      string
		status   FileStatus
		policies int
		notices  []string
	}{
		{"cilium only", cilium, FileSkipped, 0, []string{"f.yaml:1: skipped: cilium.io/v2 CiliumNetworkPolicy is not a KubeArmor policy"}},
		{"kyverno and cilium", utDocs(kyverno, cilium), FileSkipped, 0, []string{
			"f.yaml:1: skipped: kyverno.io/v1 ClusterPolicy is not a KubeArmor policy",
			"f.yaml:8: skipped: cilium.io/v2 CiliumNetworkPolicy is not a KubeArmor policy",
		}},
		{"mixed with a KubeArmor policy", utDocs(cilium, utKSP("p", "file:\n  matchPaths:\n  - path: /a\n")), FileValid, 1, []string{
			"f.yaml:1: skipped: cilium.io/v2 CiliumNetworkPolicy is not a KubeArmor policy",
		}},
		{"a list document", "- a\n- b\n", FileSkipped, 0, []string{"f.yaml:1: skipped: document is not a mapping"}},
		{"no kind", "a: 1\n", FileSkipped, 0, []string{"f.yaml:1: skipped: document has no kind"}},
		{"empty file", "", FileSkipped, 0, nil},
		{"only comments and separators", "# nothing\n---\n---\n", FileSkipped, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := LoadBytes("f.yaml", []byte(c.src))
			if res.Status() != c.status || len(res.Policies) != c.policies {
				t.Fatalf("status %s with %d policies, want %s with %d; issues %q", res.Status(), len(res.Policies), c.status, c.policies, utIssueStrings(res.Issues))
			}
			var notices []string
			for _, i := range res.Issues {
				if i.Level == LevelNotice {
					notices = append(notices, i.Error())
				}
			}
			if !reflect.DeepEqual(notices, c.notices) {
				t.Errorf("notices %q, want %q", notices, c.notices)
			}
			if len(res.Errors()) != 0 {
				t.Errorf("errors: %q", utIssueStrings(res.Errors()))
			}
		})
	}
}

// Accepted with a warning: lower-case action, empty severity, a field
// given twice (the last wins), and the like.
func TestLoadWarnings(t *testing.T) {
	cases := []struct {
		name     string
		src      string
		warnings []string // each must be present
		check    func(t *testing.T, p *Policy)
	}{
		{
			name:     "lower-case action",
			src:      utKSP("p", "file:\n  matchPaths:\n  - path: /a\naction: block\n"),
			warnings: []string{`w.yaml:13: spec.action: "block" read as "Block"`},
			check: func(t *testing.T, p *Policy) {
				if p.Spec.Action != Block {
					t.Errorf("action %q, want Block", p.Spec.Action)
				}
			},
		},
		{
			name:     "upper-case action on a rule",
			src:      utKSP("p", "file:\n  matchPaths:\n  - path: /a\n    action: ALLOW\n"),
			warnings: []string{`w.yaml:13: spec.file.matchPaths[0].action: "ALLOW" read as "Allow"`},
			check: func(t *testing.T, p *Policy) {
				if a := p.Spec.File.MatchPaths[0].Action; a != Allow {
					t.Errorf("action %q, want Allow", a)
				}
			},
		},
		{
			name:     "empty severity",
			src:      utKSP("p", "severity:\nfile:\n  matchPaths:\n  - path: /a\n    severity: 4\n"),
			warnings: []string{"w.yaml:10: spec.severity: empty; inherited from the enclosing section or unset"},
			check: func(t *testing.T, p *Policy) {
				if p.Spec.Severity != 0 || p.Spec.File.MatchPaths[0].Severity != 4 {
					t.Errorf("severities %d, %d", p.Spec.Severity, p.Spec.File.MatchPaths[0].Severity)
				}
			},
		},
		{
			name:     "empty severity on a rule",
			src:      utKSP("p", "file:\n  matchPaths:\n  - path: /a\n    severity:\n"),
			warnings: []string{"w.yaml:13: spec.file.matchPaths[0].severity: empty; inherited from the enclosing section or unset"},
		},
		{
			name:     "duplicate field: last wins",
			src:      utKSP("p", "file:\n  matchPaths:\n  - path: /first\n    path: /second\n"),
			warnings: []string{"w.yaml:13: spec.file.matchPaths[0].path: duplicate field: this value replaces the one at line 12 (the earlier one is ignored)"},
			check: func(t *testing.T, p *Policy) {
				if got := p.Spec.File.MatchPaths[0].Path; got != "/second" {
					t.Errorf("path %q, want /second", got)
				}
			},
		},
		{
			name:     "duplicate section: replaced, not merged",
			src:      utKSP("p", "file:\n  matchPaths:\n  - path: /a\n  - path: /b\nfile:\n  matchDirectories:\n  - dir: /c/\n"),
			warnings: []string{"w.yaml:14: spec.file: duplicate field: this value replaces the one at line 10 (the earlier one is ignored)"},
			check: func(t *testing.T, p *Policy) {
				if n := len(p.Spec.File.MatchPaths); n != 0 {
					t.Errorf("%d matchPaths survived the replacement", n)
				}
				if n := len(p.Spec.File.MatchDirectories); n != 1 {
					t.Errorf("%d matchDirectories, want 1", n)
				}
			},
		},
		{
			name:     "duplicate boolean: last wins (false)",
			src:      utKSP("p", "file:\n  matchDirectories:\n  - dir: /a/\n    recursive: true\n    recursive: false\n"),
			warnings: []string{"w.yaml:14: spec.file.matchDirectories[0].recursive: duplicate field: this value replaces the one at line 13 (the earlier one is ignored)"},
			check: func(t *testing.T, p *Policy) {
				if p.Spec.File.MatchDirectories[0].Recursive {
					t.Error("recursive: true survived")
				}
			},
		},
		{
			name:     "ksp without selector",
			src:      "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  name: p\nspec:\n  file:\n    matchPaths:\n    - path: /a\n",
			warnings: []string{"w.yaml:5: spec: no selector: the policy applies only to pods that name it in the nri-armor.dev/policies annotation"},
			check: func(t *testing.T, p *Policy) {
				if p.Metadata.Namespace != "default" {
					t.Errorf("namespace %q, want default", p.Metadata.Namespace)
				}
			},
		},
		{
			name:     "doubled slash",
			src:      utKSP("p", "file:\n  matchPaths:\n  - path: /etc//passwd\n"),
			warnings: []string{"w.yaml:12: spec.file.matchPaths[0].path: contains '//': read as a single '/'"},
		},
		{
			name:     "syscall missing on arm64",
			src:      utKSP("p", "syscalls:\n  matchSyscalls:\n  - syscall: [open, openat]\n"),
			warnings: []string{`w.yaml:12: spec.syscalls.matchSyscalls[0].syscall[0]: system call "open" does not exist on arm64: nri-armor refuses the containers this rule applies to on such nodes`},
		},
		{
			name:     "known preset",
			src:      utKSP("p", "presets:\n- name: filelessExec\nfile:\n  matchPaths:\n  - path: /a\n"),
			warnings: []string{`w.yaml:11: spec.presets[0]: preset "filelessExec" is not enforced by nri-armor`},
		},
		{
			name: "tab inside a quoted string and a literal block scalar is content",
			src:  utKSP("p", "message: \"a\\tb\tc\"\napparmor: |\n  file,\n  \tdeny /x r,\t\n  network,\nfile:\n  matchPaths:\n  - path: /a\n"),
			check: func(t *testing.T, p *Policy) {
				if p.Spec.Message != "a\tb\tc" {
					t.Errorf("message %q", p.Spec.Message)
				}
				if p.Spec.AppArmor != "file,\n\tdeny /x r,\t\nnetwork,\n" {
					t.Errorf("apparmor %q", p.Spec.AppArmor)
				}
			},
		},
		{
			name: "kubectl output: status and cluster metadata accepted",
			src:  "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata:\n  name: p\n  namespace: prod\n  uid: 1234\n  resourceVersion: \"5\"\n  generation: 2\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\n  managedFields:\n  - manager: kubectl\nspec:\n  selector: {matchLabels: {app: web}}\n  file:\n    matchPaths:\n    - path: /a\nstatus:\n  PolicyStatus: OK\n",
			check: func(t *testing.T, p *Policy) {
				if p.Ref() != "KubeArmorPolicy/prod/p" {
					t.Errorf("ref %s", p.Ref())
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := LoadBytes("w.yaml", []byte(c.src))
			if res.Status() != FileValid || len(res.Policies) != 1 {
				t.Fatalf("status %s with %d policies; issues %q", res.Status(), len(res.Policies), utIssueStrings(res.Issues))
			}
			warnings := utIssueStrings(res.Warnings())
			for _, w := range c.warnings {
				found := false
				for _, got := range warnings {
					found = found || got == w
				}
				if !found {
					t.Errorf("missing warning %q among\n  %s", w, strings.Join(warnings, "\n  "))
				}
			}
			if c.check != nil {
				c.check(t, res.Policies[0])
			}
		})
	}
}

// Issue's text form is FILE:LINE: FIELD: MESSAGE, leaving out what is unset.
func TestIssueErrorText(t *testing.T) {
	cases := []struct {
		issue Issue
		want  string
	}{
		{Issue{File: "a.yaml", Line: 3, Field: "spec.x", Message: "bad"}, "a.yaml:3: spec.x: bad"},
		{Issue{File: "a.yaml", Line: 3, Message: "bad"}, "a.yaml:3: bad"},
		{Issue{File: "a.yaml", Field: "spec", Message: "bad"}, "a.yaml: spec: bad"},
		{Issue{File: "a.yaml", Message: "bad"}, "a.yaml: bad"},
	}
	for _, c := range cases {
		if got := c.issue.Error(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.issue, got, c.want)
		}
	}
}

// The loader never panics and never returns policies with errors, whatever
// the input.
func TestLoadOddInputs(t *testing.T) {
	for _, src := range []string{
		"\x00\x01\x02",
		"{",
		"kind: KubeArmorPolicy\n",
		"kind: KubeArmorPolicy\nspec: [1]\n",
		"kind: KubeArmorPolicy\napiVersion: security.kubearmor.com/v1\nmetadata: x\nspec: {}\n",
		"a: &a [*a, *a]\nkind: KubeArmorPolicy\n",
		"kind: KubeArmorPolicy\napiVersion: security.kubearmor.com/v1\nmetadata: {name: p}\nspec: {severity: 99999999999}\n",
		"kind: KubeArmorPolicy\napiVersion: security.kubearmor.com/v1\nmetadata: {name: p}\nspec: {file: {matchPaths: [{path: /a, readOnly: 1}]}}\n",
		"kind: KubeArmorPolicy\napiVersion: security.kubearmor.com/v1\nmetadata: {name: p}\nspec: {file: {matchPaths: [[1]]}}\n",
	} {
		res := LoadBytes("odd.yaml", []byte(src))
		if res.Status() == FileValid {
			t.Errorf("%q loaded as valid", src)
		}
		if len(res.Errors()) > 0 && res.Policies != nil {
			t.Errorf("%q: policies returned along with errors", src)
		}
	}
}

func TestLoadPathsOrder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) { testenv.WriteFile(t, dir, name, content) }
	write("b.yaml", utKSP("b", "file:\n  matchPaths:\n  - path: /b\n"))
	write("a.YML", utKSP("a", "file:\n  matchPaths:\n  - path: /a\n"))
	write("sub/c.yaml", utKSP("c", "file:\n  matchPaths:\n  - path: c\n"))
	write("notes.txt", "not yaml: [")
	res := LoadPaths(dir, filepath.Join(dir, "missing.yaml"))
	var got []string
	for _, r := range res {
		got = append(got, filepath.Base(r.File)+"="+string(r.Status()))
	}
	want := []string{"a.YML=valid", "b.yaml=valid", "c.yaml=invalid", "missing.yaml=invalid"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadPaths: %q, want %q", got, want)
	}
	if e := res[2].Err(); e == nil || !strings.HasPrefix(e.Error(), filepath.Join(dir, "sub", "c.yaml")+":12: spec.file.matchPaths[0].path: ") {
		t.Errorf("error of sub/c.yaml: %v", e)
	}
	for name, want := range map[string]bool{"a.yaml": true, "a.yml": true, "A.YAML": true, "a.json": false, "yaml": false} {
		if IsPolicyFile(name) != want {
			t.Errorf("IsPolicyFile(%q) = %v", name, !want)
		}
	}
}
