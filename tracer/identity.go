package tracer

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer/alert"
)

// container is a published state.Container as alerts need it: labels
// rendered once, its rule set resolved on first use.
type container struct {
	state.Container
	labels     string
	idJSON     []byte       // the identity fields encoded (Alert.IdentityJSON), on first use
	unenforced map[int]bool // Container.Unenforced as a set
	set        *ruleSet     // nil until resolved; see Identity.containerSet
	missing    bool         // no such file: a negative entry
	readAt     time.Time
}

// ruleSet is a published rule set with what the matcher wants to know
// about it without scanning its rules per event.
type ruleSet struct {
	rs *policy.RuleSet
	// ownerOnly per class: an event needs the file owner (a stat) only
	// when some rule of its class is ownerOnly.
	ownerOnly map[policy.Class]bool
	missing   bool
	readAt    time.Time
	rules     map[int]*ruleInfo // by rule id, filled on first use
	// aaNotWritten are the ids of the rules its AppArmor profile leaves
	// out (inProfile), found on first use.
	aaNotWritten map[int]bool
}

// ruleInfo is a rule's alert fields, rendered and encoded once.
type ruleInfo struct {
	severity, tags string
	json           []byte
}

// info returns r's rendered alert fields.
func (s *ruleSet) info(r *policy.Rule) *ruleInfo {
	if ri := s.rules[r.ID]; ri != nil {
		return ri
	}
	ri := &ruleInfo{}
	if r.Severity > 0 {
		ri.severity = strconv.Itoa(r.Severity)
	}
	ri.tags = strings.Join(r.Tags, ",")
	a := alert.Alert{PolicyName: r.Policy, Severity: ri.severity, Tags: ri.tags, ATags: r.Tags, Message: r.Message}
	ri.json = alert.AppendRule(nil, &a)
	if s.rules == nil {
		s.rules = map[int]*ruleInfo{}
	}
	s.rules[r.ID] = ri
	return ri
}

// host is the node's own record (host.json), or a negative entry.
type host struct {
	state.Host
	idJSON     []byte
	unenforced map[int]bool
	set        *ruleSet
	missing    bool
	readAt     time.Time
}

// Identity answers "which container is cgroup id X, and what are its
// rules", from the state directory nri-armor publishes. Entries are cached
// in bounded LRUs; a file change seen by fsnotify drops its entry, and
// every entry is re-read after maxAge anyway, so the tracer follows
// nri-armor through its restarts (and through a state directory that did
// not exist yet when the tracer started) without being restarted itself.
// A miss is cached for negTTL, so events of an unknown cgroup do not cost
// a file read each.
type Identity struct {
	dir    *state.Dir
	negTTL time.Duration
	maxAge time.Duration
	now    func() time.Time

	mu         sync.Mutex
	containers *lru[uint64, *container]
	sets       *lru[string, *ruleSet]
	host       *host
	// changes, when subscribed (SyncTelemetry), hears of every container
	// record that changed (its cgroup id), or 0 when anything may have.
	changes chan uint64
}

// subscribeChanges returns the channel of changed cgroup ids.
func (id *Identity) subscribeChanges() <-chan uint64 {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.changes == nil {
		id.changes = make(chan uint64, 1024)
	}
	return id.changes
}

// notify tells the subscriber that cg changed (0: anything may have).
// Never blocks the watch: when the subscriber is behind, a 0 replaces
// what does not fit, and failing that its periodic full pass repairs.
func (id *Identity) notify(cg uint64) {
	id.mu.Lock()
	ch := id.changes
	id.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- cg:
	default:
		select {
		case ch <- 0:
		default:
		}
	}
}

// NewIdentity caches at most maxContainers containers and as many sets.
func NewIdentity(dir *state.Dir, maxContainers int, negTTL, maxAge time.Duration, now func() time.Time) *Identity {
	if now == nil {
		now = time.Now
	}
	return &Identity{
		dir: dir, negTTL: negTTL, maxAge: maxAge, now: now,
		containers: newLRU[uint64, *container](maxContainers),
		sets:       newLRU[string, *ruleSet](maxContainers),
	}
}

func (id *Identity) fresh(readAt time.Time, missing bool, now time.Time) bool {
	ttl := id.maxAge
	if missing {
		ttl = id.negTTL
	}
	return now.Sub(readAt) < ttl
}

// Container returns the container of cgroup cg, or nil when nri-armor has
// published none (a host process, or a container it does not manage).
func (id *Identity) Container(cg uint64) *container {
	now := id.now()
	id.mu.Lock()
	defer id.mu.Unlock()
	if c, ok := id.containers.Get(cg); ok && id.fresh(c.readAt, c.missing, now) {
		if c.missing {
			return nil
		}
		return c
	}
	sc, err := id.dir.Container(cg)
	c := &container{Container: sc, readAt: now}
	if err != nil {
		// Not there, or half-migrated and unreadable: both mean "unknown
		// for now"; the negative entry expires and the file is read again.
		c.missing = true
		id.containers.Put(cg, c)
		return nil
	}
	c.labels = renderLabels(sc.PodLabels)
	c.unenforced = idSet(sc.Unenforced)
	id.containers.Put(cg, c)
	return c
}

