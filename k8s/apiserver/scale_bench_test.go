//go:build k8s

package apiserver

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/k8stest"
	"github.com/nri-armor/nri-armor/k8s/webhook"
	"github.com/nri-armor/nri-armor/policy"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkWatchScale: 10,000 policies across 1,000 namespaces in a real
// API server. Reported: the agent's heap for them (the watch's objects,
// the store's documents and the catalog, measured in this process after a
// GC, against the heap before the watch started), the time to the first
// full catalog, the p99 from an update's answer to the catalog that has
// it, and the webhook's p99 for a policy review and a pod review against
// that catalog (in process). `make k8s-bench`.
func BenchmarkWatchScale(b *testing.B) {
	k8stest.Require(b, cluster)
	installCRDs(b)
	const namespaces, perNS = 1000, 10
	ctx := context.Background()
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	dyn := dynamic.NewForConfigOrDie(cfg)
	gvr := k8stest.KubeArmorPolicies
	start := time.Now()
	if err := k8stest.Populate(ctx, cluster, namespaces, perNS); err != nil {
		b.Fatal(err)
	}
	b.Logf("created %d policies in %d namespaces in %v", namespaces*perNS, namespaces, time.Since(start))

	before := heapInUse()
	start = time.Now()
	st, _ := watchInto(b, cfg, 0)
	synced := time.Since(start)
	if n := st.Catalog().Len(); n != namespaces*perNS {
		b.Fatalf("catalog has %d policies, want %d", n, namespaces*perNS)
	}
	heap := heapInUse() - before
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	b.ReportMetric(synced.Seconds(), "sync-s")

	// Updates: from the API server's answer to the catalog that has it.
	sub := st.Subscribe()
	var lat []time.Duration
	for i := range 200 {
		ns := k8stest.ScaleNamespace(i * 5)
		u, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, "p0", metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		action := []string{"Audit", "Block"}[i%2]
		_ = unstructured.SetNestedField(u.Object, action, "spec", "action")
		// The Block ones are already Block: flip a tag instead, so that
		// every update changes the policy.
		_ = unstructured.SetNestedStringSlice(u.Object, []string{fmt.Sprint("t", i)}, "spec", "tags")
		if _, err := dyn.Resource(gvr).Namespace(ns).Update(ctx, u, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		ref := "KubeArmorPolicy/" + ns + "/p0"
		for {
			var c *policy.Catalog
			select {
			case c = <-sub:
			case <-time.After(5 * time.Second):
				b.Fatalf("update %d not delivered", i)
			}
			if hasTag(c, ref, fmt.Sprint("t", i)) {
				break
			}
		}
		lat = append(lat, time.Since(t0))
	}
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "update-p99-ms")
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "update-p50-ms")

	// The webhook's reviews against the 10,000-policy catalog.
	m := &webhook.PodMutator{Catalog: st.Catalog, Defaults: policy.DefaultDefaults(), AppArmor: true, Compiler: policy.NewCompiler(0)}
	podJSON := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"scale-0007","labels":{"app":"app3"}},"spec":{"containers":[{"name":"main","image":"x"}]}}`)
	polJSON, _ := k8stest.ScalePolicy("scale-0007", 99).MarshalJSON()
	var podLat, polLat []time.Duration
	for range 2000 {
		t0 := time.Now()
		r := m.Review(&admissionv1.AdmissionRequest{Namespace: "scale-0007", Object: runtimeRaw(podJSON)})
		podLat = append(podLat, time.Since(t0))
		if !r.Allowed || r.Patch == nil {
			b.Fatalf("pod review: %+v", r)
		}
		t0 = time.Now()
		if r := webhook.ValidatePolicy(&admissionv1.AdmissionRequest{Operation: admissionv1.Create, Object: runtimeRaw(polJSON)}); !r.Allowed {
			b.Fatalf("policy review: %+v", r.Result)
		}
		polLat = append(polLat, time.Since(t0))
	}
	b.ReportMetric(float64(percentile(podLat, 0.99).Microseconds())/1000, "pod-review-p99-ms")
	b.ReportMetric(float64(percentile(polLat, 0.99).Microseconds())/1000, "policy-review-p99-ms")
}

func hasTag(c *policy.Catalog, ref, tag string) bool {
	for _, p := range c.Policies() {
		if p.Ref() == ref {
			for _, t := range p.Spec.Tags {
				if t == tag {
					return true
				}
			}
			return false
		}
	}
	return false
}

func runtimeRaw(b []byte) k8sruntime.RawExtension { return k8sruntime.RawExtension{Raw: b} }
