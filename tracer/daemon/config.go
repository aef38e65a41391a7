package daemon

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/nri-armor/nri-armor/enforce/events"
	"github.com/nri-armor/nri-armor/state"
	"github.com/nri-armor/nri-armor/tracer"
)

// Config is armor-tracer's configuration: config/armor-tracer.yaml documents
// every key with its default, and every key is also a flag of the same name
// (as nri-armor's are).
type Config struct {
	// The pipeline's keys: the alerts' ClusterName and HostName, the
	// host's /proc, the format of the sinks, flood control and the bounds
	// of its caches.
	tracer.Config `yaml:",inline"`
	// StateDir is where nri-armor publishes containers and rule sets;
	// BPFFS where it pins the event ring buffer.
	StateDir string `yaml:"stateDir"`
	BPFFS    string `yaml:"bpffs"`
	// Stdout writes alerts and logs to standard output; OutputFile ("" for
	// none) appends them to a file too, both in the shape Format names.
	Stdout     bool   `yaml:"stdout"`
	OutputFile string `yaml:"outputFile"`
	// MetricsAddress serves /metrics and /readyz (host:port); it may be
	// the pod IP, for Prometheus. StreamAddress serves the NDJSON stream
	// /v1/logs, on a listener of its own: host:port, loopback by default
	// (any other host needs StreamTokenFile), or unix:PATH (a socket of
	// mode 0600). "" turns either off. See docs/security.md.
	MetricsAddress string `yaml:"metricsAddress"`
	StreamAddress  string `yaml:"streamAddress"`
	// StreamTokenFile, when set, holds a bearer token that every stream
	// request must present (Authorization: Bearer TOKEN); the file is
	// re-read at each request, so a rotated token takes effect at once.
	StreamTokenFile string `yaml:"streamTokenFile"`
	// MetricsPodLabel adds the pod name to the alert counter's labels: one
	// series per pod, so off by default to bound cardinality.
	MetricsPodLabel bool `yaml:"metricsPodLabel"`
	// StreamBacklog messages are kept for `armorctl logs` without
	// --follow; StreamQueue messages are queued per client before its
	// messages are dropped (and counted); at most StreamMaxClients
	// followers, and StreamMaxClientsPerPeer of one peer (a remote host,
	// or a uid on a unix socket).
	StreamBacklog           int `yaml:"streamBacklog"`
	StreamQueue             int `yaml:"streamQueue"`
	StreamMaxClients        int `yaml:"streamMaxClients"`
	StreamMaxClientsPerPeer int `yaml:"streamMaxClientsPerPeer"`
	// RetryInterval is how often the pins and the state directory are
	// looked for while nri-armor has not created them.
	RetryInterval time.Duration `yaml:"retryInterval"`
	// Telemetry loads the kernel telemetry programs (tracer/telemetry):
	// process, file, network and capability events of the watched
	// containers, for ContainerLog and for the rules the kernel does not
	// enforce. TelemetryPinPath pins them ("": <bpffs>/tracer), so events
	// keep coming while the tracer restarts; TelemetryRingBytes sizes their
	// ring buffer; SkipCapabilities leaves capability/cap_capable off (it
	// runs on every capability check of the node).
	Telemetry          bool   `yaml:"telemetry"`
	TelemetryPinPath   string `yaml:"telemetryPinPath"`
	TelemetryRingBytes int    `yaml:"telemetryRingBytes"`
	SkipCapabilities   bool   `yaml:"skipCapabilities"`
	// SeccompAudit reads the kernel's seccomp records (the audit log's
	// multicast group) for the syscall rules' alerts (docs/seccomp.md).
	SeccompAudit bool `yaml:"seccompAudit"`
	// AppArmorAudit reads the AppArmor records of nri-armor's profiles
	// (the same group) for the alerts of the rules AppArmor enforces
	// (docs/apparmor.md).
	AppArmorAudit bool `yaml:"appArmorAudit"`
	// LogLevel (debug, info, warn, error) and LogFormat (text, json) are
	// the tracer's own log, on standard error.
	LogLevel  string `yaml:"logLevel"`
	LogFormat string `yaml:"logFormat"`
}

