// Package stream is armor-tracer's alert stream: a Hub that fans encoded
// alerts and logs out to HTTP clients (NDJSON at alert.StreamPath, filtered
// by alert.Filter), keeps a backlog for clients that do not follow, and
// drops and counts what a slow client cannot take, so that publishing never
// blocks the pipeline. Followers are limited in all and per peer, so that
// one client cannot take every slot; who may connect at all (the listener,
// the token) is armor-tracer's wiring's business (tracer/daemon).
//
// It is its own package because a Hub needs nothing of the pipeline's
// (Prometheus, fsnotify, cilium/ebpf: drops are reported through a
// callback): the pipeline (package tracer) publishes to it, armor-tracer's
// wiring (tracer/daemon) serves it, and armorctl's tests run one in place of
// armor-tracer.
package stream
