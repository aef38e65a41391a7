package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/tracer/alert"
	"github.com/nri-armor/nri-armor/tracer/stream"
)

func publish(h *stream.Hub, a alert.Alert) {
	h.Publish(&a, append(a.AppendJSON(nil), '\n'))
}

var (
	blocked = alert.Alert{UpdatedTime: "2026-11-27T04:00:00Z", NamespaceName: "shop", PodName: "web-1", ContainerName: "nginx",
		Type: alert.TypeMatchedPolicy, Operation: alert.OpNetwork, Resource: "domain=AF_INET type=SOCK_RAW protocol=1",
		ProcessName: "/bin/ping", HostPID: 301, PolicyName: "shop-guard", Severity: "7", Action: "Block",
		Result: alert.ResultPermissionDenied, Enforcer: "CgroupBPF"}
	logged = alert.Alert{UpdatedTime: "2026-11-27T04:00:01Z", NamespaceName: "shop", PodName: "web-1", ContainerName: "nginx",
		Type: alert.TypeContainerLog, Operation: alert.OpFile, Resource: "/etc/hosts", ProcessName: "/bin/cat", HostPID: 302, Result: "Passed"}
	other = alert.Alert{UpdatedTime: "2026-11-27T04:00:02Z", NamespaceName: "bank", PodName: "db-0", ContainerName: "pg",
		Type: alert.TypeMatchedPolicy, Operation: alert.OpFile, Resource: "/etc/shadow", PolicyName: "bank-guard", Action: "Audit"}
)

// TestLogs: armorctl logs reads the stream with server-side filters, in
// text and JSON.
func TestLogs(t *testing.T) {
	hub := stream.NewHub(100, 100, 4, nil)
	srv := httptest.NewServer(hub)
	defer srv.Close()
	for _, a := range []alert.Alert{blocked, logged, other} {
		publish(hub, a)
	}

	out, errOut, code := armorctl(t, "logs", "--server", srv.URL, "--namespace", "shop", "--type", "alert")
	want := "2026-11-27T04:00:00Z MatchedPolicy shop/web-1/nginx Network domain=AF_INET type=SOCK_RAW protocol=1 by /bin/ping (pid 301) policy=shop-guard severity=7 Block → Permission denied [CgroupBPF]\n"
	if code != 0 || out != want {
		t.Fatalf("code %d, stderr %s, output\n%s\nwant\n%s", code, errOut, out, want)
	}
	out, _, code = armorctl(t, "logs", "--server", srv.URL, "--operation", "File", "-o", "json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("code %d, output %s", code, out)
	}
	var a alert.Alert
	if err := json.Unmarshal([]byte(lines[1]), &a); err != nil || a.PolicyName != "bank-guard" || a.NamespaceName != "bank" {
		t.Fatalf("json line %s: %v", lines[1], err)
	}
	if out, _, _ = armorctl(t, "logs", "--server", srv.URL, "--policy", "bank-guard", "--pod", "db-0", "--container", "pg"); !strings.Contains(out, "bank/db-0/pg") || strings.Count(out, "\n") != 1 {
		t.Fatalf("policy filter: %s", out)
	}
	if _, errOut, code = armorctl(t, "logs", "--server", srv.URL, "--type", "alerts"); code != 2 || !strings.Contains(errOut, "type must be alert, log or all") {
		t.Fatalf("bad --type: code %d, %s", code, errOut)
	}
	if _, errOut, code = armorctl(t, "logs", "--server", "http://127.0.0.1:1"); code != 1 || errOut == "" {
		t.Fatalf("unreachable server: code %d, %s", code, errOut)
	}
}

// TestLogsFollow: --follow keeps streaming what arrives after it started.
func TestLogsFollow(t *testing.T) {
	hub := stream.NewHub(10, 10, 4, nil)
	srv := httptest.NewServer(hub)
	defer srv.Close()
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		done <- run([]string{"logs", "--server", srv.URL, "--follow", "--type", "log"}, pw, io.Discard)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for hub.Clients() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	publish(hub, blocked) // an alert: filtered out
	publish(hub, logged)
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "2026-11-27T04:00:01Z ContainerLog shop/web-1/nginx File /etc/hosts by /bin/cat") {
		t.Fatalf("followed %q (%v)", line, err)
	}
	srv.CloseClientConnections()
	pr.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("armorctl logs --follow did not end when the server went away")
	}
}

// TestLogsSocketToken: --socket reads a stream served on a unix socket,
// and --token-file sends the file's token (white space around it left out)
// as a bearer token; without it armor-tracer's 401 is an error (exit 1).
// A token file without a token, or both --socket and --server, is a usage
// error.
func TestLogsSocketToken(t *testing.T) {
	hub := stream.NewHub(10, 10, 4, nil)
	publish(hub, blocked)
	sock := filepath.Join(t.TempDir(), "stream.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0ken" {
			http.Error(w, "a bearer token is required", http.StatusUnauthorized)
			return
		}
		hub.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("  t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := armorctl(t, "logs", "--socket", sock, "--token-file", token)
	if code != 0 || !strings.Contains(out, "shop/web-1/nginx Network") {
		t.Fatalf("with the token: code %d, stderr %s, output %s", code, errOut, out)
	}
	if _, errOut, code = armorctl(t, "logs", "--socket", sock); code != 1 || !strings.Contains(errOut, "401") || !strings.Contains(errOut, sock) {
		t.Fatalf("without the token: code %d, %s", code, errOut)
	}
	for _, args := range [][]string{
		{"--socket", sock, "--token-file", filepath.Join(dir, "missing")},
		{"--socket", sock, "--token-file", empty},
		{"--socket", sock, "--server", "http://127.0.0.1:9483"},
	} {
		if _, errOut, code = armorctl(t, append([]string{"logs"}, args...)...); code != 2 || errOut == "" {
			t.Errorf("%v: code %d, %s; want a usage error", args, code, errOut)
		}
	}
}