// DefaultConfig is the configuration with nothing set.
func DefaultConfig() Config {
	return Config{
		Config:                  tracer.DefaultConfig(),
		StateDir:                state.DefaultRoot,
		BPFFS:                   events.DefaultPinPath,
		Stdout:                  true,
		MetricsAddress:          ":9482",
		StreamAddress:           "127.0.0.1:9483",
		StreamBacklog:           1000,
		StreamQueue:             1024,
		StreamMaxClients:        64,
		StreamMaxClientsPerPeer: 8,
		RetryInterval:           2 * time.Second,
		Telemetry:               true,
		SeccompAudit:            true,
		AppArmorAudit:           true,
		TelemetryRingBytes:      32 << 20,
		LogLevel:                "info",
		LogFormat:               "text",
	}
}

// LoadConfig reads a config file over the defaults. Unknown keys are
// errors with their line: a typo must not silently keep a default.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("%s: %v", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %v", path, err)
	}
	return cfg, nil
}

// Validate checks every value that has a range or a fixed set of choices,
// naming the key: the pipeline's first, then the others.
func (c Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	switch {
	case c.StreamBacklog < 0:
		return fmt.Errorf("streamBacklog must not be negative, got %d", c.StreamBacklog)
	case c.StreamQueue < 1:
		return fmt.Errorf("streamQueue must be at least 1, got %d", c.StreamQueue)
	case c.StreamMaxClients < 1:
		return fmt.Errorf("streamMaxClients must be at least 1, got %d", c.StreamMaxClients)
	case c.StreamMaxClientsPerPeer < 1:
		return fmt.Errorf("streamMaxClientsPerPeer must be at least 1, got %d", c.StreamMaxClientsPerPeer)
	case c.RetryInterval <= 0:
		return fmt.Errorf("retryInterval must be above 0, got %v", c.RetryInterval)
	case c.TelemetryRingBytes < 4096 || c.TelemetryRingBytes&(c.TelemetryRingBytes-1) != 0:
		return fmt.Errorf("telemetryRingBytes must be a power of two of at least 4096, got %d", c.TelemetryRingBytes)
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("logFormat must be text or json, got %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("logLevel must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return c.validateStream()
}

// validateStream keeps the stream off every listener that anyone may
// reach without a token: it never shares the metrics listener, and a TCP
// address other than loopback needs streamTokenFile.
func (c Config) validateStream() error {
	addr := c.StreamAddress
	if addr == "" {
		return nil
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if !filepath.IsAbs(path) {
			return fmt.Errorf("streamAddress unix:PATH needs an absolute path, got %q", addr)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("streamAddress must be host:port or unix:PATH: %v", err)
	}
	if addr == c.MetricsAddress && port != "0" {
		return fmt.Errorf("streamAddress and metricsAddress are both %s: the stream is served on a listener of its own, never beside the metrics", addr)
	}
	if !isLoopback(host) && c.StreamTokenFile == "" {
		return fmt.Errorf("streamAddress %s is not a loopback address: set streamTokenFile (the stream carries every pod's alerts)", addr)
	}
	return nil
}

// isLoopback reports whether host names only loopback addresses ("" is
// every interface).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// BindFlags registers a flag for every key, writing into c. Call it with
// the file's values in c, then parse: flags given override the file.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.ClusterName, "clusterName", c.ClusterName, "alerts' ClusterName")
	fs.StringVar(&c.NodeName, "nodeName", c.NodeName, "alerts' HostName (empty: this machine's host name)")
	fs.StringVar(&c.StateDir, "stateDir", c.StateDir, "state directory nri-armor publishes")
	fs.StringVar(&c.BPFFS, "bpffs", c.BPFFS, "where nri-armor pins its kernel state")
	fs.StringVar(&c.ProcRoot, "procRoot", c.ProcRoot, "the host's /proc")
	fs.BoolVar(&c.Stdout, "stdout", c.Stdout, "write alerts and logs to standard output")
	fs.StringVar(&c.OutputFile, "outputFile", c.OutputFile, "also append alerts and logs to this file (empty: none)")
	fs.StringVar(&c.Format, "format", c.Format, "kubearmor or falco")
	fs.StringVar(&c.MetricsAddress, "metricsAddress", c.MetricsAddress, "address of /metrics and /readyz (empty: off)")
	fs.StringVar(&c.StreamAddress, "streamAddress", c.StreamAddress, "address of the /v1/logs stream: host:port (loopback unless streamTokenFile is set) or unix:PATH (empty: off)")
	fs.StringVar(&c.StreamTokenFile, "streamTokenFile", c.StreamTokenFile, "file holding the bearer token stream requests must present (empty: none)")
	fs.BoolVar(&c.MetricsPodLabel, "metricsPodLabel", c.MetricsPodLabel, "label alert counters with the pod name")
	fs.IntVar(&c.RateBurst, "rateBurst", c.RateBurst, "alerts a container may burst per rule (and logs per container)")
	fs.Float64Var(&c.RatePerSecond, "ratePerSecond", c.RatePerSecond, "alerts (and logs) per second per container, sustained")
	fs.IntVar(&c.RateExemptSeverity, "rateExemptSeverity", c.RateExemptSeverity, "alerts of this severity or more are never rate-limited (0: none; Block alerts never are)")
	fs.DurationVar(&c.ThresholdWindow, "thresholdWindow", c.ThresholdWindow, "how often dropped alerts are summarised per container")
	fs.IntVar(&c.MaxContainers, "maxContainers", c.MaxContainers, "containers, sets and rate buckets cached, at most")
	fs.IntVar(&c.MaxProcesses, "maxProcesses", c.MaxProcesses, "processes remembered, at most")
	fs.DurationVar(&c.NegativeCacheTTL, "negativeCacheTTL", c.NegativeCacheTTL, "how long an unknown cgroup stays unknown")
	fs.DurationVar(&c.StateMaxAge, "stateMaxAge", c.StateMaxAge, "how long a cached container is trusted")
	fs.IntVar(&c.StreamBacklog, "streamBacklog", c.StreamBacklog, "recent messages kept for the stream")
	fs.IntVar(&c.StreamQueue, "streamQueue", c.StreamQueue, "messages queued per stream client before dropping")
	fs.IntVar(&c.StreamMaxClients, "streamMaxClients", c.StreamMaxClients, "stream followers, at most")
	fs.IntVar(&c.StreamMaxClientsPerPeer, "streamMaxClientsPerPeer", c.StreamMaxClientsPerPeer, "stream followers of one peer (remote host, or uid on a unix socket), at most")
	fs.DurationVar(&c.RetryInterval, "retryInterval", c.RetryInterval, "how often missing pins and state are looked for")
	fs.BoolVar(&c.Telemetry, "telemetry", c.Telemetry, "load the kernel telemetry programs")
	fs.StringVar(&c.TelemetryPinPath, "telemetryPinPath", c.TelemetryPinPath, "where the telemetry is pinned (empty: <bpffs>/tracer)")
	fs.IntVar(&c.TelemetryRingBytes, "telemetryRingBytes", c.TelemetryRingBytes, "telemetry ring buffer size (a power of two)")
	fs.BoolVar(&c.SkipCapabilities, "skipCapabilities", c.SkipCapabilities, "do not trace capability checks")
	fs.BoolVar(&c.SeccompAudit, "seccompAudit", c.SeccompAudit, "read the kernel's seccomp records (audit netlink) for syscall alerts")
	fs.BoolVar(&c.AppArmorAudit, "appArmorAudit", c.AppArmorAudit, "read the AppArmor records of nri-armor's profiles (audit netlink) for their alerts")
	fs.StringVar(&c.LogLevel, "logLevel", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "logFormat", c.LogFormat, "text or json")
}
