package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/internal/rootpath"
	"github.com/nri-armor/nri-armor/policy"
)

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: armorctl validate PATH...\n\nChecks policy files and directories (recursively, *.yaml and *.yml), and - for the standard input;\na file may hold several documents (---), as kubectl takes them.\nPrints every error, warning, notice and hint; exits 1 if any file is invalid.")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	var results []*policy.FileResult
	for _, a := range fs.Args() {
		if a != "-" {
			results = append(results, policy.LoadPaths(a)...)
			continue
		}
		data, err := io.ReadAll(stdin)
		if err != nil {
			fmt.Fprintf(stderr, "armorctl validate: reading the standard input: %v\n", err)
			return 2
		}
		results = append(results, policy.LoadBytes("-", data))
	}
	policy.Dedupe(results)
	counts := map[policy.FileStatus]int{}
	for _, r := range results {
		for _, i := range r.Issues {
			fmt.Fprintln(stdout, i.String())
		}
		counts[r.Status()]++
	}
	fmt.Fprintf(stdout, "%d files: %d valid, %d invalid, %d skipped\n", len(results),
		counts[policy.FileValid], counts[policy.FileInvalid], counts[policy.FileSkipped])
	if counts[policy.FileInvalid] > 0 {
		return 1
	}
	return 0
}

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// kvFlag collects k=v pairs, repeatable or comma-separated. An item without
// '=' continues the previous value, so `nri-armor.dev/policies=a,b` keeps b.
type kvFlag struct {
	m    map[string]string
	last string
}

// String is the pairs, sorted: k=v,k2=v2.
func (f *kvFlag) String() string {
	pairs := make([]string, 0, len(f.m))
	for k, v := range f.m {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}
func (f *kvFlag) Set(v string) error {
	if f.m == nil {
		f.m = map[string]string{}
	}
	for _, item := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(item, "=")
		switch {
		case ok && strings.TrimSpace(k) != "":
			f.last = strings.TrimSpace(k)
			f.m[f.last] = val
		case f.last != "":
			f.m[f.last] += "," + item
		default:
			return fmt.Errorf("%q is not key=value", item)
		}
	}
	f.last = ""
	return nil
}

// podFlags are the flags explain and check share: which policies, which pod.
type podFlags struct {
	policies    listFlag
	namespace   string
	name        string
	container   string
	labels      kvFlag
	annotations kvFlag
	posture     string
	mode        string
	nodeConfig  string
	weaken      listFlag
	output      string
	host        bool
	root        string
	// selected are the policies that apply, once compile has run.
	selected []*policy.Policy
}

func (p *podFlags) register(fs *flag.FlagSet) {
	fs.Var(&p.policies, "policies", "policy files or directories (repeatable, comma-separated)")
	fs.StringVar(&p.namespace, "namespace", "default", "the pod's namespace")
	fs.StringVar(&p.name, "pod", "", "the pod's name (shown only)")
	fs.StringVar(&p.container, "container", "", "the container's name")
	fs.Var(&p.labels, "labels", "the pod's labels, k=v,... (repeatable)")
	fs.Var(&p.annotations, "annotations", "the pod's annotations, k=v,... (repeatable)")
	fs.StringVar(&p.posture, "default-posture", "file=audit,network=audit,capabilities=audit", "the node's default postures: block or audit for every class, or class=action,... (file, network, capabilities; process follows file)")
	fs.StringVar(&p.mode, "default-mode", "enforce", "the node's default mode: enforce, audit or disabled")
	fs.StringVar(&p.nodeConfig, "node-config", "", "the node's nri-armor.yaml: its defaultPosture, defaultMode, defaultVisibility and weakenNamespaces replace --default-posture and --default-mode")
	fs.Var(&p.weaken, "weaken-namespaces", "namespaces whose pods may weaken the node's defaults by annotation, as the node's weakenNamespaces (repeatable, comma-separated)")
	fs.StringVar(&p.output, "o", "text", "output: text or json (explain: also apparmor, the container's AppArmor profile; seccomp, its seccomp filter)")
	fs.BoolVar(&p.host, "host", false, "compile the node's host policies instead of a pod's (--labels are the node's labels)")
	fs.StringVar(&p.root, "root", "", "a root filesystem (an unpacked image) to resolve the rule paths in, as nri-armor does in each container: symlinked paths get their aliases")
}

