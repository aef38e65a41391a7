package daemon

import (
	"bytes"
	"flag"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/nri-armor/nri-armor/internal/testenv"
)

// TestConfig: the shipped file is the defaults, unknown keys and bad
// values are errors naming the file and the key, flags override.
func TestConfig(t *testing.T) {
	path := filepath.Join(testenv.RepoRoot(t), "config", "armor-tracer.yaml")
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, DefaultConfig()) {
		t.Fatalf("config/armor-tracer.yaml differs from DefaultConfig():\n%+v\n%+v", c, DefaultConfig())
	}
	dir := t.TempDir()
	for content, want := range map[string]string{
		"rateBurst: 5\nratebursts: 6\n": "field ratebursts not found",
		"format: xml\n":                 "format must be kubearmor or falco",
		"ratePerSecond: 0\n":            "ratePerSecond must be above 0",
		"thresholdWindow: soon\n":       "line 1: cannot unmarshal",
		// The stream never shares the metrics listener, and beyond
		// loopback it needs a token.
		"metricsAddress: \":9482\"\nstreamAddress: \":9482\"\n": "streamAddress and metricsAddress are both :9482",
		"streamAddress: \":9483\"\n":                            "streamAddress :9483 is not a loopback address: set streamTokenFile",
		"streamAddress: \"0.0.0.0:9483\"\n":                     "is not a loopback address",
		"streamAddress: \"[::]:9483\"\n":                        "is not a loopback address",
		"streamAddress: \"tracer.example:9483\"\n":              "is not a loopback address",
		"streamAddress: unix:stream.sock\n":                     "needs an absolute path",
		"streamAddress: \"9483\"\n":                             "must be host:port or unix:PATH",
		"streamMaxClientsPerPeer: 0\n":                          "streamMaxClientsPerPeer must be at least 1",
	} {
		p := testenv.WriteFile(t, dir, "c.yaml", content)
		_, err := LoadConfig(p)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%q: error %v, want one naming %s and %q", content, err, p, want)
		}
	}
	for _, ok := range []string{
		"streamAddress: \"127.0.0.1:9483\"\n",
		"streamAddress: \"[::1]:9483\"\n",
		"streamAddress: \"localhost:9483\"\n",
		"streamAddress: unix:/run/armor-tracer/stream.sock\n",
		"streamAddress: \":9483\"\nstreamTokenFile: /etc/armor-tracer/token\n",
		"streamAddress: \"\"\n",
		"metricsAddress: 127.0.0.1:0\nstreamAddress: 127.0.0.1:0\n", // port 0: two ports all the same
	} {
		if _, err := LoadConfig(testenv.WriteFile(t, dir, "ok.yaml", ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	c = DefaultConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.BindFlags(fs)
	if err := fs.Parse([]string{"-rateBurst", "7", "-format", "falco", "-metricsPodLabel"}); err != nil {
		t.Fatal(err)
	}
	if c.RateBurst != 7 || c.Format != "falco" || !c.MetricsPodLabel {
		t.Fatalf("flags not applied: %+v", c)
	}
	// Every key is a flag of its name (the pipeline's keys, inline in the
	// file, too).
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	keys := configKeys(t, c)
	if n != len(keys) {
		t.Fatalf("%d flags for %d config keys", n, len(keys))
	}
	for _, k := range keys {
		if fs.Lookup(k) == nil {
			t.Errorf("config key %s has no flag", k)
		}
	}
}

// TestDaemonSetConfig: the armor-tracer.yaml that deploy/nri-armor.yaml
// (the chart, charts/nri-armor, rendered) ships loads (strictly), and agrees with nri-armor's on where the state
// and the pins are; its alert stream is on no listener of the pod IP: on
// loopback (or a unix socket), in a pod that has its own (no hostNetwork),
// and no container port.
func TestDaemonSetConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "nri-armor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var tracerYAML, daemonYAML string
	var pod *podSpec
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
			Spec struct {
				Template struct {
					Spec podSpec `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if doc.Kind == "ConfigMap" && doc.Data["armor-tracer.yaml"] != "" {
			tracerYAML, daemonYAML = doc.Data["armor-tracer.yaml"], doc.Data["nri-armor.yaml"]
		}
		if doc.Kind == "DaemonSet" {
			pod = &doc.Spec.Template.Spec
		}
	}
	if tracerYAML == "" || pod == nil {
		t.Fatal("no armor-tracer.yaml in a ConfigMap, or no DaemonSet, in deploy/nri-armor.yaml")
	}
	c, err := LoadConfig(testenv.WriteFile(t, t.TempDir(), "armor-tracer.yaml", tracerYAML))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		StateDir string `yaml:"stateDir"`
		BPFFS    string `yaml:"bpffs"`
	}
	if err := yaml.Unmarshal([]byte(daemonYAML), &d); err != nil {
		t.Fatal(err)
	}
	if c.StateDir != d.StateDir || c.BPFFS != d.BPFFS {
		t.Fatalf("tracer reads %s and %s, nri-armor writes %s and %s", c.StateDir, c.BPFFS, d.StateDir, d.BPFFS)
	}

	if strings.HasPrefix(c.StreamAddress, "unix:") {
		return
	}
	host, port, err := net.SplitHostPort(c.StreamAddress)
	if err != nil || !isLoopback(host) {
		t.Fatalf("the alert stream is served on %q (%v): on the pod IP, want loopback", c.StreamAddress, err)
	}
	if pod.HostNetwork {
		t.Fatalf("the pod is hostNetwork: the stream's loopback %s is the node's", c.StreamAddress)
	}
	for _, ctr := range pod.Containers {
		for _, p := range ctr.Ports {
			if strconv.Itoa(p.ContainerPort) == port {
				t.Errorf("container %s declares the stream's port %s", ctr.Name, port)
			}
		}
	}
}

// podSpec is what TestDaemonSetConfig reads of the DaemonSet's pod.
type podSpec struct {
	HostNetwork bool `yaml:"hostNetwork"`
	Containers  []struct {
		Name  string `yaml:"name"`
		Ports []struct {
			ContainerPort int `yaml:"containerPort"`
		} `yaml:"ports"`
	} `yaml:"containers"`
}

// configKeys are the keys of c as a config file holds them.
func configKeys(t *testing.T, c Config) []string {
	t.Helper()
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
