package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nri-armor/nri-armor/tracer/alert"
)

// runLogs reads armor-tracer's stream: recent alerts and logs, or with
// --follow everything from now on, filtered on the server.
func runLogs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// armor-tracer's default streamAddress: reached on its node, or through
	// kubectl port-forward to its pod.
	server := fs.String("server", "http://127.0.0.1:9483", "armor-tracer's stream, as a URL (its streamAddress)")
	socket := fs.String("socket", "", "armor-tracer's stream on a unix socket (streamAddress unix:PATH) instead of --server")
	tokenFile := fs.String("token-file", "", "a file holding the bearer token armor-tracer asks for (its streamTokenFile)")
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
	client, base := http.DefaultClient, *server
	if *socket != "" {
		serverSet := false
		fs.Visit(func(f *flag.Flag) { serverSet = serverSet || f.Name == "server" })
		if serverSet {
			fmt.Fprintln(stderr, "armorctl logs: --socket and --server name two servers: give one")
			return 2
		}
		path := *socket
		client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}}
		base = "http://armor-tracer" // the host is not looked at
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	url := strings.TrimSuffix(base, "/") + alert.StreamPath + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "armorctl logs: %v\n", err)
		return 2
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "armorctl logs: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		where := url
		if *socket != "" {
			where = *socket
		}
		fmt.Fprintf(stderr, "armorctl logs: %s: %s: %s\n", where, resp.Status, strings.TrimSpace(string(b)))
		return 1
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var a alert.Alert
		if err := json.Unmarshal(line, &a); err != nil {
			fmt.Fprintf(stderr, "armorctl logs: unreadable line: %v\n", err)
			continue
		}
		if a.Type == "StreamDropped" {
			fmt.Fprintf(stderr, "armorctl logs: the server dropped %s messages: this client read too slowly\n", a.Data)
			continue
		}
		if *output == "json" {
			fmt.Fprintf(stdout, "%s\n", line)
		} else {
			fmt.Fprintln(stdout, textLine(&a))
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "armorctl logs: %v\n", err)
		return 1
	}
	return 0
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
