package alert

import (
	"fmt"
	"net/url"
)

// StreamPath is where armor-tracer serves its stream of alerts and logs.
const StreamPath = "/v1/logs"

// Filter selects alerts and logs of a stream; empty fields match anything.
type Filter struct {
	Namespace, Pod, Container, Operation, Policy string
	// Type is "alert" (MatchedPolicy, MatchedHostPolicy, SystemEvent),
	// "log" (ContainerLog, HostLog) or "all".
	Type string
}

// FilterKeys are the query parameters of the stream, in the order
// armorctl logs passes them.
var FilterKeys = []string{"namespace", "pod", "container", "operation", "policy", "type"}

// ParseFilter reads a filter from query parameters.
func ParseFilter(q url.Values) (Filter, error) {
	f := Filter{
		Namespace: q.Get("namespace"), Pod: q.Get("pod"), Container: q.Get("container"),
		Operation: q.Get("operation"), Policy: q.Get("policy"), Type: q.Get("type"),
	}
	switch f.Type {
	case "":
		f.Type = "all"
	case "alert", "log", "all":
	default:
		return f, fmt.Errorf("type must be alert, log or all, got %q", f.Type)
	}
	return f, nil
}

// Values is f as query parameters.
func (f Filter) Values() url.Values {
	q := url.Values{}
	for i, v := range []string{f.Namespace, f.Pod, f.Container, f.Operation, f.Policy, f.Type} {
		if v != "" {
			q.Set(FilterKeys[i], v)
		}
	}
	return q
}