// nodeDefaults reads --default-posture and --default-mode. The posture is
// "block" or "audit" for every class, or class=action items
// ("file=block,network=audit"; a bare action sets every class, items after
// it override), process following file.
func (p *podFlags) nodeDefaults() (policy.Defaults, error) {
	d := policy.DefaultDefaults()
	for _, item := range strings.Split(p.posture, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		class, val, found := strings.Cut(item, "=")
		if !found {
			class, val = "", item
		}
		var a policy.Action
		switch strings.ToLower(strings.TrimSpace(val)) {
		case "audit":
			a = policy.Audit
		case "block":
			a = policy.Block
		default:
			return d, usagef("--default-posture %q: posture must be audit or block, got %q", p.posture, strings.TrimSpace(val))
		}
		switch policy.Class(strings.ToLower(strings.TrimSpace(class))) {
		case "":
			d.Postures = policy.Postures{File: a, Network: a, Capabilities: a}
		case policy.ClassFile:
			d.Postures.File = a
		case policy.ClassNetwork:
			d.Postures.Network = a
		case policy.ClassCapabilities:
			d.Postures.Capabilities = a
		default:
			return d, usagef("--default-posture %q: unknown class %q (use file, network or capabilities; process follows file)", p.posture, strings.TrimSpace(class))
		}
	}
	switch m := policy.Mode(strings.ToLower(strings.TrimSpace(p.mode))); m {
	case policy.ModeEnforce, policy.ModeAudit, policy.ModeDisabled:
		d.Mode = m
	default:
		return d, usagef("--default-mode %q: must be enforce, audit or disabled", p.mode)
	}
	return d, nil
}

// compile loads the policies (all or nothing), resolves the pod and compiles
// its container's rule set. The warnings say why the set may hold less than
// expected (skipped files, no policy selecting the pod …); they are printed
// on stderr as they are returned, for -o json to carry them too.
func (p *podFlags) compile(stderr io.Writer, cmd string) (*policy.Explanation, []string, error) {
	switch {
	case p.output == "apparmor" && cmd == "explain":
		if p.host {
			return nil, nil, usagef("-o apparmor: host policies get no AppArmor profile (the AppArmor backend confines containers)")
		}
		if p.container == "" {
			return nil, nil, usagef("-o apparmor needs --container: the profile is the container's")
		}
	case p.output == "seccomp" && cmd == "explain":
		if p.host {
			return nil, nil, usagef("-o seccomp: host policies get no seccomp filter (filters are set in containers)")
		}
	case p.output != "text" && p.output != "json":
		if cmd == "explain" {
			return nil, nil, usagef("-o must be text, json, apparmor or seccomp, got %q", p.output)
		}
		return nil, nil, usagef("-o must be text or json, got %q", p.output)
	}
	if len(p.policies) == 0 {
		return nil, nil, usagef("--policies is required")
	}
	defaults, err := p.nodeDefaults()
	if err != nil {
		return nil, nil, err
	}
	if p.nodeConfig != "" {
		if defaults, err = policy.ReadNodeDefaults(p.nodeConfig, "--node-config"); err != nil {
			return nil, nil, err
		}
	}
	defaults.WeakenNamespaces = append(defaults.WeakenNamespaces, p.weaken...)

	results := policy.LoadPaths(p.policies...)
	invalid := 0
	for _, r := range results {
		for _, i := range r.Errors() {
			fmt.Fprintln(stderr, i.String())
		}
		if r.Status() == policy.FileInvalid {
			invalid++
		}
	}
	if invalid > 0 {
		return nil, nil, fmt.Errorf("%d invalid policy file(s): nothing compiled", invalid)
	}
	cat, err := policy.NewCatalog(policy.Policies(results))
	if err != nil {
		return nil, nil, err
	}
	pod := policy.Pod{Namespace: p.namespace, Name: p.name, Labels: p.labels.m, Annotations: p.annotations.m}
	var target *policy.Target
	if p.host {
		pod = policy.Pod{Labels: p.labels.m}
		target = &policy.Target{Policies: cat.ResolveHost(p.labels.m),
			Settings: &policy.PodSettings{Postures: defaults.Postures, Mode: defaults.Mode, Visibility: defaults.Visibility}}
	} else if target, err = cat.Resolve(pod, p.container, defaults); err != nil {
		return nil, nil, err
	}
	p.selected = target.Policies
	s := target.Settings
	e := &policy.Explanation{
		Pod: pod, Container: p.container, Mode: s.Mode, Postures: s.Postures, Visibility: s.Visibility,
		Ignored: s.Ignored, RuleSet: policy.Compile(target.Policies, s.Options()),
	}
	warnings := append(p.fileWarnings(results), p.selectionWarnings(cat, target, e.RuleSet)...)
	if p.root != "" {
		w, err := p.alias(e)
		if err != nil {
			return nil, nil, err
		}
		warnings = append(warnings, w...)
	}
	for _, a := range s.Ignored {
		warnings = append(warnings, a.String())
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "armorctl %s: warning: %s\n", cmd, w)
	}
	return e, warnings, nil
}

