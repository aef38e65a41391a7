// Command armor-tracer turns nri-armor's kernel events into alerts with pod
// identity, streams them, and serves Prometheus metrics.
//
//	armor-tracer [-config /etc/nri-armor/armor-tracer.yaml] [-KEY VALUE ...]
//
// Every key of the config file (config/armor-tracer.yaml documents them) is
// also a flag; flags override the file.
package main
