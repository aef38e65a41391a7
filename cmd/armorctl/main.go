package main

import (
	"fmt"
	"io"
	"os"

	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/policy"
)

const usage = `armorctl — nri-armor's policy tool

Commands:
  validate PATH...   check policy files and directories; exit 1 if any file is invalid
  explain            print the rule set a container would get, with provenance and digest
                     (-o apparmor: its AppArmor profile and the profile's name;
                      -o seccomp: its seccomp filter)
  check              print the verdict for one operation, the rule that decided it and the near misses;
                     exit 0 Allow, 3 Audit, 4 Block
  probe              show what this node can enforce, per class (needs root)
  logs               print alerts and logs from armor-tracer's stream (--follow to keep streaming)

Run "armorctl COMMAND -h" for a command's flags.
`

// stdin is what `armorctl validate -` reads (tests replace it).
var stdin io.Reader = os.Stdin

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status, so tests
// drive every command in-process.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	// spec.apparmor is checked with apparmor_parser where it is installed
	// (a warning says it was not, elsewhere).
	policy.SetAppArmorChecker(apparmor.Parser{}.RawChecker())
	switch args[0] {
	case "validate":
		return runValidate(args[1:], stdout, stderr)
	case "explain":
		return runExplain(args[1:], stdout, stderr)
	case "check":
		return runCheck(args[1:], stdout, stderr)
	case "probe":
		return runProbe(args[1:], stdout, stderr)
	case "logs":
		return runLogs(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "armorctl: unknown command %q\n\n%s", args[0], usage)
	return 2
}
