package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nri-armor/nri-armor/ocihook"
)

func main() {
	socket := flag.String("socket", ocihook.DefaultSocket, "nri-armor's gate socket")
	timeout := flag.Duration("timeout", 10*time.Second, "how long to wait for nri-armor")
	guard := flag.Bool("guard", false, "guard every container (the runtime's base spec): while nri-armor is down, start only containers of trusted namespaces")
	trust := flag.String("trust", "", "the trust file nri-armor writes (default: "+ocihook.TrustFileName+" beside this binary)")
	trusted := flag.String("trusted", "", "namespaces trusted whatever the trust file says (nri-armor's own), comma-separated")
	runtime := flag.String("runtime", "", "the runtime that runs the guard, "+ocihook.RuntimeContainerd+" or "+ocihook.RuntimeCRIO+": only its annotations name a container's pod (default: told by the spec)")
	flag.Parse()
	var err error
	if *guard {
		if *runtime != "" && *runtime != ocihook.RuntimeContainerd && *runtime != ocihook.RuntimeCRIO {
			fmt.Fprintf(os.Stderr, "nri-armor hook: -runtime %q: want %s or %s\n", *runtime, ocihook.RuntimeContainerd, ocihook.RuntimeCRIO)
			os.Exit(1)
		}
		cfg := ocihook.GuardConfig{Socket: *socket, Timeout: *timeout, TrustFile: *trust, Runtime: *runtime}
		if cfg.TrustFile == "" {
			self, e := os.Executable()
			if e != nil {
				fmt.Fprintf(os.Stderr, "nri-armor hook: -trust not given and %v\n", e)
				os.Exit(1)
			}
			cfg.TrustFile = ocihook.TrustFile(self)
		}
		for _, ns := range strings.Split(*trusted, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				cfg.Bootstrap = append(cfg.Bootstrap, ns)
			}
		}
		err = ocihook.Guard(os.Stdin, cfg)
	} else {
		err = ocihook.Hook(os.Stdin, *socket, *timeout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
