package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nri-armor/nri-armor/internal/cli"
	"github.com/nri-armor/nri-armor/tracer/daemon"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	cfg, err := cli.Load("armor-tracer", "config/armor-tracer.yaml", args, stderr, daemon.DefaultConfig, daemon.LoadConfig)
	if err != nil {
		return cli.Fail(stderr, "armor-tracer", err)
	}
	log, err := cli.Logger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return cli.Fail(stderr, "armor-tracer", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, cfg, log); err != nil {
		log.Errorf("%v", err)
		return 1
	}
	return 0
}
