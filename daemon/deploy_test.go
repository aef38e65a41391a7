package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.yaml.in/yaml/v3"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/ocihook"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/store"
	tracerdaemon "github.com/nri-armor/nri-armor/tracer/daemon"
)

// The parts of Kubernetes objects that deploy_test checks; everything else
// in the manifest is left to the API server.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		// A NetworkPolicy's.
		PodSelector labelSelector `yaml:"podSelector"`
		PolicyTypes []string      `yaml:"policyTypes"`
		Ingress     []struct {
			From []struct {
				PodSelector       *labelSelector `yaml:"podSelector"`
				NamespaceSelector *labelSelector `yaml:"namespaceSelector"`
				IPBlock           any            `yaml:"ipBlock"`
			} `yaml:"from"`
			Ports []struct {
				Protocol string `yaml:"protocol"`
				Port     string `yaml:"port"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	} `yaml:"spec"`
}

type labelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []any             `yaml:"matchExpressions"`
}

type podSpec struct {
	HostPID    bool           `yaml:"hostPID"`
	Containers []k8sContainer `yaml:"containers"`
	Volumes    []struct {
		Name     string `yaml:"name"`
		HostPath *struct {
			Path string `yaml:"path"`
		} `yaml:"hostPath"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type k8sContainer struct {
	Name            string   `yaml:"name"`
	Command         []string `yaml:"command"`
	Args            []string `yaml:"args"`
	SecurityContext struct {
		Privileged bool `yaml:"privileged"`
	} `yaml:"securityContext"`
	Ports []struct {
		ContainerPort int `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port int    `yaml:"port"`
		} `yaml:"httpGet"`
	} `yaml:"readinessProbe"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

// source says where path comes from in container c of pod: the host path
// or ConfigMap of the volume mounted over it ("" when none), and the path
// within that source.
func (pod podSpec) source(c k8sContainer, path string) (hostPath, configMap, rel string) {
	for _, m := range c.VolumeMounts {
		if path != m.MountPath && !strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		rel = strings.TrimPrefix(path, m.MountPath)
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.HostPath != nil {
				return v.HostPath.Path + rel, "", rel
			}
			if v.ConfigMap != nil {
				return "", v.ConfigMap.Name, rel
			}
		}
	}
	return "", "", ""
}

// TestDaemonSetManifest reads deploy/nri-armor.yaml (charts/nri-armor
// rendered with its defaults; package charts keeps it current and checks
// the chart under other values) and checks what the daemon needs of it: the tolerate-missing annotation (or the fail-closed
// validator would keep nri-armor's own pod from starting), hostPID, a
// privileged daemon in the host's cgroup namespace, its config from the
// ConfigMap loading with the daemon's own loader, every host path that
// config names mounted from the same host path (the NRI socket, bpffs, the
// state directory, cgroup2, securityfs), its policy directory being the
// policies ConfigMap, whose policies all validate, the readiness probe on
// the metrics port, the tracer reading the same state directory, that
// every binary the pod runs is in the image as the docs describe it, and
// that a NetworkPolicy admits only Prometheus, only to the metrics ports
// (armor-tracer's alert stream is on none of them), and that the guard's
// base spec agrees with it (checkGuardSpec).
func TestDaemonSetManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "nri-armor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]k8sObject{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("deploy/nri-armor.yaml: %v", err)
		}
		objs[o.Kind+"/"+o.Metadata.Name] = o
	}
	ds, ok := objs["DaemonSet/nri-armor"]
	if !ok {
		t.Fatalf("no DaemonSet nri-armor in %v", keys(objs))
	}
	if _, ok := objs["Namespace/"+ds.Metadata.Namespace]; !ok {
		t.Errorf("namespace %q not created", ds.Metadata.Namespace)
	}
	tmpl := ds.Spec.Template
	if v := tmpl.Metadata.Annotations[policy.AnnotationTolerateMissing]; v != "true" {
		t.Errorf("pod annotation %s = %q, want \"true\"", policy.AnnotationTolerateMissing, v)
	}
	pod := tmpl.Spec
	if !pod.HostPID {
		t.Error("hostPID is not set: NRI's pids are host pids")
	}
	var daemon, tracer *k8sContainer
	for i, c := range pod.Containers {
		switch c.Name {
		case "nri-armor":
			daemon = &pod.Containers[i]
		case "armor-tracer":
			tracer = &pod.Containers[i]
		}
	}
	if daemon == nil || tracer == nil {
		t.Fatalf("containers nri-armor and armor-tracer wanted, got %+v", pod.Containers)
	}
	if !daemon.SecurityContext.Privileged {
		t.Error("nri-armor is not privileged")
	}
	if cmd := strings.Join(daemon.Command, " "); !strings.Contains(cmd, "--cgroup=/proc/1/ns/cgroup") {
		t.Errorf("nri-armor's command %q does not enter the host's cgroup namespace", cmd)
	}

	// The config: the file -config names, from the ConfigMap mounted there.
	var cfgPath string
	for i, a := range daemon.Args {
		if (a == "-config" || a == "--config") && i+1 < len(daemon.Args) {
			cfgPath = daemon.Args[i+1]
		}
	}
	_, cm, rel := pod.source(*daemon, cfgPath)
	text, ok := objs["ConfigMap/"+cm].Data[strings.TrimPrefix(rel, "/")]
	if cfgPath == "" || !ok {
		t.Fatalf("config %q (args %v) is not a key of a mounted ConfigMap", cfgPath, daemon.Args)
	}
	cfg, err := Load(testenv.WriteFile(t, t.TempDir(), "nri-armor.yaml", text))
	if err != nil {
		t.Fatalf("ConfigMap %s: %v", cm, err)
	}
	cg2 := "/sys/fs/cgroup"
	for what, p := range map[string]string{
		"socket": cfg.Socket, "bpffs": cfg.BPFFS, "stateDir": cfg.StateDir,
		"cgroup2": cg2, "securityfs": "/sys/kernel/security",
		// The runtime runs the gate's hook from the host, and it talks to
		// the daemon's socket there.
		"gateBinary": filepath.Dir(cfg.GateBinary), "gateSocket": filepath.Dir(cfg.GateSocket),
	} {
		if host, _, _ := pod.source(*daemon, p); host != p {
			t.Errorf("%s %s: mounted from host path %q, want the same path", what, p, host)
		}
	}
	if cfg.GateBinary == "" {
		t.Errorf("the shipped config has no start gate (gateBinary): a container created before nri-armor dies would start unprotected")
	}
	checkGuardSpec(t, cfg, ds.Metadata.Namespace)
	_, port, err := net.SplitHostPort(cfg.MetricsAddress)
	if err != nil {
		t.Fatal(err)
	}
	if pr := daemon.ReadinessProbe.HTTPGet; pr.Path != "/readyz" || strconv.Itoa(pr.Port) != port {
		t.Errorf("readiness probe %+v, want /readyz on %s", pr, port)
	}
	if host, _, _ := pod.source(*tracer, cfg.StateDir); host != cfg.StateDir {
		t.Errorf("armor-tracer sees state dir %s from %q, want the host's", cfg.StateDir, host)
	}

	checkImage(t, pod, cfg, string(data))
	checkNetworkPolicy(t, objs, ds, *tracer, cfg)

	// The policies: every policy directory is a ConfigMap whose files the
	// daemon's store loads without a rejection.
	for _, dir := range cfg.PolicyDirs {
		_, cm, _ := pod.source(*daemon, dir)
		files := objs["ConfigMap/"+cm].Data
		if cm == "" || len(files) == 0 {
			t.Fatalf("policy dir %s is not a mounted ConfigMap with policies", dir)
		}
		tmp := t.TempDir()
		for name, body := range files {
			testenv.WriteFile(t, tmp, name, body)
		}
		var rejected []string
		log := logrus.New()
		log.SetOutput(io.Discard)
		s, err := store.New([]string{tmp}, store.Options{Logger: log, Rejected: func(_ string, err error) { rejected = append(rejected, err.Error()) }})
		if err != nil {
			t.Fatal(err)
		}
		n := s.Catalog().Len()
		s.Close()
		if len(rejected) > 0 || n == 0 {
			t.Errorf("ConfigMap %s: %d policies, rejected: %v", cm, n, rejected)
		}
	}
}

