package tracer

import (
	"fmt"
	"time"
)

// Config is what shapes the pipeline: the keys of armor-tracer's
// configuration that name the alerts, pick their format, cut floods and
// bound memory. tracer/daemon.Config holds it with the other keys;
// config/armor-tracer.yaml documents every key with its default.
type Config struct {
	// ClusterName and NodeName fill the alerts' ClusterName and HostName
	// (NodeName "" means the machine's host name).
	ClusterName string `yaml:"clusterName"`
	NodeName    string `yaml:"nodeName"`
	// ProcRoot is the host's /proc (process names, and the files that
	// paths name: cwd, fds, roots).
	ProcRoot string `yaml:"procRoot"`
	// Format is the shape of alerts and logs on the sinks: "kubearmor"
	// (KubeArmor's alert keys) or "falco" (Falco's JSON output). The HTTP
	// stream is always in KubeArmor's shape.
	Format string `yaml:"format"`
	// RateBurst and RatePerSecond are flood control's token buckets: one
	// per container and rule for alerts, one per container for logs;
	// ThresholdWindow is how often one AlertThreshold summary per container
	// reports what was dropped (counts per policy, rule and severity).
	RateBurst       int           `yaml:"rateBurst"`
	RatePerSecond   float64       `yaml:"ratePerSecond"`
	ThresholdWindow time.Duration `yaml:"thresholdWindow"`
	// RateExemptSeverity: Block alerts and alerts of at least this
	// severity take no token and are never dropped (0: none by severity).
	RateExemptSeverity int `yaml:"rateExemptSeverity"`
	// MaxContainers bounds cached containers, rule sets and rate buckets
	// (of containers and rules);
	// MaxProcesses the process table (names of exited processes).
	MaxContainers int `yaml:"maxContainers"`
	MaxProcesses  int `yaml:"maxProcesses"`
	// NegativeCacheTTL is how long an unknown cgroup id or set stays
	// unknown before its file is looked for again; StateMaxAge how long a
	// cached container is trusted without fsnotify saying it changed.
	NegativeCacheTTL time.Duration `yaml:"negativeCacheTTL"`
	StateMaxAge      time.Duration `yaml:"stateMaxAge"`
}

// DefaultConfig is the pipeline's configuration with nothing set.
func DefaultConfig() Config {
	return Config{
		ClusterName:      "default",
		ProcRoot:         "/proc",
		Format:           "kubearmor",
		RateBurst:        50,
		RatePerSecond:    10,
		ThresholdWindow:  10 * time.Second,
		MaxContainers:    16384,
		MaxProcesses:     65536,
		NegativeCacheTTL: 2 * time.Second,
		StateMaxAge:      30 * time.Second,

		// Block alerts and alerts of severity 7 or more are never dropped.
		RateExemptSeverity: 7,
	}
}

// Validate checks every value that has a range or a fixed set of choices,
// naming the key.
func (c Config) Validate() error {
	switch {
	case c.Format != "kubearmor" && c.Format != "falco":
		return fmt.Errorf("format must be kubearmor or falco, got %q", c.Format)
	case c.RateBurst < 1:
		return fmt.Errorf("rateBurst must be at least 1, got %d", c.RateBurst)
	case c.RatePerSecond <= 0:
		return fmt.Errorf("ratePerSecond must be above 0, got %v", c.RatePerSecond)
	case c.RateExemptSeverity < 0 || c.RateExemptSeverity > 10:
		return fmt.Errorf("rateExemptSeverity must be between 0 and 10, got %d", c.RateExemptSeverity)
	case c.ThresholdWindow <= 0:
		return fmt.Errorf("thresholdWindow must be above 0, got %v", c.ThresholdWindow)
	case c.MaxContainers < 1:
		return fmt.Errorf("maxContainers must be at least 1, got %d", c.MaxContainers)
	case c.MaxProcesses < 1:
		return fmt.Errorf("maxProcesses must be at least 1, got %d", c.MaxProcesses)
	case c.NegativeCacheTTL <= 0:
		return fmt.Errorf("negativeCacheTTL must be above 0, got %v", c.NegativeCacheTTL)
	case c.StateMaxAge <= 0:
		return fmt.Errorf("stateMaxAge must be above 0, got %v", c.StateMaxAge)
	}
	return nil
}
