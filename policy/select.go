package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Pod is what selection needs to know about a pod.
type Pod struct {
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Catalog is a set of loaded policies, indexed for selection. It is
// immutable once built: a changed directory builds a new Catalog.
type Catalog struct {
	ksp map[string]map[string]*Policy // namespace → name → policy
	csp map[string]*Policy
	hsp []*Policy
	// kspSelected[ns] are the ksps of ns that select by label, sorted by name.
	kspSelected map[string][]*Policy
	cspSelected []*Policy
	all         []*Policy
	// rejected says, by Ref, why a policy that a file defines is not in
	// force (its file was rejected), for the error of a pod that names it.
	rejected map[string]string
	changed  time.Time
}

// Changed is when the change that made this catalog was first seen — a
// policy file's event, an API server watch event — zero when not known
// (the first catalog): how long a change takes to reach the kernel is
// measured from it.
func (c *Catalog) Changed() time.Time { return c.changed }

// SetChanged records Changed; as SetRejected, right after NewCatalog.
func (c *Catalog) SetChanged(t time.Time) { c.changed = t }

// SetRejected records why the policy ref (Policy.Ref) is not in force. A
// catalog is immutable once in use: call it right after NewCatalog.
func (c *Catalog) SetRejected(ref, why string) {
	if c.rejected == nil {
		c.rejected = map[string]string{}
	}
	c.rejected[ref] = why
}

// NewCatalog indexes policies. Two documents with the same kind, namespace
// and name are an error naming both places.
func NewCatalog(policies []*Policy) (*Catalog, error) {
	c := &Catalog{ksp: map[string]map[string]*Policy{}, csp: map[string]*Policy{}, kspSelected: map[string][]*Policy{}}
	seen := map[string]*Policy{}
	byRef := func(a, b *Policy) int { return strings.Compare(a.Ref(), b.Ref()) }
	sorted := policies // the store's are sorted already
	if !slices.IsSortedFunc(sorted, byRef) {
		sorted = slices.Clone(policies)
		slices.SortStableFunc(sorted, byRef)
	}
	for _, p := range sorted {
		if prev, dup := seen[p.Ref()]; dup {
			return nil, fmt.Errorf("%s:%d: %s is already defined at %s:%d", p.Source.File, p.Source.Line, p.Ref(), prev.Source.File, prev.Source.Line)
		}
		seen[p.Ref()] = p
		c.all = append(c.all, p)
		switch p.Kind {
		case KindPolicy:
			ns := p.Metadata.Namespace
			if c.ksp[ns] == nil {
				c.ksp[ns] = map[string]*Policy{}
			}
			c.ksp[ns][p.Metadata.Name] = p
			if p.Spec.Selector != nil {
				c.kspSelected[ns] = append(c.kspSelected[ns], p)
			}
		case KindClusterPolicy:
			c.csp[p.Metadata.Name] = p
			c.cspSelected = append(c.cspSelected, p)
		case KindHostPolicy:
			c.hsp = append(c.hsp, p)
		}
	}
	return c, nil
}

// Policies returns every policy of the catalog, sorted by Ref.
func (c *Catalog) Policies() []*Policy { return c.all }

// Len is the number of policies.
func (c *Catalog) Len() int { return len(c.all) }

// containerNames parses the kubearmor.io/container.name label value: "[a, b]" or "a".
func containerNames(v string) []string {
	v = strings.TrimSpace(v)
	v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	var out []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

func labelIn(labels map[string]string, values []string) bool {
	for _, kv := range values {
		k, v, _ := strings.Cut(kv, "=")
		if got, ok := labels[k]; ok && got == v {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// matchLabels checks a ksp's matchLabels; the container-name label narrows
// to containers instead of comparing pod labels.
func matchLabels(want map[string]string, pod Pod, container string) bool {
	for k, v := range want {
		if k == ContainerNameLabel {
			if !contains(containerNames(v), container) {
				return false
			}
			continue
		}
		if got, ok := pod.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// matchExpressions ANDs the expressions. Key label: In means the pod has at
// least one of the k=v values, NotIn means it has none. Key namespace (csp).
func matchExpressions(exprs []Expression, pod Pod) bool {
	for _, e := range exprs {
		var hit bool
		switch e.Key {
		case "label":
			hit = labelIn(pod.Labels, e.Values)
		case "namespace":
			hit = contains(e.Values, pod.Namespace)
		}
		if (e.Operator == "In") != hit {
			return false
		}
	}
	return true
}

// Selects reports whether p applies by its selector to container of pod.
// Host policies never select pods; a ksp without selector selects only by
// annotation.
func (p *Policy) Selects(pod Pod, container string) bool {
	sel := p.Spec.Selector
	switch p.Kind {
	case KindPolicy:
		if sel == nil || p.Metadata.Namespace != pod.Namespace {
			return false
		}
		return matchLabels(sel.MatchLabels, pod, container) && matchExpressions(sel.MatchExpressions, pod)
	case KindClusterPolicy:
		// No selector, or no In on namespace: every namespace but the NotIn ones.
		return sel == nil || matchExpressions(sel.MatchExpressions, pod)
	}
	return false
}

// Target is what a container's rule set is compiled from.
type Target struct {
	Policies []*Policy
	Settings *PodSettings
}

// Resolve finds the policies that apply to one container of a pod, by
// selector and by the nri-armor.dev/policies annotation, and the pod's
// settings. A name that no policy has is an AnnotationError.
func (c *Catalog) Resolve(pod Pod, container string, defaults Defaults) (*Target, error) {
	settings, err := ParseAnnotations(pod.Annotations, container, defaults)
	if err != nil {
		return nil, err
	}
	settings.restrict(pod.Annotations, container, pod.Namespace, defaults)
	t := &Target{Settings: settings}
	chosen := map[*Policy]bool{}
	for _, p := range c.kspSelected[pod.Namespace] {
		if p.Selects(pod, container) {
			chosen[p] = true
		}
	}
	for _, p := range c.cspSelected {
		if p.Selects(pod, container) {
			chosen[p] = true
		}
	}
	for _, name := range settings.PolicyNames {
		if p := c.ksp[pod.Namespace][name]; p != nil {
			chosen[p] = true
		} else if p := c.csp[name]; p != nil {
			chosen[p] = true
		} else {
			key := AnnotationPolicies
			if ck := AnnotationPolicies + containerInfix + container; container != "" && contains(strings.Split(strings.ReplaceAll(pod.Annotations[ck], " ", ""), ","), name) {
				key = ck
			}
			reason := fmt.Sprintf("no policy named %q (no KubeArmorPolicy in namespace %q, no KubeArmorClusterPolicy)", name, pod.Namespace)
			for _, ref := range []string{string(KindPolicy) + "/" + pod.Namespace + "/" + name, string(KindClusterPolicy) + "/" + name} {
				if why, ok := c.rejected[ref]; ok {
					reason = fmt.Sprintf("policy %s is not in force: its file was rejected: %s", ref, why)
					break
				}
			}
			return nil, &AnnotationError{Key: key, Value: pod.Annotations[key], Reason: reason}
		}
	}
	if settings.Mode == ModeDisabled {
		// Names were still checked above: a typo is an error in every mode.
		return t, nil
	}
	for p := range chosen {
		t.Policies = append(t.Policies, p)
	}
	sort.Slice(t.Policies, func(i, j int) bool { return t.Policies[i].Ref() < t.Policies[j].Ref() })
	return t, nil
}

// ResolveHost returns the host policies whose nodeSelector matches the
// node's labels; a host policy without nodeSelector applies to every node
// that loads it.
func (c *Catalog) ResolveHost(nodeLabels map[string]string) []*Policy {
	var out []*Policy
	for _, p := range c.hsp {
		ns := p.Spec.NodeSelector
		if ns == nil || matchLabels(ns.MatchLabels, Pod{Labels: nodeLabels}, "") {
			out = append(out, p)
		}
	}
	return out
}

// Update returns a catalog of c's policies without those whose Ref is in
// remove and with add (a policy of add replaces the one of its Ref only
// when that Ref is removed too; otherwise it is an error, as in
// NewCatalog). The result equals NewCatalog of the same policies, but is
// built from c: what no change touches (other namespaces' indexes) is
// shared, so a change of one policy among thousands costs a copy of the
// sorted list and of the namespace index, not a rebuild. c is unchanged;
// the result has no rejected policies or change time (SetRejected,
// SetChanged).
func (c *Catalog) Update(add []*Policy, remove []string) (*Catalog, error) {
	byRef := func(a, b *Policy) int { return strings.Compare(a.Ref(), b.Ref()) }
	gone := make(map[string]bool, len(remove))
	for _, ref := range remove {
		gone[ref] = true
	}
	adds := slices.Clone(add)
	slices.SortStableFunc(adds, byRef)
	for i, p := range adds {
		if i > 0 && adds[i-1].Ref() == p.Ref() {
			prev := adds[i-1]
			return nil, fmt.Errorf("%s:%d: %s is already defined at %s:%d", p.Source.File, p.Source.Line, p.Ref(), prev.Source.File, prev.Source.Line)
		}
	}
	// The sorted list: the old one without the removed, merged with adds.
	all := make([]*Policy, 0, len(c.all)+len(adds))
	i := 0
	for _, p := range c.all {
		if gone[p.Ref()] {
			continue
		}
		for i < len(adds) && adds[i].Ref() < p.Ref() {
			all = append(all, adds[i])
			i++
		}
		if i < len(adds) && adds[i].Ref() == p.Ref() {
			q := adds[i]
			return nil, fmt.Errorf("%s:%d: %s is already defined at %s:%d", q.Source.File, q.Source.Line, q.Ref(), p.Source.File, p.Source.Line)
		}
		all = append(all, p)
	}
	all = append(all, adds[i:]...)

	// The kinds and namespaces the change touches are indexed again from
	// the new list; the others' indexes are shared.
	var clusterTouched, hostTouched bool
	nsTouched := map[string]bool{}
	touch := func(kind Kind, ns string) {
		switch kind {
		case KindPolicy:
			nsTouched[ns] = true
		case KindClusterPolicy:
			clusterTouched = true
		case KindHostPolicy:
			hostTouched = true
		}
	}
	for _, p := range c.all {
		if gone[p.Ref()] {
			touch(p.Kind, p.Metadata.Namespace)
		}
	}
	for _, p := range adds {
		touch(p.Kind, p.Metadata.Namespace)
	}
	n := &Catalog{ksp: make(map[string]map[string]*Policy, len(c.ksp)), csp: c.csp, hsp: c.hsp,
		kspSelected: make(map[string][]*Policy, len(c.kspSelected)), cspSelected: c.cspSelected, all: all}
	for ns, m := range c.ksp {
		if !nsTouched[ns] {
			n.ksp[ns] = m
		}
	}
	for ns, s := range c.kspSelected {
		if !nsTouched[ns] {
			n.kspSelected[ns] = s
		}
	}
	if clusterTouched {
		n.csp, n.cspSelected = map[string]*Policy{}, nil
	}
	if hostTouched {
		n.hsp = nil
	}
	for _, p := range all {
		switch p.Kind {
		case KindPolicy:
			ns := p.Metadata.Namespace
			if !nsTouched[ns] {
				continue
			}
			if n.ksp[ns] == nil {
				n.ksp[ns] = map[string]*Policy{}
			}
			n.ksp[ns][p.Metadata.Name] = p
			if p.Spec.Selector != nil {
				n.kspSelected[ns] = append(n.kspSelected[ns], p)
			}
		case KindClusterPolicy:
			if clusterTouched {
				n.csp[p.Metadata.Name] = p
				n.cspSelected = append(n.cspSelected, p)
			}
		case KindHostPolicy:
			if hostTouched {
				n.hsp = append(n.hsp, p)
			}
		}
	}
	return n, nil
}
