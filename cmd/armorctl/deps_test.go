package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
)

// TestDeps: armorctl reads armor-tracer's alerts through tracer/alert
// alone, which was split out of the tracer so that armorctl does not link
// the pipeline's dependencies: no Prometheus, no fsnotify.
func TestDeps(t *testing.T) {
	goCmd, err := exec.LookPath("go") // go test puts its GOROOT/bin first on PATH
	if err != nil {
		t.Fatalf("no go command: %v", err)
	}
	cmd := exec.Command(goCmd, "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./cmd/armorctl")
	cmd.Dir = testenv.RepoRoot(t)
	out, err := cmd.Output()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		t.Fatalf("go list -deps ./cmd/armorctl: %v\n%s", err, ee.Stderr)
	} else if err != nil {
		t.Fatal(err)
	}
	// One line per package: its path, then what it imports.
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		for _, imp := range strings.Fields(imports) {
			for _, banned := range []string{"github.com/prometheus/", "github.com/fsnotify/"} {
				if strings.HasPrefix(imp, banned) && !strings.HasPrefix(pkg, banned) {
					t.Errorf("armorctl links %s: %s imports it", imp, pkg)
				}
			}
		}
	}
}
