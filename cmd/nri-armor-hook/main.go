// Command nri-armor-hook is the start gate's OCI createRuntime hook (package
// ocihook): the runtime runs it while starting a container that has rules,
// with the OCI state on stdin; it has nri-armor enforce the container now,
// and fails (failing the start) when nri-armor does not answer.
//
//	nri-armor-hook -socket /run/nri-armor/ocihook.sock [-timeout 10s]
//
// A binary of its own, not a subcommand of nri-armor: it runs on every
// protected container's start, and a small binary starts in a fraction of
// the time.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/nri-armor/nri-armor/ocihook"
)

func main() {
	socket := flag.String("socket", ocihook.DefaultSocket, "nri-armor's gate socket")
	timeout := flag.Duration("timeout", 10*time.Second, "how long to wait for nri-armor")
	flag.Parse()
	if err := ocihook.Hook(os.Stdin, *socket, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