// alias adds to e's set the aliases of its symlinked paths in --root, as
// the plugin does in a container's root (policy.Aliased).
func (p *podFlags) alias(e *policy.Explanation) ([]string, error) {
	if info, err := os.Stat(p.root); err != nil {
		return nil, usagef("--root: %v", err)
	} else if !info.IsDir() {
		return nil, usagef("--root %s: not a directory", p.root)
	}
	links := rootpath.New(p.root, 0)
	e.RuleSet = e.RuleSet.Aliased(links.Resolve)
	if n := links.Skipped(); n > 0 {
		return []string{fmt.Sprintf("--root %s: %d rule paths not resolved: more than %d distinct paths (nri-armor resolves no more either)", p.root, n, rootpath.DefaultMax)}, nil
	}
	return nil, nil
}

// fileWarnings names what --policies held that is not a policy: documents
// and files skipped, directories without a policy file.
func (p *podFlags) fileWarnings(results []*policy.FileResult) []string {
	out := []string{}
	for _, r := range results {
		notices := 0
		for _, i := range r.Issues {
			if i.Level == policy.LevelNotice {
				out = append(out, i.Error()) // FILE:LINE: skipped: why
				notices++
			}
		}
		if r.Status() == policy.FileSkipped && notices == 0 {
			out = append(out, r.File+": skipped: no KubeArmor policy in it")
		}
	}
	for _, path := range p.policies {
		if info, err := os.Stat(path); err != nil || !info.IsDir() {
			continue
		}
		found := false
		for _, r := range results {
			if rel, err := filepath.Rel(path, r.File); err == nil && !strings.HasPrefix(rel, "..") {
				found = true
				break
			}
		}
		if !found {
			out = append(out, path+": no policy file (*.yaml, *.yml) in this directory")
		}
	}
	return out
}

