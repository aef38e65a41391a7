package apparmor

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/policy"
)

// TestDifferential: for generated rule sets and events, the decision the
// profile gives (the model of the kernel, reading the profile's text)
// equals policy.Decide's — Allow, Audit (allowed and logged) or Block —
// except where a rule the profile reports unenforced takes part, and
// except that a class in allow-list mode with an Audit posture does not
// log what its posture allows (Profile.Unlogged): there the profile must
// allow, unlogged.
func TestDifferential(t *testing.T) {
	requireParser(t)
	rng := rand.New(rand.NewSource(1))
	checked, skipped := 0, 0
	reasons := map[string]int{}
	for i := 0; i < 60; i++ {
		doc, opts := genPolicy(rng)
		res := policy.LoadBytes("gen.yaml", []byte(doc))
		if err := res.Err(); err != nil {
			t.Fatalf("generated policy: %v\n%s", err, doc)
		}
		rs := policy.Compile(res.Policies, opts)
		p := compiled(t, rs, nil)
		m := parseModel(t, p.Text)
		for _, u := range p.Unenforced {
			reasons[u.Reason]++
		}
		c, s := differential(t, rs, p, m, genEvents(rng))
		checked += c
		skipped += s
		if t.Failed() {
			t.Logf("policy:\n%s\nprofile:\n%s", doc, p.Text)
			return
		}
	}
	t.Logf("%d events compared, %d left out (an unenforced rule takes part)", checked, skipped)
	for r, n := range reasons {
		t.Logf("%4d unenforced: %s", n, r)
	}
	if checked < 10*skipped {
		t.Errorf("too many events left out: %d of %d", skipped, checked+skipped)
	}
}

// event is a policy.Event with the name AppArmor gives its object: a
// directory's path with a trailing '/', a socket's family and type.
type event struct {
	ev      policy.Event
	name    string // file and process
	family  string // network
	aaType  string // network
	dirName bool
}

// differential compares the model's verdicts with Decide's; it returns
// how many events it compared and how many it left out. Events below /proc
// and /sys are not compared: the profile's base denies writes there, as
// the runtime's default profile does, whatever the rules.
func differential(t *testing.T, rs *policy.RuleSet, p Profile, m *aaModel, events []event) (checked, skipped int) {
	t.Helper()
	un := map[int]bool{}
	for _, u := range p.Unenforced {
		// A program run as a script's interpreter is what these leave
		// out; the events here are programs execve names.
		if u.Reason != reasonInterpreterBlock && u.Reason != reasonInterpreterAudit {
			un[u.Rule.ID] = true
		}
	}
	unlogged := map[policy.Class]bool{}
	for _, c := range p.Unlogged {
		unlogged[c] = true
	}
	for _, e := range events {
		if strings.HasPrefix(e.name, "/proc/") || strings.HasPrefix(e.name, "/sys/") {
			continue // the runtime's default profile governs them (TestBase)
		}
		want := policy.Decide(rs, e.ev)
		var got verdict
		switch e.ev.Class {
		case policy.ClassProcess:
			got = m.file(e.name, e.ev.UID == e.ev.Owner, "x")
		case policy.ClassFile:
			req := "r"
			if e.ev.Write {
				req = "w"
			}
			got = m.file(e.name, e.ev.UID == e.ev.Owner, req)
		case policy.ClassNetwork:
			got = m.socket(e.family, e.aaType)
		case policy.ClassCapabilities:
			got = m.capable(e.ev.Capability)
		}
		if involved(rs, e.ev, un) || slices.ContainsFunc(got.ids, func(id int) bool { return un[id] }) {
			skipped++
			continue
		}
		checked++
		wantAction := want.Action
		if want.DefaultPosture && want.Action == policy.Audit && unlogged[e.ev.Class] {
			wantAction = policy.Allow // allowed, as the posture says; not logged
		}
		if got.action != wantAction {
			t.Errorf("%+v (AppArmor name %q, dir %t, socket %s %s): profile %s (lines of rules %v), Decide %s (rule %v, posture %t)",
				e.ev, e.name, e.dirName, e.family, e.aaType, got.action, got.ids, want.Action, describe(want.Rule), want.DefaultPosture)
			return
		}
	}
	return checked, skipped
}

