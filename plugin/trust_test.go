package plugin

import (
	"strings"
	"sync"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

// TestWeakeningAnnotationIgnored: a pod in a namespace the node does not
// trust asks for mode disabled; its container is enforced all the same, and
// the plugin reports the annotation (for the daemon's log and metric).
// That a trusted namespace's mode disabled is honoured is what the other
// tests here run with: trusting("shop").
func TestWeakeningAnnotationIgnored(t *testing.T) {
	testenv.RequireRoot(t)
	rt := newRuntime(t)
	b := &recorder{}
	var mu sync.Mutex
	var reported []string
	defaults := trusting("trusted")
	p, err := New(Config{Catalog: testCatalog(t), Defaults: defaults, Backend: b,
		Ignored: func(ns, pod, ctr string, a policy.IgnoredAnnotation) {
			mu.Lock()
			defer mu.Unlock()
			reported = append(reported, ns+"/"+pod+"/"+ctr+": "+a.Key)
		}})
	if err != nil {
		t.Fatal(err)
	}
	rt.connect(p)
	ann := map[string]string{policy.AnnotationPolicies: "no-raw", policy.AnnotationMode: "disabled"}
	sb := rt.RunPod("pod-1", "shop", "web-0", nil, ann)
	ctr, resp, err := rt.Create(sb, "ctr-1", "nginx")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.GetAdjust().GetAnnotations()[policy.AnnotationPolicySet]; !ok {
		t.Fatal("a pod of an untrusted namespace with mode disabled got no rule set")
	}
	pr := startProc(t)
	if err := rt.Start(sb, ctr, pr.pid()); err != nil {
		t.Fatal(err)
	}
	if calls := b.take(); len(calls) != 1 || !strings.HasPrefix(calls[0], "apply ") {
		t.Fatalf("backend calls %v, want the set applied", calls)
	}
	mu.Lock()
	got := strings.Join(reported, "\n")
	mu.Unlock()
	if got != "shop/web-0/nginx: "+policy.AnnotationMode {
		t.Fatalf("reported %q", got)
	}
}