// selectionWarnings says why the pod (or node) gets fewer rules than the
// policies loaded may suggest: no policy selects it, its mode is disabled,
// or a policy that selects it gives it no rule.
func (p *podFlags) selectionWarnings(cat *policy.Catalog, target *policy.Target, rs *policy.RuleSet) []string {
	var out []string
	if target.Settings.Mode == policy.ModeDisabled {
		return append(out, "mode disabled (--default-mode or the pod's annotations): no rule is compiled")
	}
	if len(target.Policies) == 0 {
		return append(out, p.noneSelects(cat))
	}
	rules := map[string]int{}
	for _, c := range policy.Classes {
		for _, r := range rs.Class(c).Rules {
			rules[r.Origin]++
		}
	}
	what := "the pod"
	if p.host {
		what = "the node"
	}
	for _, pol := range target.Policies {
		if rules[pol.Ref()] > 0 {
			continue
		}
		var why []string
		if pol.Spec.AppArmor != "" {
			why = append(why, "its apparmor: rules are used by the AppArmor backend only")
		}
		if len(pol.Spec.Presets) > 0 {
			why = append(why, "its presets are not enforced")
		}
		if len(why) == 0 {
			why = append(why, "it has no rules")
		}
		out = append(out, fmt.Sprintf("%s applies to %s but gives it no rule: %s", pol.Ref(), what, strings.Join(why, "; ")))
	}
	return out
}

