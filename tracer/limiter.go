package tracer

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/tracer/alert"
)

// limiter is the flood control. Alerts have a token bucket per container
// (cgroup id) and rule, so one noisy rule cannot starve the container's
// other rules; logs one per container (a flood of logs never starves
// alerts). Buckets hold burst tokens, refilled at rate per second. Block
// alerts and alerts of at least exemptSeverity take no token and are
// never dropped (nor stored: they go straight out).
//
// What a bucket refuses is counted per bucket and reported once per
// window in one AlertThreshold summary per container, naming the policy,
// rule and severity of what was dropped, so a noisy container is never
// silenced without a trace (unlike a blanket "nothing from this container
// for 30 s"). Buckets live in an LRU: a bucket pushed out with uncounted
// drops leaves them to the next summary, and a full bucket with nothing to
// report is freed at each summary (a new one would start full anyway).
type limiter struct {
	burst, rate    float64
	exemptSeverity int // 0: none by severity
	m              *lru[bucketKey, *bucket]
	// counter gives the rate_limited_total series of a dropped alert or
	// log (the Tracer's metrics); each bucket keeps the one of its rule.
	counter func(a *alert.Alert) prometheus.Counter
	// evicted holds the pending drops of buckets pushed out of the LRU
	// (or of a rule id that now names another rule) since the last flush,
	// bounded as the LRU is: flush empties it every window.
	evicted []*bucket
	// overflow sums the drops of buckets beyond that bound (a churn of
	// thousands of flooding containers in one window), alerts by severity:
	// they are reported in one summary without a container.
	overflow overflowDrops
	pruned   []bucketKey // flush's scratch
}

// bucketKey names a bucket: a container's alerts of one rule, or its logs.
type bucketKey struct {
	cg uint64
	// rule is the rule's id in the container's rule set (alert.Alert's
	// RuleID); 0 for logs and for alerts without a rule (a default
	// posture, the built-in rule, a set that is not published).
	rule int
	kind uint8
}

// overflowDrops are drops of buckets that left the LRU past its bound.
type overflowDrops struct {
	alerts [maxSeverity + 1]uint64 // by severity (0: none)
	logs   uint64
}

type bucket struct {
	key     bucketKey
	tokens  float64
	last    time.Time
	dropped uint64 // since the last summary
	// Set at a drop, for the summary: who (identity fields only), the
	// rule's policy and severity, and its rate_limited_total series.
	who              *alert.Alert
	policy, severity string
	limited          prometheus.Counter
}

const (
	kindAlert = 0
	kindLog   = 1
	// maxSeverity is the highest severity a policy can give (1–10).
	maxSeverity = 10
	// maxSummaryRules bounds the rules a summary names one by one (the
	// most severe first); the others are summed.
	maxSummaryRules = 16
)

// newLimiter makes a limiter of at most maxBuckets buckets; set its counter.
func newLimiter(burst int, rate float64, exemptSeverity, maxBuckets int) *limiter {
	l := &limiter{burst: float64(burst), rate: rate, exemptSeverity: exemptSeverity, m: newLRU[bucketKey, *bucket](maxBuckets)}
	l.m.onEvict = func(_ bucketKey, b *bucket) { l.retire(b) }
	return l
}

// retire keeps b's pending drops for the next summary: b is leaving the
// LRU, or is a copy of a bucket whose rule id now names another rule.
func (l *limiter) retire(b *bucket) {
	switch {
	case b.dropped == 0:
	case len(l.evicted) < l.m.max:
		l.evicted = append(l.evicted, b)
	case b.key.kind == kindLog:
		l.overflow.logs += b.dropped
	default:
		l.overflow.alerts[severityOf(b.severity)] += b.dropped
	}
}

// exempt reports whether alert a passes without a token: a Block, or a
// severity of at least exemptSeverity.
func (l *limiter) exempt(a *alert.Alert) bool {
	return a.Action == string(policy.Block) || (l.exemptSeverity > 0 && severityOf(a.Severity) >= l.exemptSeverity)
}

