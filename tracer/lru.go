package tracer

// lru is a map bounded to max entries that evicts the least recently used.
// Not safe for concurrent use: each owner guards its own. Every map of the
// tracer that an event can grow is one, so memory stays bounded whatever
// the kernel sends.
type lru[K comparable, V any] struct {
	max   int
	items map[K]*lruEntry[K, V]
	head  lruEntry[K, V] // sentinel: head.next is the most recent
	// onEvict, when set, sees each entry pushed out by a newer one (not
	// those deleted on purpose): the rate limiter flushes pending drop
	// counts through it, so an eviction never hides a count.
	onEvict func(K, V)
}

type lruEntry[K comparable, V any] struct {
	key        K
	val        V
	prev, next *lruEntry[K, V]
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	if max < 1 {
		max = 1
	}
	l := &lru[K, V]{max: max, items: make(map[K]*lruEntry[K, V], min(max, 1024))}
	l.head.prev, l.head.next = &l.head, &l.head
	return l
}

func (l *lru[K, V]) unlink(e *lruEntry[K, V]) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (l *lru[K, V]) pushFront(e *lruEntry[K, V]) {
	e.prev, e.next = &l.head, l.head.next
	l.head.next.prev = e
	l.head.next = e
}

// Get returns the value of k and marks it used.
func (l *lru[K, V]) Get(k K) (V, bool) {
	e, ok := l.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	if l.head.next != e {
		l.unlink(e)
		l.pushFront(e)
	}
	return e.val, true
}

// Put sets k to v, evicting the least recently used entry when full.
func (l *lru[K, V]) Put(k K, v V) {
	if e, ok := l.items[k]; ok {
		e.val = v
		if l.head.next != e {
			l.unlink(e)
			l.pushFront(e)
		}
		return
	}
	if len(l.items) >= l.max {
		old := l.head.prev
		l.unlink(old)
		delete(l.items, old.key)
		if l.onEvict != nil {
			l.onEvict(old.key, old.val)
		}
	}
	e := &lruEntry[K, V]{key: k, val: v}
	l.items[k] = e
	l.pushFront(e)
}

// Delete removes k.
func (l *lru[K, V]) Delete(k K) {
	if e, ok := l.items[k]; ok {
		l.unlink(e)
		delete(l.items, k)
	}
}

// Len is the number of entries.
func (l *lru[K, V]) Len() int { return len(l.items) }

// Each calls f for every entry, most recent first.
func (l *lru[K, V]) Each(f func(K, V)) {
	for e := l.head.next; e != &l.head; e = e.next {
		f(e.key, e.val)
	}
}