// noneSelects explains, as far as it can, why no policy selects the pod.
func (p *podFlags) noneSelects(cat *policy.Catalog) string {
	count := map[policy.Kind]int{}
	namespaces := map[string]bool{}
	var here []string // the namespace's ksps
	for _, pol := range cat.Policies() {
		count[pol.Kind]++
		if pol.Kind == policy.KindPolicy {
			namespaces[pol.Metadata.Namespace] = true
			if pol.Metadata.Namespace == p.namespace {
				here = append(here, pol.Metadata.Name)
			}
		}
	}
	if p.host {
		if count[policy.KindHostPolicy] == 0 {
			return "no host policy applies to the node: no KubeArmorHostPolicy was loaded"
		}
		return fmt.Sprintf("no host policy applies to the node: none of the %d KubeArmorHostPolicies has a nodeSelector matching --labels %q", count[policy.KindHostPolicy], p.labels.String())
	}
	msg := fmt.Sprintf("no policy selects the pod (namespace %q, labels %q)", p.namespace, p.labels.String())
	switch {
	case cat.Len() == 0:
		return msg + ": no policy was loaded from --policies"
	case count[policy.KindPolicy] > 0 && !namespaces[p.namespace]:
		ns := make([]string, 0, len(namespaces))
		for n := range namespaces {
			ns = append(ns, n)
		}
		sort.Strings(ns)
		msg += fmt.Sprintf(": the KubeArmorPolicies loaded are in namespace(s) %s", strings.Join(ns, ", "))
	case count[policy.KindHostPolicy] == cat.Len():
		return msg + ": only KubeArmorHostPolicies were loaded (they apply to the node: --host)"
	case len(here) > 0:
		msg += fmt.Sprintf(": the KubeArmorPolicies of namespace %q (%s) select other labels, or only pods that name them in %s",
			p.namespace, strings.Join(here, ", "), policy.AnnotationPolicies)
	}
	return msg
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf podFlags
	pf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "armorctl explain: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	e, warnings, err := pf.compile(stderr, "explain")
	if err != nil {
		fmt.Fprintf(stderr, "armorctl explain: %v\n", err)
		return exitStatus(err)
	}
	if pf.output == "apparmor" || pf.output == "seccomp" {
		write := writeAppArmor
		if pf.output == "seccomp" {
			write = writeSeccomp
		}
		if err := write(stdout, e, pf.selected); err != nil {
			fmt.Fprintf(stderr, "armorctl explain: %v\n", err)
			return 1
		}
		return 0
	}
	un, err := kernelUnenforced(e.RuleSet)
	if err != nil {
		fmt.Fprintf(stderr, "armorctl explain: %v\n", err)
		return 1
	}
	if pf.output == "json" {
		err = writeJSON(stdout, struct {
			*policy.Explanation
			KernelUnenforced []unenforcedRule `json:"kernelUnenforced"`
			Warnings         []string         `json:"warnings"`
		}{e, un, warnings})
	} else if err = e.WriteText(stdout); err == nil {
		if !pf.host {
			// A container's syscall rules are its seccomp filter's.
			un = slices.DeleteFunc(un, func(u unenforcedRule) bool {
				r := e.RuleSet.RuleByID(u.Rule)
				return r != nil && r.Class == policy.ClassSyscalls
			})
			err = writeSeccompText(stdout, e.RuleSet)
		}
		if len(un) > 0 {
			fmt.Fprintf(stdout, "\nnot enforced by the BPF programs (reported in user space, audit only):\n")
			for _, u := range un {
				fmt.Fprintf(stdout, "  #%-4d %s: %s\n", u.Rule, u.Describe, u.Reason)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "armorctl explain: %v\n", err)
		return 1
	}
	return 0
}

// writeAppArmor prints the AppArmor profile the container would get, as
// a file apparmor_parser reads: what the pod names and what the profile
// leaves out are comments above it.
func writeAppArmor(w io.Writer, e *policy.Explanation, selected []*policy.Policy) error {
	name := apparmor.ProfileName(e.Pod, e.Container)
	// As nri-armor loads it: network rules are cgroup-BPF's, syscall
	// rules seccomp's.
	prof, err := apparmor.Compile(name, apparmor.Restrict(e.RuleSet), apparmor.RawRulesOf(selected))
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# AppArmor profile of container %q of a pod in namespace %q (its process, file and capability rules;\n", oneLine(e.Container), oneLine(e.Pod.Namespace))
	fmt.Fprintf(&b, "# network rules are enforced by cgroup-BPF, syscall rules by seccomp).\n")
	fmt.Fprintf(&b, "# The pod names it: securityContext.appArmorProfile {type: Localhost, localhostProfile: %s}\n", name)
	fmt.Fprintf(&b, "# and the annotation nri-armor loads it by: container.apparmor.security.beta.kubernetes.io/%s: localhost/%s\n", oneLine(e.Container), name)
	fmt.Fprintf(&b, "# mode: %s; policies: %s\n", e.Mode, oneLine(strings.Join(e.RuleSet.Policies, " ")))
	if len(prof.Unenforced) > 0 {
		fmt.Fprintf(&b, "#\n# Not enforced by this profile (armor-tracer reports them; partly: enforced in part):\n")
		for _, u := range prof.Unenforced {
			part := ""
			if u.Partial {
				part = " (partly)"
			}
			fmt.Fprintf(&b, "#   #%d %s%s: %s\n", u.Rule.ID, oneLine(u.Rule.Describe()), part, u.Reason)
		}
	}
	for _, c := range prof.Unlogged {
		fmt.Fprintf(&b, "#\n# %s: allow-list with an Audit posture: what no rule matches is allowed, not logged by AppArmor (armor-tracer reports it)\n", c)
	}
	fmt.Fprintf(&b, "\n%s", prof.Text)
	_, err = io.WriteString(w, b.String())
	return err
}

// oneLine keeps text on its comment line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// unenforcedRule is a rule the kernel programs cannot enforce.
type unenforcedRule struct {
	Rule     int    `json:"rule"`
	Describe string `json:"matcher"`
	Reason   string `json:"reason"`
}

// kernelUnenforced lists the rules of rs that BPF-LSM would not enforce,
// with the backend's own reasons (patterns beyond the in-kernel matcher,
// syscall rules).
func kernelUnenforced(rs *policy.RuleSet) ([]unenforcedRule, error) {
	rep, err := bpflsm.Plan(rs)
	if err != nil {
		return nil, err
	}
	out := []unenforcedRule{}
	for _, u := range rep.Unenforced {
		out = append(out, unenforcedRule{u.Rule.ID, u.Rule.Describe(), u.Reason})
	}
	return out, nil
}
