//go:build k8s

package apiserver

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/k8stest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/k8s/source"
)

// The rendered chart (deploy/nri-armor.yaml) applies to a real API server,
// every object validated by it; the agent's service account can watch the
// policies with the rights the chart gives it, and can do nothing it does
// not need; the webhook's can write the policies' status and its own two
// configurations, nothing more. (A cluster of its own: the chart's webhook
// configurations would take over the other tests'.)
func TestChartRBAC(t *testing.T) {
	k8stest.Require(t, cluster)
	c := k8stest.StartT(t, k8stest.Options{})
	ctx := ctxT(t, 2*time.Minute)
	manifest := filepath.Join(testenv.RepoRoot(t), "deploy", "nri-armor.yaml")
	if out, errOut, err := c.Kubectl(ctx, nil, "apply", "--server-side", "-f", manifest); err != nil {
		t.Fatalf("applying %s: %v\n%s%s", manifest, err, out, errOut)
	}

	can := func(sa string, verb, resource string, extra ...string) bool {
		args := append([]string{"auth", "can-i", "--as=system:serviceaccount:nri-armor:" + sa, verb, resource}, extra...)
		out, _, _ := c.Kubectl(ctx, nil, args...)
		return strings.TrimSpace(out) == "yes"
	}
	const ksp = "kubearmorpolicies.security.kubearmor.com"
	for _, tc := range []struct {
		sa, verb, resource string
		extra              []string
		want               bool
	}{
		{"nri-armor-agent", "list", ksp, []string{"-A"}, true},
		{"nri-armor-agent", "watch", "kubearmorclusterpolicies.security.kubearmor.com", nil, true},
		{"nri-armor-agent", "watch", "kubearmorhostpolicies.security.kubearmor.com", nil, true},
		{"nri-armor-agent", "create", ksp, []string{"-n", "default"}, false},
		{"nri-armor-agent", "update", ksp, []string{"-n", "default", "--subresource=status"}, false},
		{"nri-armor-agent", "get", "secrets", []string{"-A"}, false},
		{"nri-armor-agent", "list", "pods", []string{"-A"}, false},
		{"nri-armor-agent", "create", "pods/exec", []string{"-A"}, false},
		{"nri-armor-agent", "patch", "nodes", nil, false},
		{"nri-armor-agent", "update", "validatingwebhookconfigurations", nil, false},
		{"nri-armor-webhook", "update", ksp, []string{"-n", "default", "--subresource=status"}, true},
		{"nri-armor-webhook", "update", ksp, []string{"-n", "default"}, false},
		{"nri-armor-webhook", "delete", ksp, []string{"-n", "default"}, false},
		{"nri-armor-webhook", "update", "validatingwebhookconfigurations/nri-armor", nil, true},
		{"nri-armor-webhook", "update", "mutatingwebhookconfigurations/nri-armor", nil, true},
		{"nri-armor-webhook", "update", "validatingwebhookconfigurations/someone-else", nil, false},
		{"nri-armor-webhook", "create", "validatingwebhookconfigurations", nil, false},
		{"nri-armor-webhook", "get", "secrets", []string{"-A"}, false},
		{"nri-armor-webhook", "create", "pods", []string{"-A"}, false},
	} {
		if got := can(tc.sa, tc.verb, tc.resource, tc.extra...); got != tc.want {
			t.Errorf("%s may %s %s %v: %v, want %v", tc.sa, tc.verb, tc.resource, tc.extra, got, tc.want)
		}
	}

	// The agent's own token, with the chart's rights, lists the policies.
	cfg, err := c.ServiceAccountConfig("nri-armor", "nri-armor-agent")
	if err != nil {
		t.Fatal(err)
	}
	src, err := source.New(source.Options{Config: cfg, Sink: func(map[string][]byte, []string, time.Time) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := src.Start(wctx, 30*time.Second); err != nil {
		t.Fatalf("the agent's watch with its service account: %v", err)
	}
}
