package stream

import (
	"context"
	"fmt"
	"net"
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
// Followers are limited twice: in all, and per peer (LimitPerPeer), so
// that one client cannot take every slot.
type Hub struct {
	queue, maxClients int
	onDrop            func(n int) // metrics

	mu      sync.Mutex
	perPeer int
	subs    map[*subscriber]struct{}
	peers   map[string]int // followers per peer
	backlog []message      // ring
	next    int            // where the next backlog message goes
	full    bool
}

type subscriber struct {
	f       alert.Filter
	peer    string
	ch      chan []byte
	dropped atomic.Uint64
}

// NewHub keeps backlog messages and queues queue messages per client, for
// at most maxClients clients.
func NewHub(backlog, queue, maxClients int, onDrop func(int)) *Hub {
	if onDrop == nil {
		onDrop = func(int) {}
	}
	return &Hub{queue: queue, maxClients: maxClients, onDrop: onDrop, perPeer: maxClients,
		subs: map[*subscriber]struct{}{}, peers: map[string]int{}, backlog: make([]message, max(backlog, 0))}
}

// LimitPerPeer lets each peer (see WithPeer) follow with at most n
// clients at a time; by default one peer may take every slot.
func (h *Hub) LimitPerPeer(n int) {
	h.mu.Lock()
	h.perPeer = n
	h.mu.Unlock()
}

type peerKey struct{}

// WithPeer says who a connection's requests come from, for the per-peer
// limit: a server's ConnContext sets it where the remote address does not
// tell peers apart (a unix socket's peer uid). Without it a request's
// peer is the host of its remote address.
func WithPeer(ctx context.Context, peer string) context.Context {
	return context.WithValue(ctx, peerKey{}, peer)
}

func peerOf(r *http.Request) string {
	if p, ok := r.Context().Value(peerKey{}).(string); ok {
		return p
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// limitError is a follower refused for want of a slot, with the status
// that says which limit.
type limitError struct {
	status int
	msg    string
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

// subscribe registers a client of peer and returns the backlog that
// matches f, oldest first; follow false only takes the backlog, and no slot.
func (h *Hub) subscribe(f alert.Filter, follow bool, peer string) (*subscriber, [][]byte, *limitError) {
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
	if n := h.peers[peer]; n >= h.perPeer {
		return nil, nil, &limitError{http.StatusTooManyRequests, fmt.Sprintf("%d stream clients of yours already connected (streamMaxClientsPerPeer)", n)}
	}
	if len(h.subs) >= h.maxClients {
		return nil, nil, &limitError{http.StatusServiceUnavailable, fmt.Sprintf("%d stream clients already connected (streamMaxClients)", len(h.subs))}
	}
	s := &subscriber{f: f, peer: peer, ch: make(chan []byte, h.queue)}
	h.subs[s] = struct{}{}
	h.peers[peer]++
	return s, recent, nil
}

func (h *Hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	if h.peers[s.peer]--; h.peers[s.peer] == 0 {
		delete(h.peers, s.peer)
	}
	h.mu.Unlock()
}

// ServeHTTP streams NDJSON: GET /v1/logs?namespace=&pod=&container=
// &operation=&policy=&type=alert|log|all&follow=true. Without follow it
// answers with the recent messages that match and ends. A client that
// fell behind gets a line {"Type":"StreamDropped","Data":"N"} saying how
// many of its messages were dropped, as soon as it catches up. A follower
// beyond its peer's limit is refused with 429, beyond the hub's with 503.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, err := alert.ParseFilter(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	follow, _ := strconv.ParseBool(r.URL.Query().Get("follow"))
	s, recent, lerr := h.subscribe(f, follow, peerOf(r))
	if lerr != nil {
		http.Error(w, lerr.msg, lerr.status)
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
