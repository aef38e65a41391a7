package vmtest

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

const (
	// MarkerVar is set to "1" by the VM's /init for every test binary it runs.
	MarkerVar = "NRI_ARMOR_VM"
	// AllowSkipVar, set to "1", turns Require's failure into a skip.
	AllowSkipVar = "NRI_ARMOR_ALLOW_SKIP_VM"
	// LSMFile lists the active LSMs, comma-separated.
	LSMFile = "/sys/kernel/security/lsm"
)

// InVM reports whether the process runs inside the nri-armor test VM.
func InVM() bool { return os.Getenv(MarkerVar) == "1" }

// Require fails the test unless it runs inside the nri-armor test VM. With
// NRI_ARMOR_ALLOW_SKIP_VM=1 it skips instead.
func Require(t testing.TB) {
	t.Helper()
	if InVM() {
		return
	}
	if os.Getenv(AllowSkipVar) == "1" {
		t.Skipf("not inside the nri-armor VM (%s is not 1); skipped because %s=1", MarkerVar, AllowSkipVar)
		return
	}
	t.Fatalf("this test must run inside the nri-armor VM (hack/vmtest/run.sh, `make vmtest`), "+
		"but %s is not 1; set %s=1 to skip it instead", MarkerVar, AllowSkipVar)
}

// ActiveLSMs returns the active LSMs in the kernel's order, read from LSMFile.
func ActiveLSMs() ([]string, error) {
	b, err := os.ReadFile(LSMFile)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSpace(string(b)), ","), nil
}

// RequireLSM calls Require, then fails the test unless every named LSM is active.
func RequireLSM(t testing.TB, names ...string) {
	t.Helper()
	Require(t)
	active, err := ActiveLSMs()
	if err != nil {
		t.Fatalf("reading the active LSMs: %v", err)
	}
	if missing := missingLSMs(active, names); len(missing) > 0 {
		t.Fatalf("LSM %s not active; %s reads %q", strings.Join(missing, ", "), LSMFile, strings.Join(active, ","))
	}
}

func missingLSMs(active, want []string) []string {
	var missing []string
	for _, n := range want {
		if !slices.Contains(active, n) {
			missing = append(missing, n)
		}
	}
	return missing
}

// String describes where the process runs, for logs.
func String() string {
	if InVM() {
		return "nri-armor VM"
	}
	return fmt.Sprintf("host (%s unset)", MarkerVar)
}
