package daemon

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/enforce/seccomp"
	"github.com/nri-armor/nri-armor/internal/cli"
	"github.com/nri-armor/nri-armor/ocihook"
	"github.com/nri-armor/nri-armor/plugin"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/state"
)

// Config is the daemon's configuration: config/nri-armor.yaml documents
// every key, and every key is also a flag of the same name.
type Config struct {
	// Socket is the runtime's NRI socket.
	Socket string `yaml:"socket"`
	// PluginName and PluginIndex are how nri-armor registers (IDX-NAME).
	PluginName  string `yaml:"pluginName"`
	PluginIndex string `yaml:"pluginIndex"`
	// PolicyDirs are read recursively for *.yaml and *.yml policies.
	PolicyDirs []string `yaml:"policyDirs"`
	// The node's defaults (defaultPosture, defaultMode, defaultVisibility)
	// and the namespaces whose pods may weaken them by annotation
	// (weakenNamespaces): armorctl reads the same keys.
	policy.NodeDefaults `yaml:",inline"`
	// FailMode is "closed" (a container whose rule set cannot be installed
	// does not start) or "open" (it starts, unprotected, and it is logged).
	FailMode string `yaml:"failMode"`
	// SeccompLogRefusals: the node's OCI runtime accepts seccomp flags
	// (runc ≥ 1.2, crun): seccomp filters then log their refusals, which
	// armor-tracer turns into Block alerts. runc before 1.2 refuses to
	// start a container whose spec has one (docs/seccomp.md).
	SeccompLogRefusals bool `yaml:"seccompLogRefusals"`
	// MetricsAddress serves /metrics and /readyz; empty disables it.
	MetricsAddress string `yaml:"metricsAddress"`
	// BPFFS is where kernel state is pinned.
	BPFFS string `yaml:"bpffs"`
	// StateDir is where containers and rule sets are published for
	// armor-tracer (package state); empty publishes nothing.
	StateDir string `yaml:"stateDir"`
	// AppArmorDir is where the AppArmor backend keeps the profiles it
	// loads (where AppArmor enforces: docs/apparmor.md). Under /run by
	// default: they must not outlive the pods that need them.
	AppArmorDir string `yaml:"appArmorDir"`
	// SeccompProfileRoot is the kubelet's seccomp root (its --root-dir
	// plus /seccomp): on runtimes that take syscall rules through a
	// Localhost profile (CRI-O, containerd < 2.3; docs/seccomp.md) the
	// agent writes the profiles pods name under its nri-armor folder.
	SeccompProfileRoot string `yaml:"seccompProfileRoot"`
	// GateBinary, when set, is where nri-armor-hook is installed on the
	// host for the start gate's createRuntime hook (package ocihook); the
	// daemon copies it there, from next to its own binary, at start, and
	// writes the guard's trust file beside it (ocihook.TrustFile).
	// GateSocket is where it answers the hook. Empty GateBinary: no gate.
	GateBinary string `yaml:"gateBinary"`
	GateSocket string `yaml:"gateSocket"`
	// NodeName and NodeLabels are this node as host policies' nodeSelector
	// sees it: the labels, plus kubernetes.io/hostname = NodeName (the
	// host name when empty).
	NodeName   string            `yaml:"nodeName"`
	NodeLabels map[string]string `yaml:"nodeLabels"`
	// SetLinger keeps a rule set no container uses loaded in the kernel
	// this long, for the next container with the same policies.
	SetLinger time.Duration `yaml:"setLinger"`
	// MaxContainers and MaxRuleEntries size the kernel maps.
	MaxContainers  int `yaml:"maxContainers"`
	MaxRuleEntries int `yaml:"maxRuleEntries"`
	// NamespaceMaxSets and NamespaceMaxRules bound each namespace's share
	// of them: distinct rule sets, and rules over those sets (0: no bound).
	NamespaceMaxSets  int `yaml:"namespaceMaxSets"`
	NamespaceMaxRules int `yaml:"namespaceMaxRules"`
	// KubernetesPolicies: policies also come from the API server's
	// KubeArmorPolicy, KubeArmorClusterPolicy and KubeArmorHostPolicy
	// objects (k8s/source), merged with PolicyDirs' into one catalog. The
	// daemon serves the runtime only after the first full list: no
	// container is decided on part of the policies.
	KubernetesPolicies bool `yaml:"kubernetesPolicies"`
	// Kubeconfig reaches the API server from outside a pod; empty means
	// the pod's service account.
	Kubeconfig string `yaml:"kubeconfig"`
	// KubernetesSyncTimeout bounds the wait for that first list; past it
	// the daemon stops with the reason (restarted, it tries again; the
	// runtime refuses containers meanwhile).
	KubernetesSyncTimeout time.Duration `yaml:"kubernetesSyncTimeout"`
	// ReconnectMax bounds the back-off between attempts to reach the runtime.
	ReconnectMax time.Duration `yaml:"reconnectMax"`
	// LogLevel (debug, info, warn, error) and LogFormat (text, json).
	LogLevel  string `yaml:"logLevel"`
	LogFormat string `yaml:"logFormat"`
}