// checkNetworkPolicy checks what keeps the pod's listeners from other
// pods: a NetworkPolicy of the DaemonSet's namespace selects its pods and
// admits, on Ingress, only selected peers (no rule open to every source,
// no ipBlock, every peer narrowed to labelled pods), only on the metrics
// ports of nri-armor and armor-tracer, which it admits both; every
// container port is one of them, so armor-tracer's alert stream is
// neither a container port nor admitted.
func checkNetworkPolicy(t *testing.T, objs map[string]k8sObject, ds k8sObject, tracer k8sContainer, cfg Config) {
	t.Helper()
	var tracerCfg string
	for i, a := range tracer.Args {
		if a == "-config" && i+1 < len(tracer.Args) {
			tracerCfg = tracer.Args[i+1]
		}
	}
	_, cm, rel := ds.Spec.Template.Spec.source(tracer, tracerCfg)
	text, ok := objs["ConfigMap/"+cm].Data[strings.TrimPrefix(rel, "/")]
	if !ok {
		t.Fatalf("armor-tracer's config %q is not a key of a mounted ConfigMap", tracerCfg)
	}
	tc, err := tracerdaemon.LoadConfig(testenv.WriteFile(t, t.TempDir(), "armor-tracer.yaml", text))
	if err != nil {
		t.Fatalf("ConfigMap %s: %v", cm, err)
	}
	metrics := map[string]bool{}
	for _, addr := range []string{cfg.MetricsAddress, tc.MetricsAddress} {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("metrics address %q: %v", addr, err)
		}
		metrics[port] = true
	}
	for _, c := range ds.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if !metrics[strconv.Itoa(p.ContainerPort)] {
				t.Errorf("container %s declares port %d, not a metrics port (armor-tracer's stream: %s)", c.Name, p.ContainerPort, tc.StreamAddress)
			}
		}
	}

	found := false
	for _, o := range objs {
		sel := o.Spec.PodSelector.MatchLabels
		if o.Kind != "NetworkPolicy" || o.Metadata.Namespace != ds.Metadata.Namespace || len(sel) == 0 {
			continue
		}
		selects := true
		for k, v := range sel {
			selects = selects && ds.Spec.Template.Metadata.Labels[k] == v
		}
		if !selects {
			continue
		}
		found = true
		if !slices.Contains(o.Spec.PolicyTypes, "Ingress") {
			t.Errorf("NetworkPolicy %s: policyTypes %v, want Ingress", o.Metadata.Name, o.Spec.PolicyTypes)
		}
		admitted := map[string]bool{}
		for i, r := range o.Spec.Ingress {
			if len(r.From) == 0 {
				t.Errorf("NetworkPolicy %s: ingress rule %d admits every source", o.Metadata.Name, i)
			}
			for _, p := range r.From {
				if p.IPBlock != nil || p.PodSelector == nil || len(p.PodSelector.MatchLabels)+len(p.PodSelector.MatchExpressions) == 0 {
					t.Errorf("NetworkPolicy %s: ingress rule %d admits more than selected pods: %+v", o.Metadata.Name, i, p)
				}
			}
			if len(r.Ports) == 0 {
				t.Errorf("NetworkPolicy %s: ingress rule %d admits every port", o.Metadata.Name, i)
			}
			for _, p := range r.Ports {
				if !metrics[p.Port] || (p.Protocol != "" && p.Protocol != "TCP") {
					t.Errorf("NetworkPolicy %s: admits %s port %s, not a metrics port", o.Metadata.Name, p.Protocol, p.Port)
				}
				admitted[p.Port] = true
			}
		}
		for port := range metrics {
			if !admitted[port] {
				t.Errorf("NetworkPolicy %s: Prometheus cannot reach metrics port %s", o.Metadata.Name, port)
			}
		}
	}
	if !found {
		t.Errorf("no NetworkPolicy in namespace %s selects the DaemonSet's pods (%v)", ds.Metadata.Namespace, ds.Spec.Template.Metadata.Labels)
	}
}

