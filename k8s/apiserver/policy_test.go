//go:build k8s

package apiserver

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
)

// The generated CRDs install, and the resources answer to KubeArmor's
// short names.
func TestCRDs(t *testing.T) {
	installCRDs(t)
	for _, short := range []string{"ksp", "csp", "hsp"} {
		if _, err := kubectl(t, "", "get", short, "-A"); err != nil {
			t.Errorf("kubectl get %s: %v", short, err)
		}
	}
}

// Every file of the conformance corpus that the loader accepts applies
// with kubectl (server-side: the CRD's schema, then the policy webhook);
// every one it refuses is refused at apply, naming the field.
func TestCorpusApply(t *testing.T) {
	startWebhook(t)
	dir := testenv.Corpus(t)
	rows := expectations(t, dir)
	// The corpus's namespaces, created first.
	nss := map[string]bool{}
	for _, r := range rows {
		if r.expected != "valid" {
			continue
		}
		for _, p := range policy.LoadFile(filepath.Join(dir, r.path)).Policies {
			if ns := p.Metadata.Namespace; ns != "" {
				nss[ns] = true
			}
		}
	}
	for ns := range nss {
		if _, err := kubectl(t, "", "create", "namespace", ns); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	counts := map[string]int{}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, r := range rows {
		if r.expected != "valid" && r.expected != "invalid" {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			file := filepath.Join(dir, r.path)
			expected := r.expected
			if expected == "invalid" && kubectlNormalizes(t, file) {
				// Invalid as text only (a key given twice, a null field):
				// kubectl sends one meaning of it, which is valid, and the
				// API server never sees the text. armorctl validate is
				// where such a file is refused.
				expected = "valid"
			}
			out, err := kubectl(t, "", "apply", "-f", file)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case expected == "valid" && err != nil:
				t.Errorf("%s: valid, refused: %v", r.path, err)
			case expected == "invalid" && err == nil:
				t.Errorf("%s: invalid (%s), applied: %s", r.path, r.why, out)
			case expected == "invalid" && !namesField(err.Error()):
				t.Errorf("%s: refused without naming the field: %v", r.path, err)
			case expected != r.expected:
				counts["invalid as text only"]++
			default:
				counts[r.expected]++
			}
		}()
	}
	wg.Wait()
	t.Logf("applied %d valid files, refused %d invalid ones; %d invalid only as text applied as kubectl reads them", counts["valid"], counts["invalid"], counts["invalid as text only"])
	if counts["valid"] == 0 || counts["invalid"] == 0 {
		t.Fatalf("counts %v: the corpus was not exercised", counts)
	}
}

// kubectlNormalizes says whether the objects kubectl makes of an invalid
// file (`kubectl apply --dry-run=client`) are all valid policies: the
// file's errors are in its text, which the API server never sees.
func kubectlNormalizes(t *testing.T, file string) bool {
	out, err := kubectl(t, "", "apply", "--dry-run=client", "-o", "json", "-f", file)
	if err != nil {
		return false
	}
	var objs []json.RawMessage
	var list struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return false
	}
	if list.Kind == "List" {
		objs = list.Items
	} else {
		objs = []json.RawMessage{json.RawMessage(out)}
	}
	for _, o := range objs {
		if res := policy.LoadBytes(file, o); res.Status() != policy.FileValid {
			return false
		}
	}
	return len(objs) > 0
}

// namesField says whether a refusal names a field path ("spec.…").
func namesField(msg string) bool {
	return strings.Contains(msg, "spec.") || strings.Contains(msg, "metadata.")
}

type expectation struct{ path, expected, why string }

func expectations(t *testing.T, dir string) []expectation {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "expectations.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []expectation
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		cols := strings.SplitN(sc.Text(), "\t", 3)
		if first || len(cols) != 3 {
			continue
		}
		out = append(out, expectation{cols[0], cols[1], cols[2]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}
