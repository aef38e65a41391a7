package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func armorctl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return out.String(), errb.String(), code
}

const goodPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: block-pkg
  namespace: shop
spec:
  selector:
    matchLabels:
      app: web
  process:
    matchPaths:
    - path: /usr/bin/apt
  file:
    matchPaths:
    - path: /etc/shadow
      action: Audit
      severity: 7
  action: block
`

const badPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: bad
spec:
  selector:
    matchLabels:
      app: web
  file:
    matchDirectories:
    - dir: /etc/
      recurive: true
`

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteFile(t, dir, "good.yaml", goodPolicy)
	bad := testenv.WriteFile(t, dir, "sub/bad.yaml", badPolicy)
	testenv.WriteFile(t, dir, "netpol.yml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\n")
	testenv.WriteFile(t, dir, "notes.txt", "not a policy")

	out, _, code := armorctl(t, "validate", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (one invalid file)\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; last != "3 files: 1 valid, 1 invalid, 1 skipped" {
		t.Fatalf("last line %q", last)
	}
	if want := bad + ":12: spec.file.matchDirectories[0].recurive: unknown field"; !strings.Contains(out, want+"\n") {
		t.Fatalf("missing %q in\n%s", want, out)
	}
	if !strings.Contains(out, `good.yaml:18: warning: spec.action: "block" read as "Block"`) {
		t.Fatalf("missing lower-case action warning in\n%s", out)
	}
	if !strings.Contains(out, "netpol.yml:1: notice: skipped: networking.k8s.io/v1 NetworkPolicy is not a KubeArmor policy") {
		t.Fatalf("missing skip notice in\n%s", out)
	}

	out, _, code = armorctl(t, "validate", filepath.Join(dir, "good.yaml"))
	if code != 0 || !strings.HasSuffix(out, "1 files: 1 valid, 0 invalid, 0 skipped\n") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if _, _, code = armorctl(t, "validate"); code != 2 {
		t.Fatalf("no paths: exit %d, want 2", code)
	}
	out, _, code = armorctl(t, "validate", filepath.Join(dir, "missing.yaml"))
	if code != 1 || !strings.Contains(out, "missing.yaml: ") {
		t.Fatalf("missing file: exit %d\n%s", code, out)
	}
}

// TestValidateStdin: `armorctl validate -` reads the standard input, as
// `kubectl apply -f -` does, with several documents in it; a policy it
// defines again after a file is refused, naming where the first is.
func TestValidateStdin(t *testing.T) {
	dir := t.TempDir()
	good := testenv.WriteFile(t, dir, "good.yaml", goodPolicy)
	defer func(r io.Reader) { stdin = r }(stdin)
	stdin = strings.NewReader(strings.Replace(goodPolicy, "name: ", "name: other-", 1) + "---\n" + badPolicy)
	out, _, code := armorctl(t, "validate", "-")
	if code != 1 || !strings.Contains(out, "-:31: spec.file.matchDirectories[0].recurive: unknown field") || !strings.HasSuffix(out, "1 files: 0 valid, 1 invalid, 0 skipped\n") {
		t.Fatalf("validate - (two documents, one bad): exit %d\n%s", code, out)
	}
	stdin = strings.NewReader(goodPolicy)
	out, _, code = armorctl(t, "validate", good, "-")
	if code != 1 || !strings.Contains(out, "is already defined at "+good) {
		t.Fatalf("validate FILE - (the same policy twice): exit %d\n%s", code, out)
	}
}

