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