// Default is the configuration with nothing set.
func Default() Config {
	return Config{
		Socket:             "/var/run/nri/nri.sock",
		PluginName:         "nri-armor",
		PluginIndex:        "10",
		PolicyDirs:         []string{"/etc/nri-armor/policies"},
		NodeDefaults:       policy.DefaultNodeDefaults(),
		FailMode:           "closed",
		MetricsAddress:     ":9481",
		BPFFS:              events.DefaultPinPath,
		StateDir:           state.DefaultRoot,
		AppArmorDir:        "/run/nri-armor/apparmor",
		SeccompProfileRoot: seccomp.DefaultProfileRoot,
		GateSocket:         ocihook.DefaultSocket,
		SetLinger:          time.Minute,
		MaxContainers:      16384,
		MaxRuleEntries:     1 << 18,
		ReconnectMax:       30 * time.Second,

		KubernetesSyncTimeout: time.Minute,
		LogLevel:              "info",
		LogFormat:             "text",
	}
}

// Load reads a config file over the defaults. Unknown keys are errors with
// their line, as policies' are: a typo must not silently keep a default.
func Load(path string) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && err.Error() != "EOF" {
		return cfg, fmt.Errorf("%s: %v", path, err)
	}
	return cfg, cfg.Validate()
}

// Validate checks every value that has a fixed set of choices.
func (c Config) Validate() error {
	if _, err := c.Defaults(); err != nil {
		return err
	}
	if c.FailMode != "closed" && c.FailMode != "open" {
		return fmt.Errorf("failMode must be closed or open, got %q", c.FailMode)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("logFormat must be text or json, got %q", c.LogFormat)
	}
	if len(c.PolicyDirs) == 0 {
		return fmt.Errorf("policyDirs: at least one directory")
	}
	return nil
}

// Node returns this node as host policies see it.
func (c Config) Node() (plugin.Node, error) {
	n := plugin.Node{Name: c.NodeName, Labels: map[string]string{}}
	if n.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return n, fmt.Errorf("nodeName: empty, and the host name: %w", err)
		}
		n.Name = h
	}
	for k, v := range c.NodeLabels {
		n.Labels[k] = v
	}
	if _, ok := n.Labels["kubernetes.io/hostname"]; !ok {
		n.Labels["kubernetes.io/hostname"] = n.Name
	}
	return n, nil
}

