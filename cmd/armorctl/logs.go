package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/nri-armor/nri-armor/k8s/agents"
	"github.com/nri-armor/nri-armor/tracer/alert"
)

// runLogs reads armor-tracer's stream: recent alerts and logs, or with
// --follow everything from now on, filtered on the server. With
// --kubernetes, the stream of every agent pod of the cluster (or of one
// node's) through the API server's port-forward, merged.
func runLogs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// armor-tracer's default streamAddress: reached on its node, or through
	// kubectl port-forward to its pod (or --kubernetes).
	server := fs.String("server", "http://127.0.0.1:9483", "armor-tracer's stream, as a URL (its streamAddress)")
	socket := fs.String("socket", "", "armor-tracer's stream on a unix socket (streamAddress unix:PATH) instead of --server")
	tokenFile := fs.String("token-file", "", "a file holding the bearer token armor-tracer asks for (its streamTokenFile)")
	kube := fs.Bool("kubernetes", false, "read every agent pod's stream through the API server (port-forward), as karmor logs does")
	kubeconfig := fs.String("kubeconfig", "", "with --kubernetes: the kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
	kubeContext := fs.String("context", "", "with --kubernetes: the kubeconfig context (default: its current one)")
	agentNS := fs.String("agent-namespace", agents.DefaultNamespace, "with --kubernetes: the namespace of the nri-armor agent pods")
	agentSel := fs.String("agent-selector", agents.DefaultSelector, "with --kubernetes: the labels of the agent pods")
	node := fs.String("node", "", "with --kubernetes: only this node's agent")
	streamPort := fs.Int("stream-port", 9483, "with --kubernetes: armor-tracer's stream port in its pod (its streamAddress)")
	var f alert.Filter
	fs.StringVar(&f.Namespace, "namespace", "", "only this namespace")
	fs.StringVar(&f.Pod, "pod", "", "only this pod")
	fs.StringVar(&f.Container, "container", "", "only this container")
	fs.StringVar(&f.Operation, "operation", "", "only this operation: Process, File, Network, Capabilities, Syscall, AlertThreshold")
	fs.StringVar(&f.Policy, "policy", "", "only alerts of this policy")
	fs.StringVar(&f.Type, "type", "all", "alert, log or all")
	output := fs.String("o", "text", "output: text or json (the stream's NDJSON lines)")
	follow := fs.Bool("follow", false, "keep streaming new alerts and logs")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *output != "text" && *output != "json" {
		fmt.Fprintf(stderr, "armorctl logs: -o must be text or json, got %q\n", *output)
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *socket != "" && set["server"], *kube && (set["server"] || *socket != ""):
		fmt.Fprintln(stderr, "armorctl logs: --server, --socket and --kubernetes name different servers: give one")
		return 2
	case !*kube && (set["kubeconfig"] || set["context"] || set["agent-namespace"] || set["agent-selector"] || set["node"] || set["stream-port"]):
		fmt.Fprintln(stderr, "armorctl logs: --kubeconfig, --context, --agent-namespace, --agent-selector, --node and --stream-port go with --kubernetes")
		return 2
	}
	var token string
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if token = strings.TrimSpace(string(b)); err != nil || token == "" {
			fmt.Fprintf(stderr, "armorctl logs: --token-file: no token in %s (%v)\n", *tokenFile, err)
			return 2
		}
	}
	q := f.Values()
	if _, err := alert.ParseFilter(q); err != nil {
		fmt.Fprintf(stderr, "armorctl logs: --%v\n", err)
		return 2
	}
	if *follow {
		q.Set("follow", "true")
	}
	query := alert.StreamPath + "?" + q.Encode()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := &lineWriter{w: stdout, stderr: stderr, json: *output == "json"}

	if !*kube {
		client, base, where := http.DefaultClient, *server, ""
		if *socket != "" {
			path := *socket
			client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", path)
			}}}
			base, where = "http://armor-tracer", path // the host is not looked at
		}
		url := strings.TrimSuffix(base, "/") + query
		if where == "" {
			where = url
		}
		if err := readStream(ctx, client, url, token, out.write); err != nil {
			fmt.Fprintf(stderr, "armorctl logs: %s: %v\n", where, err)
			return 1
		}
		return 0
	}

	cfg, err := agents.Config(*kubeconfig, *kubeContext)
	if err != nil {
		fmt.Fprintf(stderr, "armorctl logs: --kubernetes: %v\n", err)
		return 2
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "armorctl logs: --kubernetes: %v\n", err)
		return 2
	}
	pods, err := agents.Pods(ctx, cs, *agentNS, *agentSel, *node)
	if err != nil {
		fmt.Fprintf(stderr, "armorctl logs: %v\n", err)
		return 1
	}
	// One stream per node. Without --follow each ends after its recent
	// alerts, and the lines are printed in time order; with it, as they come.
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed bool
		recent []streamLine
	)
	for _, pod := range pods {
		wg.Go(func() {
			where := fmt.Sprintf("agent pod %s/%s (node %s)", pod.Namespace, pod.Name, pod.Spec.NodeName)
			addr, err := agents.Forward(ctx, cfg, &pod, *streamPort)
			if err == nil {
				err = readStream(ctx, http.DefaultClient, "http://"+addr+query, token, func(line []byte) {
					mu.Lock()
					defer mu.Unlock()
					if *follow {
						out.write(line)
						return
					}
					recent = append(recent, newStreamLine(line))
				})
			}
			if err != nil {
				mu.Lock()
				defer mu.Unlock()
				failed = true
				fmt.Fprintf(stderr, "armorctl logs: %s: %v\n", where, err)
			}
		})
	}
	wg.Wait()
	slices.SortStableFunc(recent, func(a, b streamLine) int { return a.at.Compare(b.at) })
	for _, l := range recent {
		out.write(l.line)
	}
	if failed {
		return 1
	}
	return 0
}

