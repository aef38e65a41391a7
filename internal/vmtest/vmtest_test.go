package vmtest

import (
	"fmt"
	"slices"
	"testing"
)

// recorder stands in for a testing.TB and records how Require ended.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
}

func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		name, marker, allow string
		fatal, skip         bool
	}{
		{name: "in VM", marker: "1"},
		{name: "in VM, skip allowed", marker: "1", allow: "1"},
		{name: "host", fatal: true},
		{name: "host, marker not 1", marker: "yes", fatal: true},
		{name: "host, allow not 1", allow: "true", fatal: true},
		{name: "host, skip allowed", allow: "1", skip: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(MarkerVar, tc.marker)
			t.Setenv(AllowSkipVar, tc.allow)
			r := &recorder{TB: t}
			Require(r)
			if (r.fatal != "") != tc.fatal || (r.skip != "") != tc.skip {
				t.Fatalf("Require: fatal=%q skip=%q; want fatal=%v skip=%v", r.fatal, r.skip, tc.fatal, tc.skip)
			}
			if InVM() != (tc.marker == "1") {
				t.Fatalf("InVM() = %v with %s=%q", InVM(), MarkerVar, tc.marker)
			}
		})
	}
}

func TestMissingLSMs(t *testing.T) {
	active := []string{"lockdown", "capability", "landlock", "yama", "apparmor", "bpf"}
	if got := missingLSMs(active, []string{"bpf", "apparmor"}); len(got) != 0 {
		t.Fatalf("missingLSMs = %v, want none", got)
	}
	if got := missingLSMs([]string{"lockdown", "capability", "landlock", "bpf"}, []string{"bpf", "apparmor", "selinux"}); !slices.Equal(got, []string{"apparmor", "selinux"}) {
		t.Fatalf("missingLSMs = %v, want [apparmor selinux]", got)
	}
}