// BindFlags registers a flag for every key, writing into c. Call it with
// the file's values in c, then parse: flags given override the file.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Socket, "socket", c.Socket, "the runtime's NRI socket")
	fs.StringVar(&c.PluginName, "pluginName", c.PluginName, "plugin name to register")
	fs.StringVar(&c.PluginIndex, "pluginIndex", c.PluginIndex, "plugin index to register")
	fs.Func("policyDirs", "policy directories, comma-separated (replaces the config's)", func(v string) error {
		c.PolicyDirs = strings.Split(v, ",")
		return nil
	})
	fs.StringVar(&c.DefaultPosture, "defaultPosture", c.DefaultPosture, "node default postures")
	fs.StringVar(&c.DefaultMode, "defaultMode", c.DefaultMode, "node default mode: enforce, audit or disabled")
	fs.StringVar(&c.DefaultVisibility, "defaultVisibility", c.DefaultVisibility, "node default visibility")
	fs.Func("weakenNamespaces", "namespaces whose pods may weaken the defaults by annotation, comma-separated (replaces the config's)", func(v string) error {
		c.WeakenNamespaces = splitList(v)
		return nil
	})
	fs.StringVar(&c.FailMode, "failMode", c.FailMode, "closed or open")
	fs.BoolVar(&c.SeccompLogRefusals, "seccompLogRefusals", c.SeccompLogRefusals, "seccomp filters log their refusals (SECCOMP_FILTER_FLAG_LOG; needs runc >= 1.2 or crun)")
	fs.StringVar(&c.MetricsAddress, "metricsAddress", c.MetricsAddress, "address of /metrics and /readyz (empty: off)")
	fs.StringVar(&c.BPFFS, "bpffs", c.BPFFS, "where kernel state is pinned")
	fs.StringVar(&c.StateDir, "stateDir", c.StateDir, "where containers and rule sets are published for armor-tracer (empty: nowhere)")
	fs.StringVar(&c.AppArmorDir, "appArmorDir", c.AppArmorDir, "where the AppArmor backend keeps the profiles it loads")
	fs.StringVar(&c.SeccompProfileRoot, "seccompProfileRoot", c.SeccompProfileRoot, "the kubelet's seccomp root, under which Localhost seccomp profiles are written (CRI-O, containerd < 2.3)")
	fs.StringVar(&c.GateBinary, "gateBinary", c.GateBinary, "install nri-armor-hook here for the start gate (empty: no gate)")
	fs.StringVar(&c.GateSocket, "gateSocket", c.GateSocket, "where the daemon answers the start gate's hook")
	fs.StringVar(&c.NodeName, "nodeName", c.NodeName, "this node's name for host policies (empty: the host name)")
	fs.Func("nodeLabels", "this node's labels for host policies, k=v,k=v (replaces the config's)", func(v string) error {
		labels, err := cli.KeyValues(v)
		c.NodeLabels = labels
		return err
	})
	fs.BoolVar(&c.KubernetesPolicies, "kubernetesPolicies", c.KubernetesPolicies, "also watch the API server's KubeArmor policy objects")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig file (empty: the pod's service account)")
	fs.DurationVar(&c.KubernetesSyncTimeout, "kubernetesSyncTimeout", c.KubernetesSyncTimeout, "longest wait for the first list of the policy objects")
	fs.DurationVar(&c.SetLinger, "setLinger", c.SetLinger, "how long an unused rule set stays loaded for the next container with the same policies")
	fs.IntVar(&c.MaxContainers, "maxContainers", c.MaxContainers, "containers with a rule set, at most")
	fs.IntVar(&c.MaxRuleEntries, "maxRuleEntries", c.MaxRuleEntries, "kernel rule entries, at most")
	fs.IntVar(&c.NamespaceMaxSets, "namespaceMaxSets", c.NamespaceMaxSets, "distinct rule sets one namespace's containers may use (0: no bound)")
	fs.IntVar(&c.NamespaceMaxRules, "namespaceMaxRules", c.NamespaceMaxRules, "rules one namespace's sets may hold in the kernel (0: no bound)")
	fs.DurationVar(&c.ReconnectMax, "reconnectMax", c.ReconnectMax, "longest wait between attempts to reach the runtime")
	fs.StringVar(&c.LogLevel, "logLevel", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "logFormat", c.LogFormat, "text or json")
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
