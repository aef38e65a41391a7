package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFlatten: a features tree becomes what libapparmor writes (and
// apparmor_parser -M reads): `NAME {` then a file's contents or a
// directory's entries, then `}` and a newline.
func TestFlatten(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"caps/mask":          "chown kill\n",
		"file/mask":          "read write\n",
		"network_v8/af_mask": "unix inet\n",
		"policy/versions/v8": "yes\n",
		"policy/set_load":    "yes\n",
		".hidden":            "no\n",
		"domain/stack":       "yes\n",
		"capability":         "0xffffff\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := flatten(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "capability {0xffffff\n}\ncaps {mask {chown kill\n}\n}\ndomain {stack {yes\n}\n}\nfile {mask {read write\n}\n}\n" +
		"network_v8 {af_mask {unix inet\n}\n}\npolicy {set_load {yes\n}\nversions {v8 {yes\n}\n}\n}\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