func describe(r *policy.Rule) string {
	if r == nil {
		return "none"
	}
	return fmt.Sprintf("#%d %s %s", r.ID, r.Action, r.Describe())
}

// involved reports whether a rule in un matches ev under Decide's
// semantics (its matcher and its modifiers).
func involved(rs *policy.RuleSet, ev policy.Event, un map[int]bool) bool {
	for _, r := range rs.Class(ev.Class).Rules {
		if !un[r.ID] {
			continue
		}
		one := &policy.RuleSet{}
		one.Class(ev.Class).Rules = []*policy.Rule{r}
		if d := policy.Decide(one, ev); d.Rule == r {
			return true
		}
	}
	return false
}

// The vocabulary of generated paths: a few names under /t, so that rules
// and events meet often, with characters that need escaping.
var (
	genNames    = []string{"a", "b", "ab", "a.b", "x y", "c@", "d*", "e{f}", "[g]", "h\\i", "é"}
	genPatParts = []string{"a", "b", "*", "**", "?", "[ab]", "[^a]", "[a-c]", "{a,b}", "{,a}", "a*", "*b", "{a,*}", "{ab,b?}", ".b", "\\*", "[]a]", "{a}", "@{a,b}", "[!a-b]"}
	genSources  = []string{"/bin/sh", "/t/a"}
)

func genPath(rng *rand.Rand, minDepth int) string {
	depth := minDepth + rng.Intn(3)
	p := "/t"
	for i := 0; i < depth; i++ {
		p += "/" + genNames[rng.Intn(len(genNames))]
	}
	return p
}

func genPattern(rng *rand.Rand) string {
	var b strings.Builder
	switch rng.Intn(8) {
	case 0:
		b.WriteString("**")
	case 1:
		b.WriteString("/**")
	default:
		b.WriteString("/t")
	}
	for i, n := 0, 1+rng.Intn(3); i < n; i++ {
		b.WriteString("/")
		for j, k := 0, 1+rng.Intn(2); j < k; j++ {
			b.WriteString(genPatParts[rng.Intn(len(genPatParts))])
		}
	}
	if rng.Intn(10) == 0 {
		b.WriteString("/")
	}
	return b.String()
}

