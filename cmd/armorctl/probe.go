package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/nri-armor/nri-armor/enforce"
)

func runProbe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "text", "output: text or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *output != "text" && *output != "json" {
		fmt.Fprintf(stderr, "armorctl probe: -o must be text or json, got %q\n", *output)
		return 2
	}
	p := enforce.RunProbe()
	var err error
	if *output == "json" {
		err = writeJSON(stdout, p)
	} else {
		err = p.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "armorctl probe: %v\n", err)
		return 1
	}
	return 0
}
