// Command nri-armor is the node daemon: an NRI plugin that installs each
// container's compiled policies in the kernel before its first instruction.
//
//	nri-armor [-config /etc/nri-armor/nri-armor.yaml] [-KEY VALUE ...]
//	nri-armor hook -socket PATH [-timeout 10s]   (the start gate's OCI hook)
//
// Every key of the config file (config/nri-armor.yaml documents them) is
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
	"time"

	"github.com/sirupsen/logrus"

	"github.com/nri-armor/nri-armor/daemon"
	"github.com/nri-armor/nri-armor/gate"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "hook" {
		return hook(args[1:], os.Stdin, stderr)
	}
	// First pass: only -config, to know which file the flags override.
	first := flag.NewFlagSet("nri-armor", flag.ContinueOnError)
	first.SetOutput(io.Discard)
	path := first.String("config", "", "")
	scratch := daemon.Default()
	scratch.BindFlags(first)
	_ = first.Parse(args)

	cfg := daemon.Default()
	if *path != "" {
		var err error
		if cfg, err = daemon.Load(*path); err != nil {
			fmt.Fprintf(stderr, "nri-armor: config: %v\n", err)
			return 2
		}
	}
	fs := flag.NewFlagSet("nri-armor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", *path, "config file (config/nri-armor.yaml documents it)")
	cfg.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "nri-armor: %v\n", err)
		return 2
	}

	log := logrus.New()
	log.SetOutput(stderr)
	if lvl, err := logrus.ParseLevel(cfg.LogLevel); err == nil {
		log.SetLevel(lvl)
	} else {
		fmt.Fprintf(stderr, "nri-armor: logLevel: %v\n", err)
		return 2
	}
	if cfg.LogFormat == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	}

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

// hook is the start gate's OCI createRuntime hook (package gate): the OCI
// state on stdin; a failure fails the container's start.
func hook(args []string, stdin io.Reader, stderr io.Writer) int {
	fs := flag.NewFlagSet("nri-armor hook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", gate.DefaultSocket, "the daemon's gate socket")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the daemon")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := gate.Hook(stdin, *socket, *timeout); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