// allow takes a token for a; false means a is dropped (and counted).
func (l *limiter) allow(a *alert.Alert, now time.Time) bool {
	k := bucketKey{cg: a.Cgroup, kind: kindLog}
	if a.IsAlert() {
		if l.exempt(a) {
			return true
		}
		k = bucketKey{cg: a.Cgroup, rule: a.RuleID, kind: kindAlert}
	}
	b, ok := l.m.Get(k)
	if !ok {
		b = &bucket{key: k, tokens: l.burst, last: now}
		l.m.Put(k, b)
	} else if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	if b.limited == nil || b.policy != a.PolicyName || b.severity != a.Severity {
		// First drop, or the container's set changed and this rule id
		// names another rule now: what is pending stays the old rule's.
		if b.dropped > 0 {
			old := *b
			l.retire(&old)
			b.dropped = 0
		}
		if b.who == nil {
			// Keep the identity only (the summary's subject), not the event.
			id := identityOf(a)
			b.who = &id
		}
		b.policy, b.severity, b.limited = a.PolicyName, a.Severity, l.counter(a)
	}
	b.dropped++
	b.limited.Inc()
	return false
}

// summary is one container's drops over a window.
type summary struct {
	who          *alert.Alert // identity fields only
	alerts, logs uint64
	// rules are the alerts dropped per rule, the most severe first, at
	// most maxSummaryRules; otherRules more rules had otherAlerts dropped.
	rules                   []ruleDrops
	otherRules, otherAlerts uint64
}

// ruleDrops counts the dropped alerts of one rule (or, for containers no
// longer tracked, of one severity: no policy, rule 0).
type ruleDrops struct {
	policy, severity string
	rule             int
	n                uint64
}

// flush returns and resets every container's drops since the last flush,
// and frees the buckets that are full with nothing to report.
func (l *limiter) flush(now time.Time) []summary {
	var out []summary
	byCgroup := map[uint64]int{} // index in out; as bounded as the LRU
	take := func(b *bucket) {
		if b.dropped == 0 {
			return
		}
		i, ok := byCgroup[b.key.cg]
		if !ok {
			i = len(out)
			byCgroup[b.key.cg] = i
			out = append(out, summary{who: b.who})
		}
		s := &out[i]
		if b.key.kind == kindLog {
			s.logs += b.dropped
		} else {
			s.alerts += b.dropped
			s.rules = append(s.rules, ruleDrops{policy: b.policy, severity: b.severity, rule: b.key.rule, n: b.dropped})
		}
		b.dropped = 0
	}
	for _, b := range l.evicted {
		take(b)
	}
	clear(l.evicted)
	l.evicted = l.evicted[:0]
	l.m.Each(func(k bucketKey, b *bucket) {
		take(b)
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			l.pruned = append(l.pruned, k)
		}
	})
	for _, k := range l.pruned {
		l.m.Delete(k)
	}
	l.pruned = l.pruned[:0]
	if l.overflow != (overflowDrops{}) {
		s := summary{who: &alert.Alert{}, logs: l.overflow.logs}
		for sev, n := range l.overflow.alerts {
			if n > 0 {
				s.alerts += n
				s.rules = append(s.rules, ruleDrops{severity: severityString(sev), n: n})
			}
		}
		out = append(out, s)
		l.overflow = overflowDrops{}
	}
	for i := range out {
		out[i].sortRules()
	}
	return out
}

// sortRules merges the counts of one rule (a bucket and its evicted
// predecessor), orders the rules most severe first, then most dropped,
// and keeps maxSummaryRules of them.
func (s *summary) sortRules() {
	slices.SortFunc(s.rules, func(a, b ruleDrops) int {
		return cmp.Or(severityOf(b.severity)-severityOf(a.severity), strings.Compare(a.policy, b.policy),
			cmp.Compare(a.rule, b.rule), strings.Compare(a.severity, b.severity))
	})
	merged := s.rules[:0]
	for _, r := range s.rules {
		if n := len(merged); n > 0 && merged[n-1].policy == r.policy && merged[n-1].rule == r.rule && merged[n-1].severity == r.severity {
			merged[n-1].n += r.n
			continue
		}
		merged = append(merged, r)
	}
	slices.SortStableFunc(merged, func(a, b ruleDrops) int {
		return cmp.Or(severityOf(b.severity)-severityOf(a.severity), cmp.Compare(b.n, a.n))
	})
	s.rules = merged
	if len(s.rules) > maxSummaryRules {
		for _, r := range s.rules[maxSummaryRules:] {
			s.otherRules++
			s.otherAlerts += r.n
		}
		s.rules = s.rules[:maxSummaryRules]
	}
}