// genPolicy writes a policy of random rules and the options to compile it with.
func genPolicy(rng *rand.Rand) (string, policy.Options) {
	var b strings.Builder
	b.WriteString("apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: gen, namespace: ns}\nspec:\n  selector: {matchLabels: {a: b}}\n")
	actions := []string{"Allow", "Audit", "Block"}
	rule := func(fields string, sourced bool) string {
		s := "    - " + fields + "\n"
		if rng.Intn(3) > 0 {
			s += "      action: " + actions[rng.Intn(3)] + "\n"
		}
		if sourced && rng.Intn(8) == 0 {
			s += fmt.Sprintf("      fromSource:\n      - path: %s\n", genSources[rng.Intn(len(genSources))])
		}
		return s
	}
	mods := func(readOnly bool) string {
		s := ""
		if rng.Intn(4) == 0 {
			s += "\n      ownerOnly: true"
		}
		if readOnly && rng.Intn(4) == 0 {
			s += "\n      readOnly: true"
		}
		return s
	}
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	for _, class := range []string{"process", "file"} {
		var paths, dirs, pats []string
		for i, n := 0, rng.Intn(5); i < n; i++ {
			switch rng.Intn(4) {
			case 0, 1:
				if class == "process" && rng.Intn(3) == 0 {
					paths = append(paths, rule("execname: "+q(genNames[rng.Intn(len(genNames))])+mods(false), true))
				} else {
					paths = append(paths, rule("path: "+q(genPath(rng, 1))+mods(class == "file"), true))
				}
			case 2:
				dirs = append(dirs, rule(fmt.Sprintf("dir: %q\n      recursive: %t", genPath(rng, 0)+"/", rng.Intn(2) == 0)+mods(class == "file"), true))
			case 3:
				pats = append(pats, rule("pattern: "+q(genPattern(rng))+mods(class == "file"), false))
			}
		}
		if len(paths)+len(dirs)+len(pats) == 0 {
			continue
		}
		b.WriteString("  " + class + ":\n")
		for _, l := range []struct {
			key   string
			rules []string
		}{{"matchPaths", paths}, {"matchDirectories", dirs}, {"matchPatterns", pats}} {
			if len(l.rules) > 0 {
				b.WriteString("    " + l.key + ":\n" + strings.Join(l.rules, ""))
			}
		}
	}
	protocols := []string{"tcp", "udp", "icmp", "icmpv6", "sctp", "dccp", "raw", "stream", "dgram", "seqpacket", "rdm", "packet", "all"}
	if n := rng.Intn(4); n > 0 {
		b.WriteString("  network:\n    matchProtocols:\n")
		for i := 0; i < n; i++ {
			b.WriteString(rule("protocol: "+protocols[rng.Intn(len(protocols))], true))
		}
	}
	if n := rng.Intn(4); n > 0 {
		b.WriteString("  capabilities:\n    matchCapabilities:\n")
		for i := 0; i < n; i++ {
			b.WriteString(rule("capability: "+policy.CapabilityName(rng.Intn(41)), true))
		}
	}
	postures := []policy.Action{policy.Audit, policy.Block}
	opts := policy.Options{Mode: policy.ModeEnforce, Postures: policy.Postures{
		File: postures[rng.Intn(2)], Network: postures[rng.Intn(2)], Capabilities: postures[rng.Intn(2)]}}
	if rng.Intn(10) == 0 {
		opts.Mode = policy.ModeAudit
	}
	return b.String(), opts
}

// Socket types by number, as AppArmor names them (SOCK_DCCP has no name).
var aaSocketTypes = map[uint32]string{1: "stream", 2: "dgram", 3: "raw", 4: "rdm", 5: "seqpacket", 6: "dccp", 10: "packet"}

func genEvents(rng *rand.Rand) []event {
	var out []event
	for i := 0; i < 400; i++ {
		p := genPath(rng, 0)
		switch rng.Intn(12) {
		case 0:
			p = "/"
		case 1:
			p = "/t"
		}
		uid, owner := uint32(rng.Intn(2)), uint32(rng.Intn(2))
		src := ""
		if rng.Intn(4) == 0 {
			src = genSources[rng.Intn(len(genSources))]
		}
		if rng.Intn(3) == 0 {
			out = append(out, event{ev: policy.Event{Class: policy.ClassProcess, Path: p, UID: uid, Owner: owner, Source: src}, name: p})
			continue
		}
		e := event{ev: policy.Event{Class: policy.ClassFile, Path: p, Write: rng.Intn(2) == 0, UID: uid, Owner: owner, Source: src}, name: p}
		if rng.Intn(3) == 0 && p != "/" {
			e.name, e.dirName = p+"/", true
		}
		out = append(out, e)
	}
	for _, fam := range []uint32{2, 10, 17} {
		for typ := range aaSocketTypes {
			for _, proto := range []uint32{0, 1, 6, 17, 33, 58, 132, 136, 255, 262} {
				s, ok := policy.SocketNames(fam, typ, proto)
				if !ok {
					continue
				}
				out = append(out, event{ev: policy.Event{Class: policy.ClassNetwork, Family: s.Family, SocketType: s.Type, Protocol: s.Protocol},
					family: s.Family, aaType: aaSocketTypes[typ]})
			}
		}
	}
	for n := 0; n <= 40; n++ {
		out = append(out, event{ev: policy.Event{Class: policy.ClassCapabilities, Capability: policy.CapabilityName(n)}})
	}
	return out
}
