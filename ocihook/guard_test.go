package ocihook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// bundle writes a container's config.json with these annotations and
// returns the OCI state the runtime would pass the hook.
func bundle(t *testing.T, id string, ann map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	data, err := json.Marshal(map[string]any{"ociVersion": "1.2.0", "annotations": ann})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{"ociVersion":"1.2.0","id":%q,"status":"creating","pid":4242,"bundle":%q}`, id, dir)
}

func inNamespace(ns string) map[string]string {
	return map[string]string{AnnotationSandboxNamespace: ns, AnnotationContainerType: "container"}
}

// TestGuardDaemonDown: with no daemon, the guard starts containers of the
// trusted namespaces (bootstrap list, trust file) only, and says why it
// refuses the others.
func TestGuardDaemonDown(t *testing.T) {
	dir := t.TempDir()
	cfg := GuardConfig{
		Socket:    filepath.Join(dir, "gate.sock"), // nobody listens
		Timeout:   time.Second,
		TrustFile: filepath.Join(dir, TrustFileName),
		Bootstrap: []string{"nri-armor"},
	}
	guard := func(ann map[string]string) error {
		return Guard(strings.NewReader(bundle(t, "ctr-1", ann)), cfg)
	}
	// No trust file yet (the daemon never ran): the bootstrap list alone.
	if err := guard(inNamespace("nri-armor")); err != nil {
		t.Errorf("bootstrap namespace, no trust file: %v", err)
	}
	err := guard(inNamespace("team-a"))
	for _, want := range []string{`container ctr-1 of namespace "team-a"`, "nri-armor is not running", `does not trust namespace "team-a"`, cfg.TrustFile, "refusing to start it"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("untrusted namespace: %v; want it to say %q", err, want)
		}
	}

	if err := WriteTrust(cfg.TrustFile, []string{"team-a"}); err != nil {
		t.Fatal(err)
	}
	if err := guard(inNamespace("team-a")); err != nil {
		t.Errorf("namespace in the trust file: %v", err)
	}
	if err := guard(inNamespace("nri-armor")); err != nil {
		t.Errorf("bootstrap namespace beside a trust file without it: %v", err)
	}
	if err := guard(inNamespace("team-b")); err == nil || !strings.Contains(err.Error(), `does not trust namespace "team-b"`) {
		t.Errorf("namespace not in the trust file: %v", err)
	}

	err = guard(map[string]string{AnnotationContainerType: "container"})
	if err == nil || !strings.Contains(err.Error(), "names no pod namespace (annotation "+AnnotationSandboxNamespace+")") || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("no namespace annotation: %v", err)
	}
	// The pause container is not the pod author's: it passes.
	if err := guard(map[string]string{AnnotationContainerType: "sandbox", AnnotationSandboxNamespace: "team-b"}); err != nil {
		t.Errorf("sandbox container: %v", err)
	}

	// CRI-O: the namespace is read from the container name CRI-O makes,
	// never from annotations a pod can set (containerd's keys, which CRI-O
	// would copy from the pod's annotations).
	crio := func(name, typ string, extra map[string]string) map[string]string {
		ann := map[string]string{AnnotationContainerManager: ContainerManagerCRIO, AnnotationCRIOName: name, AnnotationCRIOType: typ}
		for k, v := range extra {
			ann[k] = v
		}
		return ann
	}
	if err := guard(crio("k8s_main_pod-1_team-a_uid-1_0", "container", nil)); err != nil {
		t.Errorf("CRI-O container in the trust file's namespace: %v", err)
	}
	forged := map[string]string{AnnotationSandboxNamespace: "nri-armor", AnnotationContainerType: "sandbox"}
	if err := guard(crio("k8s_main_pod-1_team-b_uid-1_0", "container", forged)); err == nil || !strings.Contains(err.Error(), `does not trust namespace "team-b"`) {
		t.Errorf("CRI-O container of team-b with containerd's annotations forged: %v; want team-b refused", err)
	}
	for _, name := range []string{"", "main", "k8s_main_pod_with_underscore_team-a_uid_0", "x8s_main_pod-1_team-a_uid-1_0"} {
		if err := guard(crio(name, "container", nil)); err == nil || !strings.Contains(err.Error(), "names no pod namespace (annotation "+AnnotationCRIOName+")") {
			t.Errorf("CRI-O container named %q: %v; want it refused", name, err)
		}
	}
	if err := guard(crio("k8s_POD_pod-1_team-b_uid-1_0", "sandbox", nil)); err != nil {
		t.Errorf("CRI-O sandbox container: %v", err)
	}
	// Told its runtime (-runtime, as config/ does), the guard reads that
	// runtime's keys only: on containerd a pod whose annotations reach the
	// spec (pod_annotations) cannot pass for CRI-O's, nor the reverse.
	cfg.Runtime = RuntimeContainerd
	if err := guard(crio("k8s_main_pod-1_team-a_uid-1_0", "container", inNamespace("team-b"))); err == nil || !strings.Contains(err.Error(), `does not trust namespace "team-b"`) {
		t.Errorf("containerd guard, a container claiming CRI-O's team-a: %v; want team-b (containerd's key) refused", err)
	}
	if err := guard(crio("k8s_POD_pod-1_team-b_uid-1_0", "sandbox", inNamespace("team-b"))); err == nil {
		t.Errorf("containerd guard, a container claiming to be CRI-O's sandbox: started")
	}
	cfg.Runtime = RuntimeCRIO
	if err := guard(inNamespace("team-a")); err == nil || !strings.Contains(err.Error(), "names no pod namespace (annotation "+AnnotationCRIOName+")") {
		t.Errorf("CRI-O guard, containerd's keys only: %v; want refused", err)
	}
	if err := guard(map[string]string{AnnotationCRIOName: "k8s_main_pod-1_team-a_uid-1_0", AnnotationCRIOType: "container"}); err != nil {
		t.Errorf("CRI-O guard, CRI-O's keys without io.container.manager: %v", err)
	}
	cfg.Runtime = ""

	// A trust file that does not parse refuses every namespace it would
	// be asked about, naming the file; the bootstrap list still works.
	for _, bad := range []string{`{"weakenNamespaces": "team-a"}`, `not json`, `{"weakenNamespaces": ["team-a", ""]}`} {
		if err := os.WriteFile(cfg.TrustFile, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		err := guard(inNamespace("team-a"))
		if err == nil || !strings.Contains(err.Error(), "trust file "+cfg.TrustFile) || !strings.Contains(err.Error(), "refusing to start it") {
			t.Errorf("malformed trust file %q: %v; want a refusal naming the file", bad, err)
		}
		if err := guard(inNamespace("nri-armor")); err != nil {
			t.Errorf("bootstrap namespace beside malformed trust file %q: %v", bad, err)
		}
	}

	if err := Guard(strings.NewReader(`{"id":"c","pid":1,"bundle":"`+dir+`/none"}`), cfg); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("bundle without config.json: %v", err)
	}
}

// TestGuardDaemonUp: when the daemon answers, it decides, and it is told
// the container's namespace.
func TestGuardDaemonUp(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "gate.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reqs := make(chan Request, 10)
	go func() {
		_ = Serve(ctx, sock, func(_ context.Context, req Request) error {
			reqs <- req
			if req.Namespace == "team-a" {
				return errors.New("namespace team-a may not")
			}
			return nil
		})
	}()
	waitSocket(t, sock)
	<-reqs
	// The trust file would let team-a start: the daemon's answer wins.
	cfg := GuardConfig{Socket: sock, Timeout: time.Second, TrustFile: filepath.Join(dir, TrustFileName), Bootstrap: []string{"team-a"}}
	err := Guard(strings.NewReader(bundle(t, "ctr-1", inNamespace("team-a"))), cfg)
	if err == nil || !strings.Contains(err.Error(), "container ctr-1: namespace team-a may not") {
		t.Errorf("daemon refuses: %v", err)
	}
	if got := <-reqs; !reflect.DeepEqual(got, Request{ContainerID: "ctr-1", PID: 4242, Guard: true, Namespace: "team-a", SpecRead: true, HooksRead: true}) {
		t.Errorf("daemon asked %+v", got)
	}
	if err := Guard(strings.NewReader(bundle(t, "ctr-2", inNamespace("team-b"))), cfg); err != nil {
		t.Errorf("daemon accepts: %v", err)
	}
}

func TestWriteTrust(t *testing.T) {
	path := filepath.Join(t.TempDir(), TrustFileName)
	if err := WriteTrust(path, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := readTrust(path); err != nil || len(got) != 0 {
		t.Errorf("no namespaces: %v, %v", got, err)
	}
	if err := WriteTrust(path, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if got, err := readTrust(path); err != nil || strings.Join(got, ",") != "a,b" {
		t.Errorf("a, b: %v, %v", got, err)
	}
	if err := WriteTrust(filepath.Join(path, "sub", "x"), nil); err == nil || !strings.Contains(err.Error(), "trust file") {
		t.Errorf("unwritable: %v", err)
	}
}
