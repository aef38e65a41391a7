package cli

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type conf struct{ A, B string }

func (c *conf) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.A, "a", c.A, "")
	fs.StringVar(&c.B, "b", c.B, "")
}

func (c *conf) Validate() error {
	if c.B == "bad" {
		return errors.New("b is bad")
	}
	return nil
}

func defaults() conf { return conf{A: "default-a", B: "default-b"} }

// load reads "A B" from the file, as a config loader would.
func load(path string) (conf, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return conf{}, err
	}
	f := strings.Fields(string(b))
	return conf{A: f[0], B: f[1]}, nil
}

// TestLoad: the file's values replace the defaults, flags replace the
// file's, wherever -config stands; bad values and flags are errors.
func TestLoad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c")
	if err := os.WriteFile(file, []byte("file-a file-b"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c, err := Load[conf]("x", "doc", []string{"-b", "flag-b", "-config", file}, &stderr, defaults, load)
	if err != nil || c != (conf{A: "file-a", B: "flag-b"}) {
		t.Fatalf("got %+v, %v; want a from the file, b from the flag", c, err)
	}
	if c, err := Load[conf]("x", "doc", nil, &stderr, defaults, load); err != nil || c != defaults() {
		t.Fatalf("no args: %+v, %v", c, err)
	}
	if _, err := Load[conf]("x", "doc", []string{"-b", "bad"}, &stderr, defaults, load); err == nil || err.Error() != "b is bad" {
		t.Fatalf("bad value: %v", err)
	}
	if _, err := Load[conf]("x", "doc", []string{"-nosuch"}, &stderr, defaults, load); !errors.Is(err, ErrUsage) {
		t.Fatalf("unknown flag: %v", err)
	}
	if code := Fail(&stderr, "x", errors.New("boom")); code != 2 || !strings.Contains(stderr.String(), "x: boom") {
		t.Fatalf("Fail: %d %q", code, stderr.String())
	}
}