// checkImage renders each container's command and checks that every
// binary it needs is in the image as docs/daemon.md ("The image") lists
// it, and that the manifest's own description of the image names them
// too: the command; the program nsenter runs; and nri-armor-hook beside
// nri-armor when the config sets gateBinary (ocihook.Install copies it
// from there, and the daemon refuses to start without it).
func checkImage(t *testing.T, pod podSpec, cfg Config, manifest string) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "daemon.md"))
	if err != nil {
		t.Fatal(err)
	}
	image := documentedImage(string(doc))
	if len(image) == 0 {
		t.Fatal(`docs/daemon.md has no "### The image" list`)
	}
	inImage := func(bin string) bool {
		for _, f := range image {
			if f == bin || (!strings.Contains(f, "/") && f == filepath.Base(bin)) {
				return true
			}
		}
		return false
	}
	for _, c := range pod.Containers {
		if len(c.Command) == 0 {
			t.Errorf("container %s: no command (the image has no entrypoint)", c.Name)
			continue
		}
		needs := []string{c.Command[0]}
		if filepath.Base(c.Command[0]) == "nsenter" {
			for i, a := range c.Command {
				if a == "--" && i+1 < len(c.Command) {
					needs = append(needs, c.Command[i+1])
				}
			}
		}
		if c.Name == "nri-armor" && cfg.GateBinary != "" {
			needs = append(needs, filepath.Join(filepath.Dir(needs[len(needs)-1]), "nri-armor-hook"))
		}
		for _, bin := range needs {
			if !inImage(bin) {
				t.Errorf("container %s runs %s, which docs/daemon.md's image (%v) does not hold", c.Name, bin, image)
			}
		}
	}
	for _, f := range image {
		if !strings.Contains(manifest, f) {
			t.Errorf("deploy/nri-armor.yaml (charts/nri-armor/templates/daemonset.yaml) does not say that its image holds %s", f)
		}
	}
}

