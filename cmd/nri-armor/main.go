package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nri-armor/nri-armor/daemon"
	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/internal/cli"
	"github.com/nri-armor/nri-armor/policy"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	cfg, err := cli.Load("nri-armor", "config/nri-armor.yaml", args, stderr, daemon.Default, daemon.Load)
	if err != nil {
		return cli.Fail(stderr, "nri-armor", err)
	}
	log, err := cli.Logger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return cli.Fail(stderr, "nri-armor", err)
	}

	// Policies' raw AppArmor rules (spec.apparmor) must parse on their
	// own: checked with the node's apparmor_parser, against the running
	// kernel's features (a warning where it is not installed).
	policy.SetAppArmorChecker(apparmor.Parser{}.RawChecker())
	d, err := daemon.New(cfg, log)
	if err != nil {
		log.Errorf("starting: %v", err)
		return 1
	}
	defer d.Close()
	if err := d.ServeMetrics(); err != nil {
		log.Errorf("%v", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			log.Info("SIGHUP: reloading the policy directories")
			if err := d.Reload(); err != nil {
				log.Errorf("reload: %v", err)
			}
		}
	}()
	if err := d.Run(ctx); err != nil && ctx.Err() == nil {
		log.Errorf("%v", err)
		return 1
	}
	log.Info("stopped; kernel enforcement stays in place (pinned)")
	return 0
}
