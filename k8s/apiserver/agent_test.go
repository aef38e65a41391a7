//go:build k8s

package apiserver

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/k8stest"
	"github.com/nri-armor/nri-armor/k8s/source"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/store"
	"github.com/sirupsen/logrus"
	"k8s.io/client-go/rest"
)

// watchInto starts the agent's watch of c into a new policy store, as the
// daemon wires it, and returns the store once the first list is in it.
func watchInto(t testing.TB, cfg *rest.Config, probeEvery time.Duration) (*store.Store, *source.Source) {
	t.Helper()
	st, err := store.New(nil, store.Options{Logger: logrus.StandardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	src, err := source.New(source.Options{Config: cfg, ProbeEvery: probeEvery,
		Sink: func(put map[string][]byte, removed []string, changed time.Time) error {
			return st.UpdateDocuments("kubernetes", put, removed, changed)
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := src.Start(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return st, src
}

func refsOf(c *policy.Catalog) []string {
	var out []string
	for _, p := range c.Policies() {
		out = append(out, p.Ref()+"@"+p.Digest[:8])
	}
	sort.Strings(out)
	return out
}

// waitCatalog waits for a catalog for which ok says yes and returns how
// long it took; more than a second fails.
func waitCatalog(t *testing.T, st *store.Store, sub <-chan *policy.Catalog, what string, ok func(*policy.Catalog) bool) time.Duration {
	t.Helper()
	start := time.Now()
	if ok(st.Catalog()) {
		return 0
	}
	timeout := time.After(time.Second)
	for {
		select {
		case c := <-sub:
			if ok(c) {
				return time.Since(start)
			}
		case <-timeout:
			t.Fatalf("%s: not in the catalog within 1 s: %v", what, refsOf(st.Catalog()))
		}
	}
}

func ksp(name, action string) string {
	return fmt.Sprintf(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: %s, namespace: agent}
spec:
  selector: {matchLabels: {app: web}}
  process:
    matchPaths: [{path: /usr/bin/apt-get}]
  action: %s
`, name, action)
}

// The agent's catalog follows a policy's create, update and delete, each
// within a second of kubectl's answer, with the same policy a file of the
// same text gives.
func TestAgentCatalogFollows(t *testing.T) {
	startWebhook(t)
	mustKubectl(t, "", "create", "namespace", "agent")
	st, _ := watchInto(t, cluster.Config, 0)
	sub := st.Subscribe()
	has := func(ref, action string) func(*policy.Catalog) bool {
		return func(c *policy.Catalog) bool {
			for _, p := range c.Policies() {
				if p.Ref() == ref {
					return string(p.Spec.Action) == action
				}
			}
			return action == ""
		}
	}
	const ref = "KubeArmorPolicy/agent/block-apt"
	mustKubectl(t, ksp("block-apt", "Block"), "apply", "-f", "-")
	created := waitCatalog(t, st, sub, "create", has(ref, "Block"))
	mustKubectl(t, ksp("block-apt", "Audit"), "apply", "-f", "-")
	updated := waitCatalog(t, st, sub, "update", has(ref, "Audit"))
	mustKubectl(t, "", "delete", "ksp", "-n", "agent", "block-apt")
	deleted := waitCatalog(t, st, sub, "delete", has(ref, ""))
	t.Logf("from kubectl's answer to the catalog: create %v, update %v, delete %v", created, updated, deleted)

	// The same text as a file gives the same policy (one loader).
	mustKubectl(t, ksp("same", "Block"), "apply", "-f", "-")
	waitCatalog(t, st, sub, "create", has("KubeArmorPolicy/agent/same", "Block"))
	file := policy.LoadBytes("same.yaml", []byte(ksp("same", "Block"))).Policies[0]
	for _, p := range st.Catalog().Policies() {
		if p.Ref() == file.Ref() && p.Digest != file.Digest {
			t.Errorf("object's digest %s, the file's %s: the API server changed the policy", p.Digest, file.Digest)
		}
	}
}

// The API server away: the last good catalog stays in force, and the
// source says it is disconnected.
func TestAgentOutage(t *testing.T) {
	k8stest.Require(t, cluster)
	c := k8stest.StartT(t, k8stest.Options{})
	if out, _, err := c.Kubectl(ctxT(t, time.Minute), nil, "apply", "--server-side", "-f", crdDir(t)); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, errOut, err := c.Kubectl(ctxT(t, time.Minute), nil, "wait", "--for=condition=Established", "--timeout=60s", "crd/kubearmorpolicies.security.kubearmor.com", "crd/kubearmorclusterpolicies.security.kubearmor.com", "crd/kubearmorhostpolicies.security.kubearmor.com"); err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	if _, errOut, err := c.Kubectl(ctxT(t, time.Minute), []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: agent}\n---\n"+ksp("kept", "Block")), "apply", "-f", "-"); err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	st, src := watchInto(t, c.Config, 200*time.Millisecond)
	if got := refsOf(st.Catalog()); len(got) != 1 || !strings.HasPrefix(got[0], "KubeArmorPolicy/agent/kept@") {
		t.Fatalf("catalog %v", got)
	}
	if !src.Status().Connected {
		t.Fatalf("status %+v", src.Status())
	}
	c.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for src.Status().Connected {
		if time.Now().After(deadline) {
			t.Fatalf("still connected 10 s after the API server stopped: %+v", src.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st2 := src.Status()
	t.Logf("disconnected: %+v", st2)
	if got := refsOf(st.Catalog()); len(got) != 1 {
		t.Fatalf("catalog without the API server: %v, want the last good one", got)
	}
}