// documentedImage is the files that the "### The image" section of
// docs/daemon.md lists, each the first code span of a bullet.
func documentedImage(doc string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "#") {
			in = strings.TrimSpace(line) == "### The image"
			continue
		}
		if !in || !strings.HasPrefix(line, "- `") {
			continue
		}
		if f, _, ok := strings.Cut(strings.TrimPrefix(line, "- `"), "`"); ok {
			out = append(out, f)
		}
	}
	return out
}

func keys(m map[string]k8sObject) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkGuardSpec checks that the guard the node installs
// (config/containerd-base-spec.json, named by config/containerd-nri.toml)
// agrees with the DaemonSet: its hook is gateBinary, run with -guard,
// gateSocket, the trust file the daemon writes beside gateBinary and the
// DaemonSet's namespace as bootstrap (or nri-armor's own pod could not
// start while it is down); and that the spec keeps no default rlimits,
// seccomp or AppArmor profile, which containerd stops clearing when a
// base spec is set.
func checkGuardSpec(t *testing.T, cfg Config, namespace string) {
	t.Helper()
	root := testenv.RepoRoot(t)
	toml, err := os.ReadFile(filepath.Join(root, "config", "containerd-nri.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(toml), "\n  base_runtime_spec = '/etc/nri-armor/containerd-base-spec.json'\n") {
		t.Errorf("config/containerd-nri.toml does not set base_runtime_spec to /etc/nri-armor/containerd-base-spec.json")
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "containerd-base-spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Process struct {
			Rlimits         []any  `json:"rlimits"`
			ApparmorProfile string `json:"apparmorProfile"`
		} `json:"process"`
		Linux struct {
			Seccomp any `json:"seccomp"`
		} `json:"linux"`
		Hooks struct {
			CreateRuntime []guardHook `json:"createRuntime"`
		} `json:"hooks"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatalf("config/containerd-base-spec.json: %v", err)
	}
	if spec.Process.Rlimits != nil || spec.Process.ApparmorProfile != "" || spec.Linux.Seccomp != nil {
		t.Errorf("config/containerd-base-spec.json sets rlimits, an AppArmor profile or seccomp: every container would get them")
	}
	hooks := spec.Hooks.CreateRuntime
	if len(hooks) != 1 {
		t.Fatalf("config/containerd-base-spec.json: createRuntime hooks %+v, want the guard alone", hooks)
	}
	checkGuardHook(t, "config/containerd-base-spec.json", hooks[0], cfg, namespace, ocihook.RuntimeContainerd)

	// CRI-O's: the same guard, as a hook file for its hooks_dir.
	data, err = os.ReadFile(filepath.Join(root, "config", "crio-hook.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Hook   guardHook             `json:"hook"`
		When   struct{ Always bool } `json:"when"`
		Stages []string              `json:"stages"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("config/crio-hook.json: %v", err)
	}
	if !file.When.Always || !slices.Equal(file.Stages, []string{"createRuntime"}) {
		t.Errorf("config/crio-hook.json: when %+v, stages %v; want always, createRuntime", file.When, file.Stages)
	}
	checkGuardHook(t, "config/crio-hook.json", file.Hook, cfg, namespace, ocihook.RuntimeCRIO)
}

