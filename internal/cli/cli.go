package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sirupsen/logrus"
)

// Settings is a configuration type's pointer: it binds a flag per key and
// checks its values.
type Settings[C any] interface {
	*C
	BindFlags(*flag.FlagSet)
	Validate() error
}

// ErrUsage is a flag the command line got wrong; flag has printed why.
var ErrUsage = errors.New("usage")

// Load reads name's configuration from args: `-config FILE` first (read
// with load over defaults), whose values then become the defaults of the
// flags parsed next. doc names the documented default file.
func Load[C any, S Settings[C]](name, doc string, args []string, stderr io.Writer, defaults func() C, load func(path string) (C, error)) (C, error) {
	// First pass: only -config, to know which file the flags override.
	first := flag.NewFlagSet(name, flag.ContinueOnError)
	first.SetOutput(io.Discard)
	path := first.String("config", "", "")
	scratch := defaults()
	S(&scratch).BindFlags(first)
	_ = first.Parse(args)

	cfg := defaults()
	if *path != "" {
		var err error
		if cfg, err = load(*path); err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", *path, "config file ("+doc+" documents it)")
	S(&cfg).BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, ErrUsage
	}
	return cfg, S(&cfg).Validate()
}

// Logger is a logger on w at level (debug, info, warn, error) in format
// (text, json).
func Logger(w io.Writer, level, format string) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetOutput(w)
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("logLevel: %w", err)
	}
	log.SetLevel(lvl)
	if format == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	}
	return log, nil
}

// Fail reports a Load or Logger error on stderr as name's and returns the
// exit status of a usage error.
func Fail(stderr io.Writer, name string, err error) int {
	if !errors.Is(err, ErrUsage) {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
	}
	return 2
}

// KeyValues parses "k=v,k=v" (a flag's labels); "" is no labels, and an
// empty item (a trailing comma, as a template writes it) is none.
func KeyValues(v string) (map[string]string, error) {
	out := map[string]string{}
	if v == "" {
		return out, nil
	}
	for _, kv := range strings.Split(v, ",") {
		if kv == "" {
			continue
		}
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want key=value", kv)
		}
		out[k] = val
	}
	return out, nil
}
