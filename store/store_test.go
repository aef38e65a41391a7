package store_test

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/store"
	"github.com/sirupsen/logrus"
)

// deliveryTimeout is how long a change may take to be delivered.
const deliveryTimeout = 2 * time.Second

// ksp is a valid policy named name; action varies its content (and digest).
func ksp(name, action string) string {
	return fmt.Sprintf(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: %s
  namespace: shop
spec:
  selector:
    matchLabels:
      app: web
  process:
    matchPaths:
    - path: /usr/bin/apt
  action: %s
`, name, action)
}

// badKSP has an unknown field on line 13.
func badKSP(name string) string {
	return fmt.Sprintf(`apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: %s
  namespace: shop
spec:
  selector:
    matchLabels:
      app: web
  file:
    matchDirectories:
    - dir: /etc/
      recurive: true
  action: Block
`, name)
}

func docs(d ...string) string { return strings.Join(d, "---\n") }

func write(t *testing.T, path, content string) {
	t.Helper()
	testenv.WriteFile(t, filepath.Dir(path), filepath.Base(path), content)
}

// writeAtomic writes as editors do: a temporary file, then a rename over.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp~"
	write(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type rejection struct {
	file string
	err  error
}

type harness struct {
	t        *testing.T
	s        *store.Store
	sub      <-chan *policy.Catalog
	rejected chan rejection
	changes  atomic.Int32
}

type logWriter struct {
	t  *testing.T
	mu sync.Mutex
	on bool
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.on {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

func newHarness(t *testing.T, dirs ...string) *harness {
	t.Helper()
	h := &harness{t: t, rejected: make(chan rejection, 100)}
	lw := &logWriter{t: t, on: true}
	log := logrus.New()
	log.SetOutput(lw)
	log.SetLevel(logrus.DebugLevel)
	s, err := store.New(dirs, store.Options{
		Logger:   log,
		Rejected: func(file string, err error) { h.rejected <- rejection{file, err} },
		OnChange: func(*policy.Catalog) { h.changes.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	h.sub = s.Subscribe()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		lw.mu.Lock()
		lw.on = false
		lw.mu.Unlock()
	})
	return h
}

// refs lists a catalog's policies as Ref@file, sorted.
func refs(c *policy.Catalog) []string {
	var out []string
	for _, p := range c.Policies() {
		out = append(out, p.Metadata.Name+"@"+filepath.Base(p.Source.File))
	}
	slices.Sort(out)
	return out
}

func digestOf(c *policy.Catalog, name string) string {
	for _, p := range c.Policies() {
		if p.Metadata.Name == name {
			return p.Digest
		}
	}
	return ""
}

// waitFor reads delivered catalogs until want says yes; the store's current
// catalog must then be the one delivered.
func (h *harness) waitFor(what string, want func(*policy.Catalog) bool) *policy.Catalog {
	h.t.Helper()
	timeout := time.After(deliveryTimeout)
	for {
		select {
		case c, ok := <-h.sub:
			if !ok {
				h.t.Fatalf("waiting for %s: subscription closed", what)
			}
			if want(c) {
				return c
			}
		case <-timeout:
			h.t.Fatalf("waiting for %s: not delivered within %v; catalog in force: %v", what, deliveryTimeout, refs(h.s.Catalog()))
		}
	}
}

func (h *harness) waitRefs(want ...string) *policy.Catalog {
	h.t.Helper()
	slices.Sort(want)
	return h.waitFor(fmt.Sprint(want), func(c *policy.Catalog) bool { return slices.Equal(refs(c), want) })
}

func (h *harness) waitRejected() rejection {
	h.t.Helper()
	select {
	case r := <-h.rejected:
		return r
	case <-time.After(deliveryTimeout):
		h.t.Fatalf("no rejection within %v", deliveryTimeout)
	}
	return rejection{}
}

func (h *harness) noRejection() {
	h.t.Helper()
	select {
	case r := <-h.rejected:
		h.t.Fatalf("unexpected rejection of %s: %v", r.file, r.err)
	default:
	}
}

// settle makes the store reload (as on SIGHUP), so that every event before
// it has been handled.
func (h *harness) settle() {
	h.t.Helper()
	if err := h.s.Reload(); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) file(path string) store.FileState {
	h.t.Helper()
	for _, f := range h.s.Files() {
		if f.Path == path {
			return f
		}
	}
	h.t.Fatalf("no file %s in %+v", path, h.s.Files())
	return store.FileState{}
}

func TestInitialLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), ksp("p1", "Block"))
	write(t, filepath.Join(dir, "sub", "b.yml"), docs(ksp("p2", "Block"), ksp("p3", "Audit")))
	write(t, filepath.Join(dir, "sub", "deep", "net.yaml"), "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: x\n")
	write(t, filepath.Join(dir, "bad.yaml"), badKSP("p4"))
	write(t, filepath.Join(dir, "notes.txt"), ksp("p5", "Block"))
	write(t, filepath.Join(dir, ".a.yaml.swp.yaml"), ksp("p6", "Block"))
	write(t, filepath.Join(dir, "..2026_01_01", "c.yaml"), ksp("p7", "Block"))
	h := newHarness(t, dir)

	if got, want := refs(h.s.Catalog()), []string{"p1@a.yaml", "p2@b.yml", "p3@b.yml"}; !slices.Equal(got, want) {
		t.Fatalf("catalog %v, want %v", got, want)
	}
	r := h.waitRejected()
	if r.file != filepath.Join(dir, "bad.yaml") || !strings.Contains(r.err.Error(), "bad.yaml:13: spec.file.matchDirectories[0].recurive: unknown field") {
		t.Fatalf("rejection %s: %v", r.file, r.err)
	}
	h.noRejection()

	type row struct {
		name     string
		status   policy.FileStatus
		policies int
		err      bool
	}
	var got []row
	for _, f := range h.s.Files() {
		rel, _ := filepath.Rel(dir, f.Path)
		got = append(got, row{rel, f.Status, f.Policies, f.Error != ""})
	}
	want := []row{
		{"a.yaml", policy.FileValid, 1, false},
		{"bad.yaml", policy.FileInvalid, 0, true},
		{"sub/b.yml", policy.FileValid, 2, false},
		{"sub/deep/net.yaml", policy.FileSkipped, 0, false},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Files() = %+v, want %+v", got, want)
	}
}

// TestRejectedPolicyNamed: a pod that names a policy whose file was
// rejected (and no last good version keeps it in force) is told why, with
// the file, line and field; a last good version in force wins.
func TestRejectedPolicyNamed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "bad.yaml"), badKSP("p4"))
	h := newHarness(t, dir)
	h.waitRejected()
	resolve := func() error {
		pod := policy.Pod{Namespace: "shop", Name: "web-0", Annotations: map[string]string{policy.AnnotationPolicies: "p4"}}
		_, err := h.s.Catalog().Resolve(pod, "app", policy.DefaultDefaults())
		return err
	}
	err := resolve()
	if err == nil || !strings.Contains(err.Error(), "policy KubeArmorPolicy/shop/p4 is not in force: its file was rejected: "+filepath.Join(dir, "bad.yaml")+":13: spec.file.matchDirectories[0].recurive: unknown field") {
		t.Fatalf("resolve: %v", err)
	}
	// Fixed: in force.
	writeAtomic(t, filepath.Join(dir, "bad.yaml"), ksp("p4", "Block"))
	h.waitRefs("p4@bad.yaml")
	if err := resolve(); err != nil {
		t.Fatalf("fixed: %v", err)
	}
	// Broken again: its last good version stays in force.
	writeAtomic(t, filepath.Join(dir, "bad.yaml"), badKSP("p4"))
	h.waitRejected()
	if err := resolve(); err != nil {
		t.Fatalf("last good version: %v", err)
	}
}

func TestNewFailsOnMissingDirectory(t *testing.T) {
	t.Parallel()
	if _, err := store.New([]string{filepath.Join(t.TempDir(), "nope")}, store.Options{}); err == nil {
		t.Fatal("New on a missing directory: no error")
	}
}

func TestEditChangesCatalog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	write(t, a, ksp("p1", "Block"))
	h := newHarness(t, dir)
	old := digestOf(h.s.Catalog(), "p1")

	write(t, a, docs(ksp("p1", "Audit"), ksp("p2", "Block")))
	c := h.waitRefs("p1@a.yaml", "p2@a.yaml")
	if digestOf(c, "p1") == old {
		t.Fatal("p1 kept its old content")
	}
	if h.s.Catalog() != c {
		t.Fatal("Catalog() is not the catalog last delivered")
	}
	h.noRejection()
}

func TestBadEditKeepsLastGood(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	write(t, a, ksp("p1", "Block"))
	h := newHarness(t, dir)
	good := h.s.Catalog()

	writeAtomic(t, a, badKSP("p1"))
	r := h.waitRejected()
	if r.file != a {
		t.Fatalf("rejected %s, want %s", r.file, a)
	}
	if want := a + ":13: spec.file.matchDirectories[0].recurive: unknown field"; r.err.Error() != want {
		t.Fatalf("error %q, want %q", r.err, want)
	}
	var issue *policy.Issue
	if !errors.As(r.err, &issue) || issue.Line != 13 || issue.File != a {
		t.Fatalf("errors.As(*policy.Issue): %+v", issue)
	}
	// Other changes and reloads neither report it again nor drop p1.
	write(t, filepath.Join(dir, "b.yaml"), ksp("p2", "Block"))
	h.waitRefs("p1@a.yaml", "p2@b.yaml")
	h.settle()
	h.noRejection()
	if d := digestOf(h.s.Catalog(), "p1"); d != digestOf(good, "p1") {
		t.Fatal("p1 is not its last good version")
	}
	st := h.file(a)
	if st.Status != policy.FileInvalid || st.Policies != 1 || !strings.Contains(st.Error, "a.yaml:13:") {
		t.Fatalf("FileState %+v", st)
	}

	// Fixed: the new version takes effect.
	writeAtomic(t, a, ksp("p1", "Audit"))
	h.waitFor("p1 Audit", func(c *policy.Catalog) bool {
		return digestOf(c, "p1") != "" && digestOf(c, "p1") != digestOf(good, "p1")
	})
	if st := h.file(a); st.Status != policy.FileValid || st.Policies != 1 || st.Error != "" {
		t.Fatalf("FileState after the fix %+v", st)
	}
	h.noRejection()
}

func TestDeleteRemovesPolicies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), ksp("p1", "Block"))
	write(t, filepath.Join(dir, "sub", "b.yaml"), ksp("p2", "Block"))
	h := newHarness(t, dir)

	if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	h.waitRefs("p2@b.yaml")
	if err := os.RemoveAll(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	h.waitRefs()
	if fs := h.s.Files(); len(fs) != 0 {
		t.Fatalf("Files() after deleting everything: %+v", fs)
	}
	// A directory created again under a removed one's name is watched again.
	write(t, filepath.Join(dir, "sub", "c.yaml"), ksp("p3", "Block"))
	h.waitRefs("p3@c.yaml")
}

func TestNewSubdirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), ksp("p1", "Block"))
	h := newHarness(t, dir)

	// Created and filled at once: the file may be written before the new
	// directories are watched.
	write(t, filepath.Join(dir, "new", "deeper", "b.yaml"), ksp("p2", "Block"))
	h.waitRefs("p1@a.yaml", "p2@b.yaml")
	// Later writes in the new directories are seen too.
	write(t, filepath.Join(dir, "new", "deeper", "c.yaml"), ksp("p3", "Block"))
	h.waitRefs("p1@a.yaml", "p2@b.yaml", "p3@c.yaml")
}

func TestDuplicateAcrossFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	// z.yaml sorts after a.yaml, but a.yaml's p1 is in force first: the later
	// change is the one rejected, whatever the names.
	z := filepath.Join(dir, "z.yaml")
	write(t, z, ksp("p1", "Block"))
	write(t, b, ksp("p2", "Block"))
	h := newHarness(t, dir)

	writeAtomic(t, a, docs(ksp("p3", "Block"), ksp("p1", "Audit")))
	r := h.waitRejected()
	if r.file != a || !strings.Contains(r.err.Error(), a+":15: metadata.name: KubeArmorPolicy/shop/p1 is already defined at "+z+":1") {
		t.Fatalf("rejection %s: %v", r.file, r.err)
	}
	h.settle()
	if got, want := refs(h.s.Catalog()), []string{"p1@z.yaml", "p2@b.yaml"}; !slices.Equal(got, want) {
		t.Fatalf("catalog %v, want %v", got, want)
	}
	if st := h.file(a); st.Status != policy.FileInvalid || st.Policies != 0 {
		t.Fatalf("FileState %+v", st)
	}

	// A file in force that redefines another's policy keeps its last good
	// version.
	writeAtomic(t, b, ksp("p1", "Block"))
	if r := h.waitRejected(); r.file != b {
		t.Fatalf("rejected %s, want %s", r.file, b)
	}
	h.settle()
	if got, want := refs(h.s.Catalog()), []string{"p1@z.yaml", "p2@b.yaml"}; !slices.Equal(got, want) {
		t.Fatalf("catalog %v, want %v", got, want)
	}

	// Once z.yaml gives p1 up, the pending versions of a.yaml and b.yaml are
	// accepted in load order: a.yaml gets p1, b.yaml stays rejected.
	if err := os.Remove(z); err != nil {
		t.Fatal(err)
	}
	h.waitRefs("p1@a.yaml", "p3@a.yaml", "p2@b.yaml")
	if r := h.waitRejected(); r.file != b || !strings.Contains(r.err.Error(), "already defined at "+a+":15") {
		t.Fatalf("rejection %s: %v", r.file, r.err)
	}
	h.noRejection()
}

func TestRenameOver(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	write(t, a, ksp("p1", "Block"))
	h := newHarness(t, dir)

	writeAtomic(t, a, ksp("p2", "Block"))
	h.waitRefs("p2@a.yaml")
	// A hidden temporary .yaml file (as some editors name them) is ignored.
	tmp := filepath.Join(dir, ".a.yaml.12345.yaml")
	write(t, tmp, ksp("p3", "Block"))
	if err := os.Rename(tmp, a); err != nil {
		t.Fatal(err)
	}
	h.waitRefs("p3@a.yaml")
	// Renaming a file to another name moves its policies.
	if err := os.Rename(a, filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	h.waitRefs("p3@b.yaml")
	h.noRejection()
}

func TestBurstIsOneReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	write(t, a, ksp("p0", "Block"))
	h := newHarness(t, dir)

	// Ten versions written back to back: the store sees the last one, and
	// not ten catalogs.
	for i := 1; i <= 10; i++ {
		writeAtomic(t, a, ksp(fmt.Sprintf("p%d", i), "Block"))
	}
	h.waitRefs("p10@a.yaml")
	h.settle()
	if n := h.changes.Load(); n > 3 {
		t.Fatalf("%d catalogs for one burst", n)
	}
}

func TestCloseStopsDelivery(t *testing.T) {
	// Not parallel: it counts goroutines.
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	write(t, a, ksp("p1", "Block"))
	var changes atomic.Int32
	s, err := store.New([]string{dir}, store.Options{
		Logger:   logrus.New(),
		OnChange: func(*policy.Catalog) { changes.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	sub := s.Subscribe()
	write(t, a, ksp("p2", "Block"))
	select {
	case <-sub:
	case <-time.After(deliveryTimeout):
		t.Fatal("no delivery before Close")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	n := changes.Load()
	// The subscription is closed (a catalog still buffered may come first).
	timeout := time.After(deliveryTimeout)
	for open := true; open; {
		select {
		case _, open = <-sub:
		case <-timeout:
			t.Fatal("subscription not closed by Close")
		}
	}
	if _, ok := <-s.Subscribe(); ok {
		t.Fatal("Subscribe after Close: channel open")
	}
	if err := s.Reload(); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Reload after Close: %v", err)
	}

	// The store's goroutines are gone ...
	deadline := time.Now().Add(deliveryTimeout)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	// ... and a change is not delivered: waiting many debounce periods, there
	// is no channel to wait on.
	write(t, a, ksp("p3", "Block"))
	time.Sleep(5 * store.DefaultDebounce)
	if changes.Load() != n {
		t.Fatal("OnChange called after Close")
	}
	if got := refs(s.Catalog()); !slices.Equal(got, []string{"p2@a.yaml"}) {
		t.Fatalf("catalog after Close %v", got)
	}
}

// TestConfigMapVolume updates files as the kubelet does in a ConfigMap
// volume: each version in a hidden timestamped directory, the files
// symlinked through ..data, and ..data swapped by a rename.
func TestConfigMapVolume(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "link") // the configured directory is a symlink too
	vol := filepath.Join(root, "volume")
	symlink := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(vol, "..2026_01_01", "a.yaml"), ksp("p1", "Block"))
	symlink("..2026_01_01", filepath.Join(vol, "..data"))
	symlink("..data/a.yaml", filepath.Join(vol, "a.yaml"))
	symlink(vol, dir)
	h := newHarness(t, dir)
	if got, want := refs(h.s.Catalog()), []string{"p1@a.yaml"}; !slices.Equal(got, want) {
		t.Fatalf("catalog %v, want %v", got, want)
	}
	if p := h.s.Catalog().Policies()[0]; p.Source.File != filepath.Join(dir, "a.yaml") {
		t.Fatalf("source %s", p.Source.File)
	}

	write(t, filepath.Join(vol, "..2026_01_02", "a.yaml"), ksp("p2", "Block"))
	symlink("..2026_01_02", filepath.Join(vol, "..data_tmp"))
	if err := os.Rename(filepath.Join(vol, "..data_tmp"), filepath.Join(vol, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(vol, "..2026_01_01")); err != nil {
		t.Fatal(err)
	}
	h.waitRefs("p2@a.yaml")
	h.noRejection()
}

func TestReloadIsSynchronous(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := newHarness(t, dir)
	if h.s.Catalog().Len() != 0 {
		t.Fatal("empty directory, non-empty catalog")
	}
	write(t, filepath.Join(dir, "a.yaml"), ksp("p1", "Block"))
	h.settle()
	if got, want := refs(h.s.Catalog()), []string{"p1@a.yaml"}; !slices.Equal(got, want) {
		t.Fatalf("catalog after Reload %v, want %v", got, want)
	}
}

// The API server's documents (UpdateDocuments) join the files' policies in
// one catalog, follow create, update and delete, keep their last good
// version when an update is invalid, and lose to a file defining the same
// policy; a change of one leaves the others in force though the store no
// longer holds their contents.
func TestDocuments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "f.yaml"), ksp("file", "Block"))
	h := newHarness(t, dir)
	set := func(put map[string][]byte, removed ...string) {
		t.Helper()
		if err := h.s.UpdateDocuments("kubernetes", put, removed, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	const api, other = "kube-apiserver:KubeArmorPolicy/shop/api", "kube-apiserver:KubeArmorPolicy/shop/other"
	set(map[string][]byte{api: []byte(ksp("api", "Block")), other: []byte(ksp("other", "Block"))})
	c := h.waitRefs("api@api", "file@f.yaml", "other@other")
	before, otherDigest := digestOf(c, "api"), digestOf(c, "other")

	set(map[string][]byte{api: []byte(ksp("api", "Audit"))})
	c = h.waitFor("the update", func(c *policy.Catalog) bool { return digestOf(c, "api") != before })
	updated := digestOf(c, "api")
	if got := digestOf(c, "other"); got != otherDigest {
		t.Fatalf("another document's policy changed with the update: digest %s, was %s", got, otherDigest)
	}

	set(map[string][]byte{api: []byte(badKSP("api"))})
	if r := h.waitRejected(); r.file != api || !strings.Contains(r.err.Error(), api+":13: spec.file.matchDirectories[0].recurive: unknown field") {
		t.Fatalf("rejection %s: %v", r.file, r.err)
	}
	if got := digestOf(h.s.Catalog(), "api"); got != updated {
		t.Fatalf("after an invalid update the policy in force has digest %s, want the last good %s", got, updated)
	}
	if st := h.file(api); st.Status != policy.FileInvalid || st.Policies != 1 {
		t.Fatalf("FileState %+v", st)
	}

	const dup = "kube-apiserver:KubeArmorPolicy/shop/file"
	set(map[string][]byte{dup: []byte(ksp("file", "Audit"))})
	if r := h.waitRejected(); r.file != dup || !strings.Contains(r.err.Error(), "is already defined at "+filepath.Join(dir, "f.yaml")) {
		t.Fatalf("rejection %s: %v", r.file, r.err)
	}
	if got, want := refs(h.s.Catalog()), []string{"api@api", "file@f.yaml", "other@other"}; !slices.Equal(got, want) {
		t.Fatalf("catalog %v after the duplicate, want %v", got, want)
	}

	set(nil, api, dup)
	h.waitRefs("file@f.yaml", "other@other")
	set(nil, other)
	h.settle()
	if got, want := refs(h.s.Catalog()), []string{"file@f.yaml"}; !slices.Equal(got, want) {
		t.Fatalf("catalog %v, want %v", got, want)
	}
}

// Each catalog says when the change behind it was first seen (Changed):
// the file's event, after the write; a document's own time; and a catalog
// its subscriber did not read hands its earlier time to the next one.
func TestCatalogChanged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := newHarness(t, dir)
	if c := h.s.Catalog(); !c.Changed().IsZero() {
		t.Fatalf("the first catalog has a change time %v", c.Changed())
	}
	wrote := time.Now()
	write(t, filepath.Join(dir, "a.yaml"), ksp("p1", "Block"))
	c := h.waitRefs("p1@a.yaml")
	if ch := c.Changed(); ch.Before(wrote) || ch.After(time.Now()) {
		t.Fatalf("file change seen at %v; written at %v", ch, wrote)
	}

	// Two document changes, the subscriber reading neither until both are in.
	t1 := time.Now().Add(-time.Second)
	if err := h.s.UpdateDocuments("kubernetes", map[string][]byte{"kubernetes:KubeArmorPolicy/x/d1": []byte(ksp("d1", "Block"))}, nil, t1); err != nil {
		t.Fatal(err)
	}
	if err := h.s.UpdateDocuments("kubernetes", map[string][]byte{"kubernetes:KubeArmorPolicy/x/d1": []byte(ksp("d1", "Audit"))}, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case c = <-h.sub:
	case <-time.After(5 * time.Second):
		t.Fatal("no catalog")
	}
	if !c.Changed().Equal(t1) {
		t.Fatalf("the catalog after two unread changes: changed %v, want the first's %v", c.Changed(), t1)
	}
}

// UpdateDocuments loads only the documents it is given (and the versions
// refused for a conflict): over a random run of puts (valid, invalid, a
// name another document or a file has in force) and removals, what it
// puts in force is what a full reload of the same files and documents
// keeps, and the catalog is what NewCatalog makes of it.
func TestDocumentsIncremental(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "f.yaml"), ksp("p0", "Block"))
	log := logrus.New()
	log.SetOutput(io.Discard)
	s, err := store.New([]string{dir}, store.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	state := func() string {
		var out []string
		for _, p := range s.Catalog().Policies() {
			out = append(out, p.Ref()+"@"+p.Source.File+"#"+p.Digest[:8])
		}
		slices.Sort(out)
		for _, f := range s.Files() {
			out = append(out, fmt.Sprintf("%s:%s:%d", f.Path, f.Status, f.Policies))
		}
		return strings.Join(out, " ")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		put := map[string][]byte{}
		var removed []string
		for range 1 + rng.IntN(3) {
			doc := fmt.Sprintf("kubernetes:KubeArmorPolicy/shop/d%d", rng.IntN(12))
			switch rng.IntN(6) {
			case 0:
				removed = append(removed, doc)
				delete(put, doc)
			case 1:
				put[doc] = []byte(badKSP(fmt.Sprint("p", rng.IntN(5))))
			default: // p0 is the file's: a conflict
				put[doc] = []byte(ksp(fmt.Sprint("p", rng.IntN(5)), []string{"Block", "Audit"}[rng.IntN(2)]))
			}
		}
		if err := s.UpdateDocuments("kubernetes", put, removed, time.Time{}); err != nil {
			t.Fatal(err)
		}
		got := state()
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
		if want := state(); got != want {
			t.Fatalf("step %d (put %v, removed %v):\nincremental: %s\nfull reload: %s", i, slices.Sorted(maps.Keys(put)), removed, got, want)
		}
		want, err := policy.NewCatalog(s.Catalog().Policies())
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if !slices.Equal(refs(want), refs(s.Catalog())) {
			t.Fatalf("step %d: catalog %v, NewCatalog of its policies %v", i, refs(s.Catalog()), refs(want))
		}
	}
}
