package tracer

import (
	"time"

	"github.com/nri-armor/nri-armor/tracer/alert"
)

// limiter is the flood control: a token bucket per container (cgroup id)
// and per kind (alerts, logs — a flood of logs never starves alerts),
// refilled at rate per second up to burst. What the bucket refuses is
// counted per container and reported once per window as one AlertThreshold
// summary, so a noisy container is never silenced without a trace (unlike a
// blanket "nothing from this container for 30 s"). Buckets live in an LRU:
// a bucket pushed out with uncounted drops leaves them to the next summary.
type limiter struct {
	burst, rate float64
	m           *lru[uint64, *bucket]
	// evicted holds the drops of buckets pushed out of the LRU since the
	// last flush, bounded as the LRU is: at most one per eviction, and
	// flush empties it every window.
	evicted []*bucket
	// overflow sums the drops of evicted buckets beyond the LRU's size
	// (a churn of thousands of flooding containers in one window): they
	// are reported in one summary without a container.
	overflow [2]uint64
}

type bucket struct {
	tokens   [2]float64 // [alerts, logs]
	last     time.Time
	dropped  [2]uint64    // since the last summary
	lastSeen *alert.Alert // identity for the summary
}

const (
	kindAlert = 0
	kindLog   = 1
)

func newLimiter(burst int, rate float64, maxContainers int) *limiter {
	l := &limiter{burst: float64(burst), rate: rate, m: newLRU[uint64, *bucket](maxContainers)}
	l.m.onEvict = func(_ uint64, b *bucket) {
		switch {
		case b.dropped[kindAlert]+b.dropped[kindLog] == 0:
		case len(l.evicted) < l.m.max:
			l.evicted = append(l.evicted, b)
		default:
			l.overflow[kindAlert] += b.dropped[kindAlert]
			l.overflow[kindLog] += b.dropped[kindLog]
		}
	}
	return l
}

// allow takes a token for a; false means a is dropped (and counted).
func (l *limiter) allow(a *alert.Alert, now time.Time) bool {
	k := kindAlert
	if !a.IsAlert() {
		k = kindLog
	}
	b, ok := l.m.Get(a.Cgroup)
	if !ok {
		b = &bucket{tokens: [2]float64{l.burst, l.burst}, last: now}
		l.m.Put(a.Cgroup, b)
	} else if dt := now.Sub(b.last).Seconds(); dt > 0 {
		for i := range b.tokens {
			b.tokens[i] = min(l.burst, b.tokens[i]+dt*l.rate)
		}
		b.last = now
	}
	if b.tokens[k] >= 1 {
		b.tokens[k]--
		return true
	}
	b.dropped[k]++
	if b.lastSeen == nil {
		// Keep the identity only (the summary's subject), not the event.
		id := identityOf(a)
		b.lastSeen = &id
	}
	return false
}

// summary is one container's drops over a window.
type summary struct {
	who          *alert.Alert // identity fields only
	alerts, logs uint64
}

// flush returns and resets every container's drops since the last flush.
func (l *limiter) flush() []summary {
	var out []summary
	take := func(b *bucket) {
		if n := b.dropped[kindAlert] + b.dropped[kindLog]; n > 0 {
			out = append(out, summary{who: b.lastSeen, alerts: b.dropped[kindAlert], logs: b.dropped[kindLog]})
			b.dropped = [2]uint64{}
		}
	}
	for _, b := range l.evicted {
		take(b)
	}
	l.evicted = l.evicted[:0]
	if l.overflow != [2]uint64{} {
		out = append(out, summary{who: &alert.Alert{}, alerts: l.overflow[kindAlert], logs: l.overflow[kindLog]})
		l.overflow = [2]uint64{}
	}
	l.m.Each(func(_ uint64, b *bucket) { take(b) })
	return out
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
