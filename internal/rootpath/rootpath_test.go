package rootpath

import (
	"os"
	"path/filepath"
	"testing"
)

// image lays out a root as a merged-/usr image has it, plus links that try
// to leave it.
func image(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/lib", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"usr/bin/dash", "usr/bin/python3.11", "etc/hostname"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"bin":                "usr/bin",
		"lib":                "usr/lib",
		"usr/bin/sh":         "dash",
		"usr/bin/python3":    "python3.11",
		"usr/bin/escape":     "../../../../../../etc/hostname", // ".." stops at the root
		"usr/bin/absolute":   "/usr/bin/dash",                  // "/" is the root
		"usr/bin/hostonly":   "/../../proc/self/exe",           // exists on the host only
		"usr/bin/loop-a":     "loop-b",
		"usr/bin/loop-b":     "loop-a",
		"usr/bin/chain":      "/bin/sh",
		"usr/bin/dangling":   "nothere",
		"usr/bin/escape-dir": "../../..",
	}
	for name, to := range links {
		if err := os.Symlink(to, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestResolve(t *testing.T) {
	r := New(image(t), 0)
	for _, tc := range []struct{ path, want string }{
		{"/bin/sh", "/usr/bin/dash"},
		{"/bin", "/usr/bin"},
		{"/lib", "/usr/lib"},
		{"/usr/bin/python3", "/usr/bin/python3.11"},
		{"/usr/bin/escape", "/etc/hostname"},
		{"/usr/bin/absolute", "/usr/bin/dash"},
		{"/bin/chain", "/usr/bin/dash"},
		{"/usr/bin/escape-dir", ""}, // the root itself
		{"/usr/bin/escape-dir/etc/hostname", "/etc/hostname"},
		// No alias: resolves to itself, absent, loops, leaves the root.
		{"/usr/bin/dash", ""},
		{"/usr/bin", ""},
		{"/bin/nothere", ""},
		{"/usr/bin/dangling", ""},
		{"/usr/bin/loop-a", ""},
		{"/usr/bin/hostonly", ""},
		{"relative/path", ""},
	} {
		if got := r.Resolve(tc.path); got != tc.want {
			t.Errorf("Resolve(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
	if r.Skipped() != 0 {
		t.Errorf("Skipped = %d, want 0", r.Skipped())
	}
}

// TestResolveKeepsAnswers: a path resolved once keeps its answer though the
// link changes after (a container's links before its first instruction are
// the ones that count), and the bound stops new lookups.
func TestResolveKeepsAnswers(t *testing.T) {
	root := image(t)
	r := New(root, 2)
	if got := r.Resolve("/bin/sh"); got != "/usr/bin/dash" {
		t.Fatalf("Resolve(/bin/sh) = %q", got)
	}
	link := filepath.Join(root, "usr/bin/sh")
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("python3.11", link); err != nil {
		t.Fatal(err)
	}
	if got := r.Resolve("/bin/sh"); got != "/usr/bin/dash" {
		t.Errorf("Resolve(/bin/sh) after the link changed = %q, want the first answer /usr/bin/dash", got)
	}
	if got := r.Resolve("/usr/bin/python3"); got != "/usr/bin/python3.11" {
		t.Errorf("Resolve(/usr/bin/python3) = %q", got)
	}
	if got := r.Resolve("/lib"); got != "" || r.Skipped() != 1 {
		t.Errorf("past the bound: Resolve(/lib) = %q, Skipped = %d; want \"\" and 1", got, r.Skipped())
	}
}

// TestResolveHostRoot: "/" as the root (host policies).
func TestResolveHostRoot(t *testing.T) {
	root := image(t)
	r := New("/", 0)
	if got := r.Resolve(filepath.Join(root, "bin/sh")); got != filepath.Join(root, "usr/bin/dash") {
		t.Errorf("Resolve(%s/bin/sh) = %q", root, got)
	}
}