// untracked reports whether s sums containers no longer tracked.
func (s *summary) untracked() bool { return s.who.Cgroup == 0 && s.who.ContainerName == "" }

// message is the summary's Message: totals, then what was dropped per rule.
func (s *summary) message(window time.Duration) string {
	of := "this container were dropped in the last " + window.String()
	if s.untracked() {
		of = "containers no longer tracked (more flooding containers and rules than maxContainers) were dropped"
	}
	m := "alert rate limit reached: " + strconv.FormatUint(s.alerts, 10) + " alerts and " + strconv.FormatUint(s.logs, 10) + " logs of " + of
	sep := ": "
	for _, r := range s.rules {
		m += sep + strconv.FormatUint(r.n, 10) + " of " + strings.ReplaceAll(strings.Join(r.name(), " "), "=", " ")
		sep = ", "
	}
	if s.otherRules > 0 {
		m += sep + strconv.FormatUint(s.otherAlerts, 10) + " of " + strconv.FormatUint(s.otherRules, 10) + " other rules"
	}
	return m
}

// data is the summary's Data: "droppedAlerts=N droppedLogs=M burst=B
// ratePerSecond=R", then "dropped[policy=P,rule=I,severity=S]=N" per rule
// (parts that are unknown left out), then "otherRules=K otherDropped=N"
// when more rules had alerts dropped than a summary names.
func (s *summary) data(burst int, rate float64) string {
	d := "droppedAlerts=" + strconv.FormatUint(s.alerts, 10) + " droppedLogs=" + strconv.FormatUint(s.logs, 10) +
		" burst=" + strconv.Itoa(burst) + " ratePerSecond=" + strconv.FormatFloat(rate, 'g', -1, 64)
	for _, r := range s.rules {
		d += " dropped[" + strings.Join(r.name(), ",") + "]=" + strconv.FormatUint(r.n, 10)
	}
	if s.otherRules > 0 {
		d += " otherRules=" + strconv.FormatUint(s.otherRules, 10) + " otherDropped=" + strconv.FormatUint(s.otherAlerts, 10)
	}
	return d
}

// name is what a summary says of r: "policy=P", "rule=I", "severity=S",
// the parts that are known.
func (r ruleDrops) name() []string {
	var n []string
	if r.policy != "" {
		n = append(n, "policy="+r.policy)
	}
	if r.rule != 0 {
		n = append(n, "rule="+strconv.Itoa(r.rule))
	}
	if r.severity != "" {
		n = append(n, "severity="+r.severity)
	}
	return n
}

// severityOf is an alert's Severity as a number, 0 when it has none (or
// one outside 1–10).
func severityOf(s string) int {
	n := 0
	for i := 0; i < len(s); i++ { // by hand: no error to allocate per alert
		if s[i] < '0' || s[i] > '9' || n > maxSeverity {
			return 0
		}
		n = n*10 + int(s[i]-'0')
	}
	if n > maxSeverity {
		return 0
	}
	return n
}

func severityString(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// identityOf copies the identity fields of a: who an AlertThreshold
// summary is about.
func identityOf(a *alert.Alert) alert.Alert {
	return alert.Alert{
		ClusterName: a.ClusterName, HostName: a.HostName,
		NamespaceName: a.NamespaceName, PodName: a.PodName, Labels: a.Labels,
		ContainerID: a.ContainerID, ContainerName: a.ContainerName, ContainerImage: a.ContainerImage,
		Cgroup: a.Cgroup,
	}
}
