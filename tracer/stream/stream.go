package stream

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nri-armor/nri-armor/tracer/alert"
)

// meta is what filters look at, kept with each message.
type meta struct {
	namespace, pod, container, operation, policy string
	alert                                        bool
}

func metaOf(a *alert.Alert) meta {
	return meta{a.NamespaceName, a.PodName, a.ContainerName, a.Operation, a.PolicyName, a.IsAlert()}
}

// match reports whether f selects a message of m.
func match(f *alert.Filter, m *meta) bool {
	return (f.Namespace == "" || f.Namespace == m.namespace) &&
		(f.Pod == "" || f.Pod == m.pod) &&
		(f.Container == "" || f.Container == m.container) &&
		(f.Operation == "" || f.Operation == m.operation) &&
		(f.Policy == "" || f.Policy == m.policy) &&
		(f.Type == "all" || (f.Type == "alert") == m.alert)
}

type message struct {
	meta meta
	line []byte // one NDJSON line, newline included
}

// Hub fans alerts out to HTTP stream clients. Publishing never blocks:
// each client has a bounded queue, and what does not fit is counted (per
// client, reported to it in the stream, and in the metrics) and dropped,
// so a slow client cannot hold up the pipeline. The last backlog messages
// are kept for clients that ask for recent alerts without following.
type Hub struct {
	queue, maxClients int
	onDrop            func(n int) // metrics

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	backlog []message // ring
	next    int       // where the next backlog message goes
	full    bool
}

type subscriber struct {
	f       alert.Filter
	ch      chan []byte
	dropped atomic.Uint64
}

// NewHub keeps backlog messages and queues queue messages per client, for
// at most maxClients clients.
func NewHub(backlog, queue, maxClients int, onDrop func(int)) *Hub {
	if onDrop == nil {
		onDrop = func(int) {}
	}
	return &Hub{queue: queue, maxClients: maxClients, onDrop: onDrop,
		subs: map[*subscriber]struct{}{}, backlog: make([]message, max(backlog, 0))}
}

// Clients is the number of connected stream clients.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Publish offers one encoded line (newline included; copied) to every
// client whose filter matches a.
func (h *Hub) Publish(a *alert.Alert, line []byte) {
	mt := metaOf(a)
	dropped := 0
	h.mu.Lock()
	if len(h.backlog) > 0 {
		// The slot's buffer is reused (no allocation per message): clients
		// get backlog lines copied out under the lock (subscribe).
		slot := &h.backlog[h.next]
		slot.meta, slot.line = mt, append(slot.line[:0], line...)
		h.next++
		if h.next == len(h.backlog) {
			h.next, h.full = 0, true
		}
	}
	var shared []byte // one copy for all clients, made only when one matches
	for s := range h.subs {
		if !match(&s.f, &mt) {
			continue
		}
		if shared == nil {
			shared = append([]byte(nil), line...)
		}
		select {
		case s.ch <- shared:
		default:
			s.dropped.Add(1)
			dropped++
		}
	}
	h.mu.Unlock()
	if dropped > 0 {
		h.onDrop(dropped)
	}
}

// subscribe registers a client and returns the backlog that matches f,
// oldest first; follow false only takes the backlog.
func (h *Hub) subscribe(f alert.Filter, follow bool) (*subscriber, [][]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var recent [][]byte
	add := func(ms []message) {
		for i := range ms {
			if ms[i].line != nil && match(&f, &ms[i].meta) {
				recent = append(recent, append([]byte(nil), ms[i].line...))
			}
		}
	}
	if h.full {
		add(h.backlog[h.next:])
	}
	add(h.backlog[:h.next])
	if !follow {
		return nil, recent, nil
	}
	if len(h.subs) >= h.maxClients {
		return nil, nil, fmt.Errorf("%d stream clients already connected (streamMaxClients)", len(h.subs))
	}
	s := &subscriber{f: f, ch: make(chan []byte, h.queue)}
	h.subs[s] = struct{}{}
	return s, recent, nil
}

func (h *Hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// ServeHTTP streams NDJSON: GET /v1/logs?namespace=&pod=&container=
// &operation=&policy=&type=alert|log|all&follow=true. Without follow it
// answers with the recent messages that match and ends. A client that
// fell behind gets a line {"Type":"StreamDropped","Data":"N"} saying how
// many of its messages were dropped, as soon as it catches up.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, err := alert.ParseFilter(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	follow, _ := strconv.ParseBool(r.URL.Query().Get("follow"))
	s, recent, err := h.subscribe(f, follow)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if s != nil {
		defer h.unsubscribe(s)
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	for _, l := range recent {
		if _, err := w.Write(l); err != nil {
			return
		}
	}
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	if s == nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case l := <-s.ch:
			if _, err := w.Write(l); err != nil {
				return
			}
			if len(s.ch) > 0 {
				continue // more queued: flush once after the batch
			}
			if n := s.dropped.Swap(0); n > 0 {
				if _, err := fmt.Fprintf(w, "{\"Type\":\"StreamDropped\",\"Data\":\"%d\"}\n", n); err != nil {
					return
				}
			}
			if fl != nil {
				fl.Flush()
			}
		}
	}
}