// containerSet returns c's rule set, or nil when it has none or it is not
// published (yet, or any more).
func (id *Identity) containerSet(c *container) *ruleSet {
	if c.PolicySet == "" {
		return nil
	}
	if c.set == nil || c.set.missing {
		c.set = id.Set(c.PolicySet)
	}
	if c.set.missing {
		return nil
	}
	return c.set
}

// Set returns the published rule set of digest; its missing flag is set
// when there is none. Sets never change under a digest, so a found one is
// kept until evicted.
func (id *Identity) Set(digest string) *ruleSet {
	now := id.now()
	id.mu.Lock()
	defer id.mu.Unlock()
	if s, ok := id.sets.Get(digest); ok && (!s.missing || now.Sub(s.readAt) < id.negTTL) {
		return s
	}
	rs, err := id.dir.Set(digest)
	if err != nil {
		s := &ruleSet{missing: true, readAt: now}
		id.sets.Put(digest, s)
		return s
	}
	s := &ruleSet{rs: rs, ownerOnly: map[policy.Class]bool{}, readAt: now}
	for _, cl := range policy.Classes {
		for _, r := range rs.Class(cl).Rules {
			if r.OwnerOnly {
				s.ownerOnly[cl] = true
			}
		}
	}
	id.sets.Put(digest, s)
	return s
}

// Host returns the node's record, or nil when nri-armor publishes none.
func (id *Identity) Host() *host {
	now := id.now()
	id.mu.Lock()
	h := id.host
	if h == nil || !id.fresh(h.readAt, h.missing, now) {
		sh, err := id.dir.Host()
		h = &host{Host: sh, readAt: now, missing: err != nil, unenforced: idSet(sh.Unenforced)}
		id.host = h
	}
	id.mu.Unlock()
	if h.missing {
		return nil
	}
	if h.PolicySet != "" && (h.set == nil || h.set.missing) {
		h.set = id.Set(h.PolicySet)
	}
	return h
}

// Watched is the number of containers nri-armor publishes now.
func (id *Identity) Watched() int {
	cs, err := id.dir.Containers()
	if err != nil {
		return 0
	}
	return len(cs)
}

// forget drops the cached entry of a changed file.
func (id *Identity) forget(cg uint64) {
	id.mu.Lock()
	id.containers.Delete(cg)
	id.mu.Unlock()
	id.notify(cg)
}

func (id *Identity) forgetHost() {
	id.mu.Lock()
	id.host = nil
	id.mu.Unlock()
}

func (id *Identity) forgetAll() {
	id.mu.Lock()
	id.containers = newLRU[uint64, *container](id.containers.max)
	id.host = nil
	id.mu.Unlock()
	id.notify(0)
}

// Watch follows the state directory with fsnotify until ctx ends. The
// directory may not exist yet (nri-armor not started) or be replaced (a
// tmpfs remounted): the watch is retried every retry, and everything
// cached is dropped when it is (re-)established, since changes may have
// been missed meanwhile. maxAge bounds staleness should fsnotify miss
// anything at all.
func (id *Identity) Watch(ctx context.Context, retry time.Duration) {
	base := filepath.Join(id.dir.Root(), "v"+strconv.Itoa(state.Version))
	containers := filepath.Join(base, "containers")
	for ctx.Err() == nil {
		w, err := fsnotify.NewWatcher()
		if err == nil {
			err = w.Add(containers)
			if err == nil {
				err = w.Add(base)
			}
			if err == nil {
				id.forgetAll()
				id.follow(ctx, w, containers, base)
			}
			w.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
}

// follow handles w's events until ctx ends or a watched directory goes.
func (id *Identity) follow(ctx context.Context, w *fsnotify.Watcher, containers, base string) {
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-w.Errors:
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				id.forgetAll() // events were lost: nothing cached can be trusted
				continue
			}
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if (ev.Name == containers || ev.Name == base) && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				return // the watch is gone with its directory: re-establish it
			}
			switch dir, name := filepath.Split(ev.Name); {
			case filepath.Clean(dir) == containers && strings.HasSuffix(name, ".json"):
				if cg, err := strconv.ParseUint(strings.TrimSuffix(name, ".json"), 10, 64); err == nil {
					id.forget(cg)
				}
			case filepath.Clean(dir) == base && name == "host.json":
				id.forgetHost()
			}
		}
	}
}

// idSet is ids as a set (nil when empty: most containers).
func idSet(ids []int) map[int]bool {
	if len(ids) == 0 {
		return nil
	}
	m := make(map[int]bool, len(ids))
	for _, i := range ids {
		m[i] = true
	}
	return m
}

// renderLabels gives KubeArmor's Labels form: "k=v,k=v", sorted.
func renderLabels(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
	}
	return b.String()
}
