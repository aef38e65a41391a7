package policy

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
)

type expectation struct{ path, expected, why string }

func readExpectations(t *testing.T, dir string) []expectation {
	f, err := os.Open(filepath.Join(dir, "expectations.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []expectation
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		if first {
			continue // header
		}
		cols := strings.SplitN(sc.Text(), "\t", 3)
		if len(cols) != 3 {
			t.Fatalf("expectations.tsv: bad row %q", sc.Text())
		}
		out = append(out, expectation{cols[0], cols[1], cols[2]})
	}
	if len(out) == 0 {
		t.Fatal("expectations.tsv has no rows")
	}
	return out
}

var (
	whyLineRe  = regexp.MustCompile(`yaml error at line (\d+)`)
	whyFieldRe = regexp.MustCompile(`^[A-Za-z]+/[^:]+: ([^:]+): unknown field\(s\) \[(.*)\]$`)
)

// TestConformance runs the loader over the shared policy-templates corpus
// and checks every file's verdict against expectations.tsv.
func TestConformance(t *testing.T) {
	dir := testenv.Corpus(t)
	counts := map[string]int{}
	for _, e := range readExpectations(t, dir) {
		t.Run(e.path, func(t *testing.T) {
			res := LoadFile(filepath.Join(dir, e.path))
			st := res.Status()
			counts[e.expected]++
			switch e.expected {
			case "valid":
				if st != FileValid {
					t.Fatalf("want valid, got %s: %v", st, res.Issues)
				}
				rs := Compile(res.Policies, Options{Postures: DefaultDefaults().Postures, Mode: ModeEnforce})
				if rs.Digest == "" {
					t.Fatal("compiled set has no digest")
				}
			case "invalid":
				if st != FileInvalid {
					t.Fatalf("want invalid, got %s", st)
				}
				checkWhy(t, res, e.why)
			case "either":
				if st == FileSkipped {
					t.Fatalf("want valid or invalid, got skipped")
				}
			case "skip":
				if st != FileSkipped {
					t.Fatalf("want skipped, got %s: %v", st, res.Issues)
				}
			default:
				t.Fatalf("unknown expectation %q", e.expected)
			}
		})
	}
	t.Logf("corpus: %v", counts)
}

// checkWhy asserts that one of the errors names the line or field of why.
func checkWhy(t *testing.T, res *FileResult, why string) {
	t.Helper()
	errs := res.Errors()
	if m := whyLineRe.FindStringSubmatch(why); m != nil {
		line, _ := strconv.Atoi(m[1])
		for _, e := range errs {
			if e.Line == line && strings.HasPrefix(e.Error(), res.File+":"+m[1]+": ") {
				return
			}
		}
		t.Fatalf("no error names line %d: %v", line, errs)
	}
	m := whyFieldRe.FindStringSubmatch(why)
	if m == nil {
		t.Fatalf("cannot read expectation %q", why)
	}
	for _, name := range strings.Split(m[2], ",") {
		name = strings.Trim(strings.TrimSpace(name), "'")
		want := m[1] + "." + name
		found := false
		for _, e := range errs {
			if e.Field == want && e.Line > 0 && strings.Contains(e.Error(), want+": unknown field") {
				found = true
			}
		}
		if !found {
			t.Fatalf("no error names %s: %v", want, errs)
		}
	}
}
