// Package state is what nri-armor publishes for armor-tracer: which
// container a cgroup id is, and what the rules of each policy set say. It is
// a directory of small JSON files, written atomically (temp file + rename),
// so either process can restart at any moment and the other reads a whole
// file or none:
//
//	<root>/v1/containers/<cgroup id>.json   one Container per enforced or watched cgroup
//	<root>/v1/sets/<digest hex>.json        one policy.RuleSet (canonical IR JSON) per set
//	<root>/v1/host.json                     the node's own processes (Host)
//
// The default root is /run/nri-armor/state. "v1" is the format's version: a
// change that a v1 reader would misread gets a new directory, and a
// publisher may write both while readers move over.
//
// Kernel events carry (cgroup id, set id, rule id). The cgroup id names the
// Container; the set id names a digest through the pinned set-names map
// (events.Pinned.SetDigest), and the digest names the RuleSet whose rule id gives the
// policy, severity, tags and message. Set files outlive their last container
// by a grace period, so events that were queued during a swap still resolve.
package state
