package apparmor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nri-armor/nri-armor/enforce"
	"github.com/nri-armor/nri-armor/policy"
)

// DebianFeatures is the features file Debian's apparmor package ships:
// what apparmor_parser compiles for when no kernel is asked.
const DebianFeatures = "/usr/share/apparmor-features/features"

// Parser is apparmor_parser, run offline: -Q (nothing is loaded into the
// kernel) and -K (no cache), the profile on its standard input.
type Parser struct {
	// Path of apparmor_parser; "" finds it (FindParser).
	Path string
	// Features is a features file or directory (-M); "" leaves the parser
	// its default: the running kernel's features, else its own.
	Features string
	// Timeout bounds one run (0: 30 s).
	Timeout time.Duration
}

// FindParser returns the path of apparmor_parser (enforce.FindAppArmorParser).
func FindParser() (string, error) { return enforce.FindAppArmorParser() }

// ParseError is apparmor_parser's refusal of a profile.
type ParseError struct {
	// Line is the profile's line the parser names, 0 when it names none.
	Line    int
	Message string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("apparmor_parser: line %d: %s", e.Line, e.Message)
	}
	return "apparmor_parser: " + e.Message
}

var lineRe = regexp.MustCompile(`at line (\d+): (.*)$`)

// run runs the parser offline (-Q -K) on profile.
func (p Parser) run(profile string, args ...string) (stdout string, warnings []string, err error) {
	return p.exec(profile, append([]string{"-Q", "-K", "--abort-on-error"}, args...)...)
}

// exec runs apparmor_parser with args (and -M Features when set), stdin
// on its standard input.
func (p Parser) exec(stdin string, args ...string) (stdout string, warnings []string, err error) {
	path := p.Path
	if path == "" {
		if path, err = FindParser(); err != nil {
			return "", nil, err
		}
	}
	timeout := p.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if p.Features != "" {
		args = append(args, "-M", p.Features)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	var lines []string
	for _, l := range strings.Split(errb.String(), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(l, "apparmor_parser: "))
		// Said whenever no kernel interface is there, as on a machine
		// without AppArmor: not about the profile.
		if l == "" || strings.HasPrefix(l, "Cache read/write disabled") {
			continue
		}
		lines = append(lines, l)
	}
	if runErr == nil {
		return out.String(), lines, nil
	}
	var ee *exec.ExitError
	if !errors.As(runErr, &ee) || ctx.Err() != nil {
		return "", nil, fmt.Errorf("apparmor_parser: %v", runErr)
	}
	pe := &ParseError{Message: strings.Join(lines, "; ")}
	for _, l := range lines {
		if m := lineRe.FindStringSubmatch(l); m != nil {
			pe.Line, _ = strconv.Atoi(m[1])
			pe.Message = m[2]
			break
		}
	}
	if pe.Message == "" {
		pe.Message = runErr.Error()
	}
	return "", nil, pe
}

// Check compiles profile as the kernel would get it, without loading it.
// It returns the parser's warnings, and a *ParseError when it refuses.
func (p Parser) Check(profile string) (warnings []string, err error) {
	_, warnings, err = p.run(profile)
	return warnings, err
}

// Names returns the names of the profiles (and their children, as
// parent//child) that profile defines.
func (p Parser) Names(profile string) ([]string, error) {
	out, _, err := p.run(profile, "-N")
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// checkProfile is the profile the raw rules are checked in.
const checkProfile = "nri-armor-check"

// CheckRaw checks raw AppArmor rules (spec.apparmor) as Compile places
// them, in a profile's body: they must parse there on their own, and
// define no profile but children of it. Issues name the text's lines. When
// apparmor_parser is not there the rules are not checked, and the one
// issue, a warning, says so.
func (p Parser) CheckRaw(text string) []policy.TextIssue {
	if n, problem := policy.CheckAppArmorText(text); problem != "" {
		return []policy.TextIssue{{Line: n, Message: problem}}
	}
	if p.Path == "" {
		path, err := FindParser()
		if err != nil {
			return []policy.TextIssue{{Warning: true, Message: fmt.Sprintf("not checked: %v; the AppArmor backend uses these rules only where they parse", err)}}
		}
		p.Path = path
	}
	wrapped := "profile " + checkProfile + " {\n" + text + "\n}\n"
	lines := strings.Count(text, "\n") + 1
	if _, err := p.Check(wrapped); err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) {
			return []policy.TextIssue{{Warning: true, Message: fmt.Sprintf("not checked: %v", err)}}
		}
		n := pe.Line - 1 // the wrapper's first line
		if n < 1 || n > lines {
			n = 0
		}
		return []policy.TextIssue{{Line: n, Message: "apparmor_parser: " + pe.Message}}
	}
	names, err := p.Names(wrapped)
	if err != nil {
		return []policy.TextIssue{{Warning: true, Message: fmt.Sprintf("not checked: %v", err)}}
	}
	for _, n := range names {
		if n != checkProfile && !strings.HasPrefix(n, checkProfile+"//") {
			return []policy.TextIssue{{Message: fmt.Sprintf("defines profile %q beside the container's: the rules must stay in its body", n)}}
		}
	}
	return nil
}

// RawChecker is CheckRaw as a policy.AppArmorChecker (for
// policy.SetAppArmorChecker), remembering the verdicts of the last texts
// it checked: a policy directory reloads the same texts many times.
func (p Parser) RawChecker() policy.AppArmorChecker {
	var mu sync.Mutex
	seen := map[[32]byte][]policy.TextIssue{}
	return func(text string) []policy.TextIssue {
		key := sha256.Sum256([]byte(text))
		mu.Lock()
		issues, ok := seen[key]
		mu.Unlock()
		if ok {
			return issues
		}
		issues = p.CheckRaw(text)
		mu.Lock()
		defer mu.Unlock()
		if len(seen) >= 1024 {
			clear(seen)
		}
		if len(issues) == 0 || !issues[0].Warning {
			seen[key] = issues // a parser missing now may be there later
		}
		return issues
	}
}
