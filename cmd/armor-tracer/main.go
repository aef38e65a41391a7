// Command armor-tracer turns nri-armor's kernel events into alerts with pod
// identity, streams them, and serves Prometheus metrics.
//
//	armor-tracer [-config /etc/nri-armor/armor-tracer.yaml] [-KEY VALUE ...]
//
// Every key of the config file (config/armor-tracer.yaml documents them) is
// also a flag; flags override the file.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/nri-armor/nri-armor/tracer"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// configPath finds -config among args before the flags are bound: the
// file's values are the defaults that the other flags override.
func configPath(args []string) string {
	fs := flag.NewFlagSet("armor-tracer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "")
	ignored := tracer.DefaultConfig()
	ignored.BindFlags(fs)
	_ = fs.Parse(args)
	return *path
}

func run(args []string, stderr io.Writer) int {
	path := configPath(args)
	cfg := tracer.DefaultConfig()
	if path != "" {
		var err error
		if cfg, err = tracer.LoadConfig(path); err != nil {
			fmt.Fprintf(stderr, "armor-tracer: config: %v\n", err)
			return 2
		}
	}
	fs := flag.NewFlagSet("armor-tracer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", path, "config file (config/armor-tracer.yaml documents it)")
	cfg.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "armor-tracer: %v\n", err)
		return 2
	}
	log := logrus.New()
	log.SetOutput(stderr)
	lvl, _ := logrus.ParseLevel(cfg.LogLevel) // Validate checked it
	log.SetLevel(lvl)
	if cfg.LogFormat == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var tel tracer.TelemetrySource
	var progs []tracer.ProgramStats
	if cfg.Telemetry {
		k, err := tracer.OpenTelemetry(ctx, cfg)
		if err != nil {
			log.Errorf("telemetry: %v", err)
			return 1
		}
		defer k.Close()
		for name, err := range k.Attached() {
			if err != nil {
				log.Warnf("telemetry %s: not attached: %v", name, err)
			}
		}
		tel, progs = k, append(progs, k)
	}
	if err := tracer.Serve(ctx, cfg, log, tel, progs...); err != nil {
		log.Errorf("%v", err)
		return 1
	}
	return 0
}