// guardHook is an OCI hook as config/'s files write the guard.
type guardHook struct {
	Path    string   `json:"path"`
	Args    []string `json:"args"`
	Timeout int      `json:"timeout"`
}

// checkGuardHook checks the guard h of file against the DaemonSet's
// config cfg and namespace, on runtime.
func checkGuardHook(t *testing.T, file string, h guardHook, cfg Config, namespace, runtime string) {
	t.Helper()
	arg := func(flag string) string {
		if i := slices.Index(h.Args, flag); i >= 0 && i+1 < len(h.Args) {
			return h.Args[i+1]
		}
		return ""
	}
	if h.Path != cfg.GateBinary || len(h.Args) == 0 || h.Args[0] != cfg.GateBinary || !slices.Contains(h.Args, "-guard") {
		t.Errorf("%s: the guard runs %s %v, want %s -guard", file, h.Path, h.Args, cfg.GateBinary)
	}
	if got := arg("-socket"); got != cfg.GateSocket {
		t.Errorf("%s: the guard's -socket %q, want gateSocket %q", file, got, cfg.GateSocket)
	}
	if got := arg("-trust"); got != ocihook.TrustFile(cfg.GateBinary) {
		t.Errorf("%s: the guard's -trust %q, want %q (where the daemon writes it)", file, got, ocihook.TrustFile(cfg.GateBinary))
	}
	if got := strings.Split(arg("-trusted"), ","); !slices.Contains(got, namespace) {
		t.Errorf("%s: the guard's -trusted %v lacks the DaemonSet's namespace %q", file, got, namespace)
	}
	if got := arg("-runtime"); got != runtime {
		t.Errorf("%s: the guard's -runtime %q, want %q: told, it reads that runtime's annotations only", file, got, runtime)
	}
	timeout, err := time.ParseDuration(arg("-timeout"))
	if err != nil || timeout <= 0 || timeout >= time.Duration(h.Timeout)*time.Second {
		t.Errorf("%s: the guard's -timeout %q must be shorter than the runtime's timeout %ds (or the runtime kills it before it decides)", file, arg("-timeout"), h.Timeout)
	}
}
