package testenv

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// RepoRoot returns the directory holding go.mod, walking up from the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// CorpusVar names the variable that points at the policy conformance corpus.
const CorpusVar = "NRI_ARMOR_CORPUS"

// Corpus returns the policy-templates corpus directory: $NRI_ARMOR_CORPUS, by
// default ../shared/testdata/policy-templates beside the checkout. Where it is
// absent the test fails when CI is set, and otherwise skips saying why.
func Corpus(t testing.TB) string {
	t.Helper()
	dir, err := CorpusDir(t)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("policy corpus not found at %s (set %s): %v", dir, CorpusVar, err)
		}
		t.Skipf("policy corpus not found at %s (set %s to its path); CI fails here", dir, CorpusVar)
	}
	return dir
}

// CorpusDir returns the corpus directory and whether it is usable, without
// failing or skipping: for tests that only take seeds from it.
func CorpusDir(t testing.TB) (string, error) {
	t.Helper()
	dir := os.Getenv(CorpusVar)
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "testdata", "policy-templates")
	}
	_, err := os.Stat(filepath.Join(dir, "expectations.tsv"))
	return dir, err
}

// AllowSkipPrivilegedVar names the variable that lets privileged tests skip
// where they cannot run (not root). CI sets none: there they must run.
const AllowSkipPrivilegedVar = "NRI_ARMOR_ALLOW_SKIP_PRIVILEGED"

// AllowSkipAppArmorVar names the variable that lets the tests that need
// apparmor_parser (Debian package apparmor) skip where it is missing. CI
// sets none: there they must run.
const AllowSkipAppArmorVar = "NRI_ARMOR_ALLOW_SKIP_APPARMOR"

// RequireTool fails the test when err says a tool it needs is missing,
// or skips it when allowVar=1 says so explicitly.
func RequireTool(t testing.TB, err error, allowVar string) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv(allowVar) == "1" {
		t.Skipf("%v; skipped because %s=1", err, allowVar)
	}
	t.Fatalf("%v: hack/install-deps.sh installs it (set %s=1 to skip explicitly)", err, allowVar)
}

// RequireRoot fails the test unless it runs as root, or skips it when
// NRI_ARMOR_ALLOW_SKIP_PRIVILEGED=1 says so explicitly.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(AllowSkipPrivilegedVar) == "1" {
		t.Skipf("needs root; skipped because %s=1", AllowSkipPrivilegedVar)
	}
	t.Fatalf("needs root (set %s=1 to skip it explicitly)", AllowSkipPrivilegedVar)
}

// WriteFile writes content to dir/name, creating folders, or fails the test.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// WaitFor polls cond every 20 ms for up to 5 s, failing the test with what
// it waited for if cond never holds.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 250; i++ {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// FreeAddr is a free TCP port on 127.0.0.1, for a server a test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
