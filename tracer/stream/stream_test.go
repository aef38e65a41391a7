package stream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/tracer/alert"
)

// TestPeerLimit: one peer cannot take every follower slot: beyond its
// limit it gets 429 while another peer still gets in, beyond the hub's
// limit everyone gets 503, and a slot is given back when its follower
// leaves. A peer named by WithPeer (a unix socket's uid) is counted as
// such, not by its remote address. Requests without follow take no slot.
func TestPeerLimit(t *testing.T) {
	hub := NewHub(10, 10, 3, nil)
	hub.LimitPerPeer(2)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	request := func(ctx context.Context, remote, peer string, follow bool) *http.Request {
		target := alert.StreamPath
		if follow {
			target += "?follow=true"
		}
		r := httptest.NewRequest(http.MethodGet, target, nil)
		if peer != "" {
			ctx = WithPeer(ctx, peer)
		}
		r = r.WithContext(ctx)
		r.RemoteAddr = remote
		return r
	}
	// follow starts a follower and waits until it holds its slot; stop
	// ends it.
	follow := func(remote, peer string) (stop func()) {
		t.Helper()
		n := hub.Clients()
		fctx, fcancel := context.WithCancel(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			hub.ServeHTTP(httptest.NewRecorder(), request(fctx, remote, peer, true))
		}()
		deadline := time.Now().Add(5 * time.Second)
		for hub.Clients() == n {
			if time.Now().After(deadline) {
				t.Fatalf("follower of %s %s not connected", remote, peer)
			}
			time.Sleep(time.Millisecond)
		}
		return func() {
			m := hub.Clients()
			fcancel()
			for hub.Clients() == m {
				time.Sleep(time.Millisecond)
			}
		}
	}
	refused := func(remote, peer string, want int) {
		t.Helper()
		rec := httptest.NewRecorder()
		hub.ServeHTTP(rec, request(ctx, remote, peer, true))
		if rec.Code != want {
			t.Fatalf("follower of %s %s: %d %s, want %d", remote, peer, rec.Code, rec.Body, want)
		}
	}

	a1 := follow("127.0.0.2:1001", "")
	follow("127.0.0.2:1002", "") // same host, another port: the same peer
	refused("127.0.0.2:1003", "", http.StatusTooManyRequests)
	rec := httptest.NewRecorder()
	if hub.ServeHTTP(rec, request(ctx, "127.0.0.2:1004", "", false)); rec.Code != http.StatusOK {
		t.Fatalf("recent messages without follow: %d, want 200 (no slot needed)", rec.Code)
	}
	follow("127.0.0.1:2000", "uid:0") // its peer is its uid, not 127.0.0.1
	refused("127.0.0.3:3000", "", http.StatusServiceUnavailable)
	a1()
	follow("127.0.0.3:3000", "") // a1's slot, given back
	refused("127.0.0.2:1005", "", http.StatusServiceUnavailable)
}
