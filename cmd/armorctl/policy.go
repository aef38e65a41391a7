package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/nri-armor/nri-armor/enforce/bpflsm"
	"github.com/nri-armor/nri-armor/policy"
)

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: armorctl validate PATH...\n\nChecks policy files and directories (recursively, *.yaml and *.yml).\nPrints every error, warning and notice; exits 1 if any file is invalid.")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	results := policy.LoadPaths(fs.Args()...)
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

func (f *kvFlag) String() string { return fmt.Sprint(f.m) }
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
}

func (p *podFlags) register(fs *flag.FlagSet) {
	fs.Var(&p.policies, "policies", "policy files or directories (repeatable, comma-separated)")
	fs.StringVar(&p.namespace, "namespace", "default", "the pod's namespace")
	fs.StringVar(&p.name, "pod", "", "the pod's name (shown only)")
	fs.StringVar(&p.container, "container", "", "the container's name")
	fs.Var(&p.labels, "labels", "the pod's labels, k=v,... (repeatable)")
	fs.Var(&p.annotations, "annotations", "the pod's annotations, k=v,... (repeatable)")
	fs.StringVar(&p.posture, "default-posture", "file=audit,network=audit,capabilities=audit", "the node's default postures")
	fs.StringVar(&p.mode, "default-mode", "enforce", "the node's default mode: enforce, audit or disabled")
	fs.StringVar(&p.nodeConfig, "node-config", "", "the node's nri-armor.yaml: its defaultPosture, defaultMode, defaultVisibility and weakenNamespaces replace --default-posture and --default-mode")
	fs.Var(&p.weaken, "weaken-namespaces", "namespaces whose pods may weaken the node's defaults by annotation, as the node's weakenNamespaces (repeatable, comma-separated)")
	fs.StringVar(&p.output, "o", "text", "output: text or json")
	fs.BoolVar(&p.host, "host", false, "compile the node's host policies instead of a pod's (--labels are the node's labels)")
}

