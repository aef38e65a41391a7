package k8stest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// KubeArmorPolicies is the resource of the namespaced kind.
var KubeArmorPolicies = schema.GroupVersionResource{Group: "security.kubearmor.com", Version: "v1", Resource: "kubearmorpolicies"}

// ScaleNamespace is the name of namespace n of Populate.
func ScaleNamespace(n int) string { return fmt.Sprintf("scale-%04d", n) }

// ScalePolicy is policy p<i> of namespace ns: a few rules of each kind, as
// a real hardening policy has, for the pods labelled app=app<i>.
func ScalePolicy(ns string, i int) *unstructured.Unstructured {
	doc := fmt.Sprintf(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: p%d, namespace: %s}
spec:
  selector: {matchLabels: {app: app%d}}
  process:
    matchPaths: [{path: /usr/bin/apt-get}, {path: /usr/bin/curl}]
  file:
    matchDirectories: [{dir: /etc/ssl/, recursive: true, readOnly: true}]
  network:
    matchProtocols: [{protocol: raw}]
  action: Block
`, i, ns, i)
	var u unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		panic(err)
	}
	return &u
}

// Populate creates namespaces ScaleNamespace(0 … namespaces-1), each with
// perNS ScalePolicy objects, 32 requests at a time (the CRDs installed).
func Populate(ctx context.Context, c *Cluster, namespaces, perNS int) error {
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	work := make(chan string)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range 32 {
		wg.Go(func() {
			for ns := range work {
				_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
				for i := 0; err == nil && i < perNS; i++ {
					_, err = dyn.Resource(KubeArmorPolicies).Namespace(ns).Create(ctx, ScalePolicy(ns, i), metav1.CreateOptions{})
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("namespace %s: %w", ns, err))
					mu.Unlock()
				}
			}
		})
	}
	for n := range namespaces {
		work <- ScaleNamespace(n)
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}
