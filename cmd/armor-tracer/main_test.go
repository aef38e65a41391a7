package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigErrors: a bad file or flag stops the tracer before it starts,
// with the file, the line or the key named.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(bad, []byte("rateburst: 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-config", bad}, bad + ": yaml: unmarshal errors:\n  line 1: field rateburst not found"},
		{[]string{"-config", filepath.Join(dir, "missing.yaml")}, "missing.yaml: no such file"},
		{[]string{"-format", "xml"}, "format must be kubearmor or falco"},
		{[]string{"-rateBurst", "0"}, "rateBurst must be at least 1"},
		{[]string{"-nosuchflag"}, "flag provided but not defined"},
	} {
		var stderr bytes.Buffer
		if code := run(c.args, &stderr); code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
}