// compile loads the policies (all or nothing), resolves the pod and compiles
// its container's rule set.
func (p *podFlags) compile(stderr io.Writer) (*policy.Explanation, error) {
	if p.output != "text" && p.output != "json" {
		return nil, fmt.Errorf("-o must be text or json, got %q", p.output)
	}
	if len(p.policies) == 0 {
		return nil, errors.New("--policies is required")
	}
	defaults := policy.DefaultDefaults()
	node, err := policy.ParseAnnotations(map[string]string{
		policy.AnnotationPosture: p.posture, policy.AnnotationMode: p.mode,
	}, "", defaults)
	if err != nil {
		return nil, fmt.Errorf("--default-posture/--default-mode: %v", err)
	}
	defaults.Postures, defaults.Mode = node.Postures, node.Mode
	if p.nodeConfig != "" {
		if defaults, err = readNodeDefaults(p.nodeConfig); err != nil {
			return nil, err
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
		return nil, fmt.Errorf("%d invalid policy file(s): nothing compiled", invalid)
	}
	cat, err := policy.NewCatalog(policy.Policies(results))
	if err != nil {
		return nil, err
	}
	pod := policy.Pod{Namespace: p.namespace, Name: p.name, Labels: p.labels.m, Annotations: p.annotations.m}
	var target *policy.Target
	if p.host {
		pod = policy.Pod{Labels: p.labels.m}
		target = &policy.Target{Policies: cat.ResolveHost(p.labels.m),
			Settings: &policy.PodSettings{Postures: defaults.Postures, Mode: defaults.Mode, Visibility: defaults.Visibility}}
	} else if target, err = cat.Resolve(pod, p.container, defaults); err != nil {
		return nil, err
	}
	s := target.Settings
	for _, a := range s.Ignored {
		fmt.Fprintf(stderr, "warning: %s\n", a)
	}
	return &policy.Explanation{
		Pod: pod, Container: p.container, Mode: s.Mode, Postures: s.Postures, Visibility: s.Visibility,
		Ignored: s.Ignored, RuleSet: policy.Compile(target.Policies, s.Options()),
	}, nil
}

// readNodeDefaults reads the node's defaults from its nri-armor.yaml, as
// the daemon does; the file's other keys are the daemon's business.
func readNodeDefaults(path string) (policy.Defaults, error) {
	nd := policy.DefaultNodeDefaults()
	data, err := os.ReadFile(path)
	if err != nil {
		return policy.Defaults{}, fmt.Errorf("--node-config: %w", err)
	}
	if err := yaml.Unmarshal(data, &nd); err != nil {
		return policy.Defaults{}, fmt.Errorf("--node-config %s: %v", path, err)
	}
	d, err := nd.Defaults()
	if err != nil {
		return d, fmt.Errorf("--node-config %s: %v", path, err)
	}
	return d, nil
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
	e, err := pf.compile(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "armorctl explain: %v\n", err)
		return 1
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
		}{e, un})
	} else if err = e.WriteText(stdout); err == nil && len(un) > 0 {
		fmt.Fprintf(stdout, "\nnot enforced by the BPF programs (reported in user space, audit only):\n")
		for _, u := range un {
			fmt.Fprintf(stdout, "  #%-4d %s: %s\n", u.Rule, u.Describe, u.Reason)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "armorctl explain: %v\n", err)
		return 1
	}
	return 0
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf podFlags
	pf.register(fs)
	var ev policy.Event
	var op string
	var uid, owner uint
	fs.StringVar(&op, "op", "", "the operation: process, file, network, capabilities or syscall")
	fs.StringVar(&ev.Path, "path", "", "process: the executable; file: the file; syscall: its path argument")
	fs.BoolVar(&ev.Write, "write", false, "file: the access writes")
	fs.StringVar(&ev.Source, "source", "", "the acting process's executable")
	fs.UintVar(&uid, "uid", 0, "the acting process's uid")
	fs.UintVar(&owner, "owner", 0, "the uid that owns --path")
	fs.StringVar(&ev.Protocol, "protocol", "", "network: tcp, udp, icmp, icmpv6, sctp, raw, stream, dgram …")
	fs.StringVar(&ev.SocketType, "socket-type", "", "network: the socket type, if not the one --protocol implies")
	fs.StringVar(&ev.Capability, "capability", "", "capabilities: e.g. net_raw or CAP_NET_RAW")
	fs.StringVar(&ev.Syscall, "syscall", "", "syscall: its name")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ev.UID, ev.Owner = uint32(uid), uint32(owner)
	if err := completeEvent(&ev, op); err != nil {
		fmt.Fprintf(stderr, "armorctl check: %v\n", err)
		return 2
	}
	e, err := pf.compile(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "armorctl check: %v\n", err)
		return 1
	}
	d := policy.Decide(e.RuleSet, ev)
	if pf.output == "json" {
		err = writeJSON(stdout, struct {
			Action         policy.Action `json:"action"`
			Policy         string        `json:"policy"`
			Rule           *policy.Rule  `json:"rule"`
			DefaultPosture bool          `json:"defaultPosture"`
			Event          policy.Event  `json:"event"`
			Digest         string        `json:"digest"`
		}{d.Action, d.PolicyName(), d.Rule, d.DefaultPosture, ev, e.RuleSet.Digest})
	} else {
		err = d.WriteText(stdout, e.RuleSet)
	}
	if err != nil {
		fmt.Fprintf(stderr, "armorctl check: %v\n", err)
		return 1
	}
	return 0
}

// completeEvent checks that the flags describe one operation and fills in
// what they imply (the socket type of a protocol).
func completeEvent(ev *policy.Event, op string) error {
	need := func(name, v string) error {
		if v == "" {
			return fmt.Errorf("--op %s needs --%s", op, name)
		}
		return nil
	}
	switch op {
	case "process":
		ev.Class = policy.ClassProcess
		return need("path", ev.Path)
	case "file":
		ev.Class = policy.ClassFile
		return need("path", ev.Path)
	case "network":
		ev.Class = policy.ClassNetwork
		if err := need("protocol", ev.Protocol); err != nil {
			return err
		}
		proto, st := policy.DefaultSocketType(strings.ToLower(ev.Protocol))
		ev.Protocol = proto
		if ev.SocketType == "" {
			ev.SocketType = st
		}
		ev.SocketType = strings.ToLower(ev.SocketType)
		return nil
	case "capabilities", "capability":
		ev.Class = policy.ClassCapabilities
		if err := need("capability", ev.Capability); err != nil {
			return err
		}
		if _, ok := policy.NormalizeCapability(ev.Capability); !ok {
			return fmt.Errorf("unknown capability %q", ev.Capability)
		}
		return nil
	case "syscall", "syscalls":
		ev.Class = policy.ClassSyscalls
		return need("syscall", ev.Syscall)
	case "":
		return fmt.Errorf("--op is required (process, file, network, capabilities or syscall)")
	}
	return fmt.Errorf("unknown --op %q (process, file, network, capabilities or syscall)", op)
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
