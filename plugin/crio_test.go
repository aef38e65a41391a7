package plugin

import (
	"context"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"

	"github.com/nri-armor/nri-armor/ocihook"
	"github.com/nri-armor/nri-armor/policy"
)

// TestCRIOWithoutGateRefusedAtCreate: on CRI-O, which only logs a
// plugin's StartContainer error, an enforced container with rules is
// refused at CreateContainer when there is no start gate (its rules would
// be installed at StartContainer, unrefusably); with the gate, or on
// containerd, or for a container without rules, it is created.
func TestCRIOWithoutGateRefusedAtCreate(t *testing.T) {
	ctx := context.Background()
	sb := &api.PodSandbox{Id: "pod-1", Name: "web-0", Namespace: "shop", Uid: "uid-1",
		Labels: map[string]string{"app": "web"}, Annotations: map[string]string{policy.AnnotationPolicies: "no-raw"}}
	plain := &api.PodSandbox{Id: "pod-2", Name: "plain", Namespace: "other", Uid: "uid-2"}
	for _, tc := range []struct {
		runtime string
		gate    bool
		pod     *api.PodSandbox
		refused bool
	}{
		{"cri-o", false, sb, true},
		{"cri-o", true, sb, false},
		{"cri-o", false, plain, false},
		{"containerd", false, sb, false},
	} {
		cfg := Config{Catalog: testCatalog(t), Defaults: trusting("shop"), Backend: &recorder{}}
		if tc.gate {
			cfg.Hook = ocihook.Spec{Binary: "/opt/nri-armor/bin/nri-armor-hook", Socket: "/run/nri-armor/gate.sock"}
		}
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Configure(ctx, "", tc.runtime, "1.36.3"); err != nil {
			t.Fatal(err)
		}
		ctr := &api.Container{Id: "ctr-1", PodSandboxId: tc.pod.Id, Name: "nginx"}
		_, _, err = p.CreateContainer(ctx, tc.pod, ctr)
		switch {
		case tc.refused && (err == nil || !strings.Contains(err.Error(), "CRI-O only logs") || !strings.Contains(err.Error(), "gateBinary")):
			t.Errorf("%s, gate %v, pod %s: %v; want it refused naming the start gate", tc.runtime, tc.gate, tc.pod.Name, err)
		case !tc.refused && err != nil:
			t.Errorf("%s, gate %v, pod %s: %v; want it created", tc.runtime, tc.gate, tc.pod.Name, err)
		}
		if _, ok := p.containerState("ctr-1"); ok == tc.refused {
			t.Errorf("%s, gate %v, pod %s: container known %v after create", tc.runtime, tc.gate, tc.pod.Name, ok)
		}
	}
}
