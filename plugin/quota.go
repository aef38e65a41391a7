package plugin

import (
	"fmt"

	"github.com/nri-armor/nri-armor/policy"
)

// Quota bounds what one namespace's containers may hold in the kernel, so
// that no namespace can fill the maps that every namespace shares: the
// distinct rule sets its containers use, and their rules. A container that
// would take its namespace past either is refused at CreateContainer, with
// an error naming the namespace and the quota; a container whose set the
// namespace already uses never is. Zero means no bound.
//
// Sets are shared by digest across namespaces: a set that two namespaces
// use counts against both, and the kernel holds it once. So the maps hold
// at most the sum of the namespaces' quotas; sized to that (maxContainers,
// maxRuleEntries), a namespace within its quota always finds room.
type Quota struct {
	Sets  int
	Rules int
}

// rulesOf is a set's rule count, what Quota.Rules bounds.
func rulesOf(rs *policy.RuleSet) int {
	n := 0
	for _, c := range policy.Classes {
		n += len(rs.Class(c).Rules)
	}
	return n
}

// checkQuota says whether c's namespace may take c's set on top of what
// its other containers use; a refusal is counted. Only CreateContainer
// asks: containers that run already (Synchronize, policy edits) are never
// refused after the fact. The caller holds p.mu.
func (p *Plugin) checkQuota(c *container) error {
	rs, pd := c.set, p.pods[c.pod]
	if rs == nil || pd == nil || (p.quota.Sets <= 0 && p.quota.Rules <= 0) {
		return nil
	}
	ns := pd.namespace
	sets := map[string]int{}
	for _, o := range p.containers {
		if opd := p.pods[o.pod]; o != c && opd != nil && opd.namespace == ns && o.set != nil {
			sets[o.set.Digest] = rulesOf(o.set)
		}
	}
	if _, ok := sets[rs.Digest]; ok {
		return nil
	}
	rules := rulesOf(rs)
	for _, n := range sets {
		rules += n
	}
	var err error
	switch {
	case p.quota.Sets > 0 && len(sets)+1 > p.quota.Sets:
		err = fmt.Errorf("namespace %s would use %d distinct rule sets, over its quota of %d (namespaceMaxSets)", ns, len(sets)+1, p.quota.Sets)
	case p.quota.Rules > 0 && rules > p.quota.Rules:
		err = fmt.Errorf("namespace %s would hold %d rules in the kernel, over its quota of %d (namespaceMaxRules)", ns, rules, p.quota.Rules)
	}
	if err == nil {
		return nil
	}
	if p.refused != nil {
		p.refused(ns)
	}
	return fmt.Errorf("nri-armor: pod %s/%s container %s: %w", ns, pd.name, c.name, err)
}