func TestExplainAndCheck(t *testing.T) {
	dir := t.TempDir()
	p := testenv.WriteFile(t, dir, "good.yaml", goodPolicy)
	pod := []string{"--policies", p, "--namespace", "shop", "--labels", "app=web,tier=front"}

	out, errOut, code := armorctl(t, append([]string{"explain"}, pod...)...)
	if code != 0 {
		t.Fatalf("explain exit %d: %s", code, errOut)
	}
	for _, want := range []string{"policies:   KubeArmorPolicy/shop/block-pkg", "digest:     sha256:", "Block path /usr/bin/apt", "Audit path /etc/shadow"} {
		if !strings.Contains(out, want) {
			t.Fatalf("explain output lacks %q:\n%s", want, out)
		}
	}

	out, _, code = armorctl(t, append([]string{"check", "--op", "process", "--path", "/usr/bin/apt"}, pod...)...)
	if code != 4 || !strings.HasPrefix(out, "Block ") {
		t.Fatalf("check apt: exit %d, want 4 (Block)\n%s", code, out)
	}
	out, _, _ = armorctl(t, append([]string{"check", "--op", "process", "--path", "/bin/ls"}, pod...)...)
	if !strings.HasPrefix(out, "Allow") {
		t.Fatalf("check ls:\n%s", out)
	}
	out, _, code = armorctl(t, append([]string{"check", "-o", "json", "--op", "file", "--path", "/etc/shadow"}, pod...)...)
	if code != 3 {
		t.Fatalf("check json exit %d, want 3 (Audit)", code)
	}
	var v struct {
		Action, Policy string
		Rule           *struct {
			ID       int
			Severity int
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Action != "Audit" || v.Policy != "block-pkg" || v.Rule == nil || v.Rule.Severity != 7 {
		t.Fatalf("check json: %+v\n%s", v, out)
	}

	// Audit mode by annotation, in a namespace the node does not trust to
	// weaken protection: not honoured, and said so; the Block stays.
	auditMode := append([]string{"check", "--op", "process", "--path", "/usr/bin/apt", "--annotations", "nri-armor.dev/mode=audit"}, pod...)
	out, errOut, _ = armorctl(t, auditMode...)
	if !strings.HasPrefix(out, "Block ") || !strings.Contains(errOut, `warning: annotation nri-armor.dev/mode="audit": not honoured`) {
		t.Fatalf("audit mode, untrusted namespace:\n%s%s", out, errOut)
	}
	// In a namespace the node trusts (--weaken-namespaces, or the node's
	// config file), the Block becomes an Audit.
	out, _, _ = armorctl(t, append(auditMode, "--weaken-namespaces", "shop")...)
	if !strings.HasPrefix(out, "Audit ") {
		t.Fatalf("audit mode, trusted namespace:\n%s", out)
	}
	nodeCfg := testenv.WriteFile(t, dir, "nri-armor.yaml", "socket: /x\nweakenNamespaces: [shop]\ndefaultMode: enforce\n")
	out, errOut, _ = armorctl(t, append(auditMode, "--node-config", nodeCfg)...)
	if !strings.HasPrefix(out, "Audit ") {
		t.Fatalf("audit mode, namespace trusted by --node-config:\n%s%s", out, errOut)
	}
	// The shipped node configuration trusts no namespace.
	out, _, _ = armorctl(t, append(auditMode, "--node-config", filepath.Join(testenv.RepoRoot(t), "config", "nri-armor.yaml"))...)
	if !strings.HasPrefix(out, "Block ") {
		t.Fatalf("audit mode under config/nri-armor.yaml:\n%s", out)
	}
	// A pod in another namespace is not selected.
	out, _, _ = armorctl(t, "check", "--policies", p, "--namespace", "other", "--labels", "app=web", "--op", "process", "--path", "/usr/bin/apt")
	if !strings.HasPrefix(out, "Allow") {
		t.Fatalf("other namespace:\n%s", out)
	}
	// A pod that names an unknown policy: the error names the annotation and value.
	_, errOut, code = armorctl(t, append([]string{"explain", "--annotations", "nri-armor.dev/policies=block-pkg,nope"}, pod...)...)
	if code != 1 || !strings.Contains(errOut, `annotation nri-armor.dev/policies="block-pkg,nope": no policy named "nope"`) {
		t.Fatalf("unknown policy: exit %d: %s", code, errOut)
	}
	// An invalid file anywhere: nothing is compiled.
	bad := testenv.WriteFile(t, dir, "bad.yaml", badPolicy)
	_, errOut, code = armorctl(t, "explain", "--policies", p+","+bad, "--namespace", "shop", "--labels", "app=web")
	if code != 1 || !strings.Contains(errOut, "recurive: unknown field") || !strings.Contains(errOut, "nothing compiled") {
		t.Fatalf("invalid file: exit %d: %s", code, errOut)
	}
	// Usage errors.
	if _, _, code = armorctl(t, append([]string{"check", "--op", "file"}, pod...)...); code != 2 {
		t.Fatalf("check without --path: exit %d", code)
	}
	if _, _, code = armorctl(t, append([]string{"check", "--op", "teleport"}, pod...)...); code != 2 {
		t.Fatalf("unknown op: exit %d", code)
	}
}

// TestExplainGolden compares `explain -o json` on real policies of the shared
// corpus with the golden files; run with -update to rewrite them.
func TestExplainGolden(t *testing.T) {
	corpus := testenv.Corpus(t)
	cases := []struct {
		name, file string
		args       []string
	}{
		{"amf-zero-trust", "5gsec/oai-core/ksp-core-amf-zero-trust.yaml",
			[]string{"--namespace", "oai-core", "--labels", "workload.nephio.org/oai=amf"}},
		{"amf-zero-trust-block-posture", "5gsec/oai-core/ksp-core-amf-zero-trust.yaml",
			[]string{"--namespace", "oai-core", "--labels", "workload.nephio.org/oai=amf", "--annotations", "nri-armor.dev/posture=file=block,network=block"}},
		{"netcat-subprocesses", "mitre/system/ksp-block-sub-processes-of-netcat.yaml", []string{"--namespace", "default", "--labels", "app=testpod"}},
		{"stig-syscalls-host", "stigs/system/hsp-audit-stig-ubuntu-20-010267-sensitive-syscall.yaml", []string{"--host"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(corpus, c.file)
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("corpus file: %v", err)
			}
			out, errOut, code := armorctl(t, append([]string{"explain", "-o", "json", "--policies", path}, c.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			checkGolden(t, c.name+".json", "explain -o json", out)
		})
	}
}

// checkGolden compares out, what cmd printed, with testdata/golden/name;
// -update rewrites the file.
func checkGolden(t *testing.T, name, cmd, out string) {
	t.Helper()
	golden := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if out != string(want) {
		t.Fatalf("%s differs from %s (run go test ./cmd/armorctl -update after checking the change):\n%s", cmd, golden, out)
	}
}

// TestValidateSkipsHidden: a ConfigMap volume's "..data" copies and editors'
// dot-files are not read (they would define every policy twice).
func TestValidateSkipsHidden(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteFile(t, dir, "..2026_11_27/good.yaml", goodPolicy)
	testenv.WriteFile(t, dir, "good.yaml", goodPolicy)
	testenv.WriteFile(t, dir, ".good.yaml.swp.yaml", goodPolicy)
	out, _, code := armorctl(t, "validate", dir)
	if code != 0 || !strings.HasSuffix(out, "1 files: 1 valid, 0 invalid, 0 skipped\n") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

// TestExplainAppArmor: explain -o apparmor prints the container's profile
// under the name the pod gives it, what the profile leaves out as comments
// above it, and a file apparmor_parser reads (testdata/golden/*.apparmor;
// -update rewrites them).
func TestExplainAppArmor(t *testing.T) {
	corpus := testenv.Corpus(t)
	path := filepath.Join(corpus, "5gsec/oai-core/ksp-core-amf-zero-trust.yaml")
	args := []string{"explain", "-o", "apparmor", "--policies", path, "--namespace", "oai-core", "--labels", "workload.nephio.org/oai=amf", "--container", "amf"}
	out, errOut, code := armorctl(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkGolden(t, "amf-zero-trust.apparmor", "explain -o apparmor", out)
	name := apparmor.ProfileName(policy.Pod{Namespace: "oai-core", Labels: map[string]string{"workload.nephio.org/oai": "amf"}}, "amf")
	if !strings.Contains(out, "localhostProfile: "+name+"}\n") || !strings.Contains(out, `profile "`+name+`" flags=`) {
		t.Fatalf("the profile is not named %s:\n%s", name, out)
	}
	parser, err := apparmor.FindParser()
	testenv.RequireTool(t, err, testenv.AllowSkipAppArmorVar)
	for _, f := range []string{apparmor.DebianFeatures, filepath.Join(testenv.RepoRoot(t), "enforce", "apparmor", "testdata", "features-debian12-vm")} {
		if w, err := (apparmor.Parser{Path: parser, Features: f}).Check(out); err != nil || len(w) > 0 {
			t.Fatalf("apparmor_parser -M %s: %v %q", f, err, w)
		}
	}

	for _, bad := range [][]string{
		{"explain", "-o", "apparmor", "--policies", path, "--namespace", "oai-core"},
		{"explain", "-o", "apparmor", "--policies", path, "--host", "--container", "amf"},
		{"check", "-o", "apparmor", "--policies", path, "--container", "amf", "--op", "file", "--path", "/x"},
	} {
		if _, errOut, code := armorctl(t, bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", bad, code, errOut)
		}
	}
}

// TestValidateAppArmorRules: spec.apparmor is checked with apparmor_parser,
// its errors at the file's line.
func TestValidateAppArmorRules(t *testing.T) {
	_, err := apparmor.FindParser()
	testenv.RequireTool(t, err, testenv.AllowSkipAppArmorVar)
	dir := t.TempDir()
	doc := "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: raw, namespace: shop}\nspec:\n  selector:\n    matchLabels: {app: web}\n  apparmor: |\n    deny /etc/shadow r,\n    network inet bogus,\n"
	f := testenv.WriteFile(t, dir, "raw.yaml", doc)
	out, _, code := armorctl(t, "validate", f)
	if code != 1 || !strings.Contains(out, f+":9: spec.apparmor: line 2 of the AppArmor rules: apparmor_parser: ") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	testenv.WriteFile(t, dir, "raw.yaml", strings.Replace(doc, "bogus", "stream", 1))
	if out, _, code := armorctl(t, "validate", f); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestExplainSeccomp: explain -o seccomp prints what the container's
// seccomp filter refuses and logs, what it cannot decide, and the filter
// an Unconfined container gets; a call this architecture lacks says the
// container would be refused.
func TestExplainSeccomp(t *testing.T) {
	dir := t.TempDir()
	f := testenv.WriteFile(t, dir, "sc.yaml", `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: sc, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  syscalls:
    matchSyscalls:
    - syscall: [getcpu]
      action: Block
    - syscall: [ptrace]
      fromSource: [{path: /usr/bin/gdb}]
      action: Block
    - syscall: [getpgid]
`)
	out, errOut, code := armorctl(t, "explain", "-o", "seccomp", "--policies", f, "--namespace", "shop", "--labels", "app=web")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var x struct {
		Blocked, Logged []string
		Unenforced      []struct{ Rule int } `json:"notDecidedByTheFilter"`
		BPFLSM          []int                `json:"enforcedByBPFLSMWhereActive"`
		Unconfined      struct {
			DefaultAction string
			Syscalls      []struct {
				Names  []string
				Action string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &x); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Join(x.Blocked, ",") != "getcpu" || strings.Join(x.Logged, ",") != "getpgid,ptrace" || len(x.Unenforced) != 1 ||
		x.Unconfined.DefaultAction != "SCMP_ACT_ALLOW" || len(x.Unconfined.Syscalls) != 2 || x.Unconfined.Syscalls[0].Action != "SCMP_ACT_ERRNO" {
		t.Errorf("explain -o seccomp:\n%s", out)
	}
	// The fromSource rule: BPF-LSM's where it is active (x86_64).
	if want := runtime.GOARCH == "amd64"; (len(x.BPFLSM) == 1 && x.BPFLSM[0] == x.Unenforced[0].Rule) != want {
		t.Errorf("enforcedByBPFLSMWhereActive %v (unenforced %v)", x.BPFLSM, x.Unenforced)
	}
	// The text: the syscall rules are the filter's, not "audit only".
	text, _, code := armorctl(t, "explain", "--policies", f, "--namespace", "shop", "--labels", "app=web")
	if code != 0 || !strings.Contains(text, "syscall rules: a seccomp filter merged into the container's own") ||
		!strings.Contains(text, "refused (EPERM): getcpu\n") || strings.Contains(text, "not enforced by the BPF programs") ||
		strings.Contains(text, "where BPF-LSM is active: enforced in the kernel instead") != (runtime.GOARCH == "amd64") {
		t.Errorf("explain:\n%s", text)
	}
	if _, errOut, code := armorctl(t, "explain", "-o", "seccomp", "--policies", f, "--host"); code != 2 {
		t.Errorf("--host: exit %d: %s", code, errOut)
	}
}