// readStream GETs url (with token as a bearer token when not "") and hands
// each NDJSON line of the answer to line until the stream ends or ctx does.
func readStream(ctx context.Context, client *http.Client, url, token string, line func([]byte)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line(sc.Bytes())
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// streamLine is a line kept to be printed in time order.
type streamLine struct {
	line []byte
	at   time.Time
}

func newStreamLine(b []byte) streamLine {
	var a struct {
		UpdatedTime string `json:"UpdatedTime"`
	}
	_ = json.Unmarshal(b, &a)
	at, _ := time.Parse(time.RFC3339Nano, a.UpdatedTime)
	return streamLine{line: bytes.Clone(b), at: at}
}

// lineWriter prints the stream's lines: as they are (json) or as text.
type lineWriter struct {
	w, stderr io.Writer
	json      bool
}

func (o *lineWriter) write(line []byte) {
	var a alert.Alert
	if err := json.Unmarshal(line, &a); err != nil {
		fmt.Fprintf(o.stderr, "armorctl logs: unreadable line: %v\n", err)
		return
	}
	if a.Type == "StreamDropped" {
		fmt.Fprintf(o.stderr, "armorctl logs: the server dropped %s messages: this client read too slowly\n", a.Data)
		return
	}
	if o.json {
		fmt.Fprintf(o.w, "%s\n", line)
	} else {
		fmt.Fprintln(o.w, textLine(&a))
	}
}

// textLine is one alert as a line: when, what, who, to what, and the verdict.
func textLine(a *alert.Alert) string {
	var b strings.Builder
	b.WriteString(a.UpdatedTime + " " + a.Type)
	if a.NamespaceName != "" || a.PodName != "" {
		b.WriteString(" " + a.NamespaceName + "/" + a.PodName + "/" + a.ContainerName)
	} else {
		b.WriteString(" host")
	}
	b.WriteString(" " + a.Operation)
	if a.Resource != "" {
		b.WriteString(" " + a.Resource)
	}
	if a.ProcessName != "" {
		fmt.Fprintf(&b, " by %s (pid %d)", a.ProcessName, a.HostPID)
	}
	if a.PolicyName != "" {
		b.WriteString(" policy=" + a.PolicyName)
	}
	if a.Severity != "" {
		b.WriteString(" severity=" + a.Severity)
	}
	if a.Action != "" {
		b.WriteString(" " + a.Action)
	}
	if a.Result != "" {
		b.WriteString(" → " + a.Result)
	}
	if a.Enforcer != "" {
		b.WriteString(" [" + a.Enforcer + "]")
	}
	if a.Type == alert.TypeSystemEvent && a.Message != "" {
		b.WriteString(": " + a.Message)
	}
	return b.String()
}
