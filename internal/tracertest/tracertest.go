package tracertest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/nri-armor/nri-armor/internal/policytest"
	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
)

// ShopPolicy blocks raw sockets (enforced by cgroup-BPF on the host) and
// reading /etc/shadow (file: audit-only on a node without BPF-LSM).
const ShopPolicy = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: shop-guard, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  severity: 7
  tags: [MITRE, T1040]
  message: raw sockets are not for shops
  network:
    matchProtocols:
    - protocol: raw
  file:
    matchPaths:
    - path: /etc/shadow
      severity: 9
      message: shadow read
    matchDirectories:
    - dir: /var/log/
      recursive: true
      action: Audit
  process:
    matchPaths:
    - path: /usr/bin/curl
  action: Block
`

// ShopCgroup is the cgroup id of the container that ShopState publishes.
const ShopCgroup = 4242

// ShopState publishes, in a new state directory, ShopPolicy's rule set and
// one container using it: cgroup ShopCgroup, pod shop/web-1, container
// nginx, network enforced by CgroupBPF, the rest audit-only, visibility of
// processes and files.
func ShopState(t testing.TB) (*state.Dir, *policy.RuleSet) {
	t.Helper()
	dir, err := state.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	rs := policytest.Compile(t, ShopPolicy)
	if err := dir.PutSet(rs); err != nil {
		t.Fatal(err)
	}
	err = dir.PutContainer(state.Container{
		CgroupID: ShopCgroup, ContainerID: "c0ffee", ContainerName: "nginx", PodName: "web-1", PodNamespace: "shop",
		PodLabels: map[string]string{"app": "web", "tier": "front"}, Image: "nginx:1.27", PolicySet: rs.Digest,
		Mode: policy.ModeEnforce, Visibility: policy.Visibility{Process: true, File: true},
		Enforcers: map[policy.Class]string{policy.ClassNetwork: "CgroupBPF"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir, rs
}

// probeEnv makes the test binary the probe process (RawSocketCmd).
const probeEnv = "NRI_ARMOR_TRACER_HELPER"

// RunProbe returns, unless RawSocketCmd started this process: then it is
// the probe, which opens a raw socket, prints "true" when that was denied
// with EPERM ("false" for another error, "ok" when it was allowed), and
// stays alive until its stdin closes (so that the tracer can read its /proc
// entry, as for any live process) before it exits. Call it first in
// TestMain.
func RunProbe() {
	if os.Getenv(probeEnv) != "raw" {
		return
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
	if err != nil {
		fmt.Println(err.(syscall.Errno) == syscall.EPERM)
	} else {
		syscall.Close(fd)
		fmt.Println("ok")
	}
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

// RawSocketCmd is the test binary, to be started as the probe in cg.
func RawSocketCmd(cg *testenv.Cgroup) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), probeEnv+"=raw")
	cg.Into(cmd)
	return cmd
}
