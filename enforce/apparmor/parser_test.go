package apparmor

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

// featureSets are what every generated profile is checked against:
// Debian's features file (apparmor package) and the features of the VM's
// kernel (Debian 12's 6.1), captured with hack/aa-features.
func featureSets(t testing.TB) []string {
	vm, err := filepath.Abs(filepath.Join("testdata", "features-debian12-vm"))
	if err != nil {
		t.Fatal(err)
	}
	return []string{DebianFeatures, vm}
}

// requireParser returns apparmor_parser's path, or fails the test (skips
// it when testenv.AllowSkipAppArmorVar says so).
func requireParser(t testing.TB) string {
	t.Helper()
	p, err := FindParser()
	if err == nil {
		if _, err = os.Stat(DebianFeatures); err != nil {
			err = fmt.Errorf("Debian's AppArmor features file: %w", err)
		}
	}
	testenv.RequireTool(t, err, testenv.AllowSkipAppArmorVar)
	return p
}

var (
	profileSeqMu sync.Mutex
	profileSeq   int
)

// compiled compiles rs as Compile does, under a name of its own, and
// queues the profile for apparmor_parser (checkParsed, at the test's end).
func compiled(t *testing.T, rs *policy.RuleSet, raw []RawRules) Profile {
	t.Helper()
	profileSeqMu.Lock()
	profileSeq++
	name := fmt.Sprintf("nri-armor.test.p%d", profileSeq)
	profileSeqMu.Unlock()
	p, err := Compile(name, rs, raw)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	queueParse(t, p.Text)
	return p
}

type parseQueue struct {
	mu       sync.Mutex
	profiles []string
}

var queues sync.Map // *testing.T → *parseQueue

// queueParse adds a profile to the ones the test's end checks with
// apparmor_parser, all in one run per feature set.
func queueParse(t *testing.T, text string) {
	t.Helper()
	q, loaded := queues.LoadOrStore(t, &parseQueue{})
	pq := q.(*parseQueue)
	if !loaded {
		t.Cleanup(func() {
			queues.Delete(t)
			checkParsed(t, pq.profiles)
		})
	}
	pq.mu.Lock()
	pq.profiles = append(pq.profiles, text)
	pq.mu.Unlock()
}

// checkParsed runs apparmor_parser over profiles with each feature set,
// and fails on an error or a warning. The run with Debian's features also
// dumps how the parser converts each glob (-D rule-exprs), which checks
// the tests' model of that conversion (aaToPCRE) glob by glob.
func checkParsed(t *testing.T, profiles []string) {
	t.Helper()
	const chunk = 100 // profiles per run: a run of many takes a while
	for len(profiles) > chunk {
		checkParsed(t, profiles[:chunk])
		profiles = profiles[chunk:]
	}
	if len(profiles) == 0 {
		return
	}
	path := requireParser(t)
	all := strings.Join(profiles, "")
	fail := func(features string, err error) {
		t.Helper()
		var pe *ParseError
		if errors.As(err, &pe) && pe.Line > 0 {
			t.Fatalf("features %s: %v\n%s", features, err, around(all, pe.Line))
		}
		t.Fatalf("features %s: %v", features, err)
	}
	for _, f := range featureSets(t)[1:] {
		warnings, err := Parser{Path: path, Features: f, Timeout: 5 * time.Minute}.Check(all)
		if err != nil {
			fail(f, err)
		}
		if len(warnings) > 0 {
			t.Fatalf("features %s: warnings: %q", f, warnings)
		}
	}
	cmd := exec.Command(path, "-Q", "-K", "--abort-on-error", "-M", DebianFeatures, "-D", "rule-exprs")
	cmd.Stdin = strings.NewReader(all)
	out, err := cmd.CombinedOutput()
	conv := map[string]string{}
	var other []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if m := conversionRe.FindStringSubmatch(l); m != nil {
			conv[m[1]] = m[2]
		} else if l != "" && !strings.HasPrefix(l, "rule: ") {
			other = append(other, l)
		}
	}
	if err != nil {
		pe := &ParseError{Message: strings.Join(other, "; ")}
		if m := lineRe.FindStringSubmatch(strings.Join(other, "\n")); m != nil {
			pe.Line, _ = strconv.Atoi(m[1])
		}
		fail(DebianFeatures, pe)
	}
	if len(other) > 0 {
		t.Fatalf("features %s: warnings: %q", DebianFeatures, other)
	}
	if len(conv) == 0 {
		t.Fatalf("apparmor_parser -D rule-exprs printed no conversion:\n%s", out)
	}
	for aare, pcre := range conv {
		if got, err := aaToPCRE(aare); err != nil || got != pcre {
			t.Errorf("glob model: %q → %q (%v), apparmor_parser: %q", aare, got, err, pcre)
		}
	}
}

// around is the profile text near line n, numbered.
func around(text string, n int) string {
	lines := strings.Split(text, "\n")
	var b strings.Builder
	for i := max(0, n-4); i < min(len(lines), n+2); i++ {
		fmt.Fprintf(&b, "%5d %s\n", i+1, lines[i])
	}
	return b.String()
}

var conversionRe = regexp.MustCompile(`^aare: (.*)   ->   (.*)$`)

// TestParserErrors: a refused profile's error names its line; raw rules'
// errors name the line of the text, and raw rules may not define profiles
// beside the one they are placed in.
func TestParserErrors(t *testing.T) {
	path := requireParser(t)
	p := Parser{Path: path, Features: DebianFeatures}
	_, err := p.Check("profile x {\n  file,\n  bogus rule,\n}\n")
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 3 {
		t.Fatalf("got %v", err)
	}
	for _, c := range []struct {
		text string
		line int
		want string
	}{
		{"file,\n/etc/x r,\n", 0, ""},
		{"file,\n/etc/x rq,\n", 2, "apparmor_parser: "},
		{"network inet stream,\n  @{UNDEFINED}/x r,\n", 0, "never declared"},
		{"profile child {\n  file,\n}\n^hat {\n}\n", 0, ""},
		{"}\nprofile evil {\n", 1, "closes a block"},
	} {
		issues := p.CheckRaw(c.text)
		if c.want == "" {
			if len(issues) > 0 {
				t.Errorf("%q: %+v", c.text, issues)
			}
			continue
		}
		if len(issues) != 1 || issues[0].Warning || issues[0].Line != c.line || !strings.Contains(issues[0].Message, c.want) {
			t.Errorf("%q: got %+v, want line %d with %q", c.text, issues, c.line, c.want)
		}
	}
	missing := Parser{Path: "/nonexistent/apparmor_parser"}
	if is := missing.CheckRaw("file,\n"); len(is) != 1 || !is[0].Warning {
		t.Errorf("missing parser: %+v", is)
	}
}
