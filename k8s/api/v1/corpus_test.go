package v1

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nri-armor/nri-armor/internal/testenv"
	"github.com/nri-armor/nri-armor/policy"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// newObject returns an empty typed object of a KubeArmor kind, nil for
// another kind (the corpus holds NetworkPolicies, Kyverno policies …).
func newObject(tm metav1.TypeMeta) runtime.Object {
	if tm.APIVersion != GroupVersion.String() {
		return nil
	}
	switch tm.Kind {
	case "KubeArmorPolicy":
		return &KubeArmorPolicy{}
	case "KubeArmorClusterPolicy":
		return &KubeArmorClusterPolicy{}
	case "KubeArmorHostPolicy":
		return &KubeArmorHostPolicy{}
	}
	return nil
}

// TestCorpus takes every file of the conformance corpus that package
// policy loads as valid (expectations.tsv) and, for each KubeArmor document
// in it: unmarshals its JSON form strictly into the API types (an unknown
// field fails), validates it against the generated CRD's schema and prunes
// it as the API server would at kubectl apply (nothing may be dropped), and
// loads the API server's
// form of it (JSON, what the agent will read) with policy.LoadBytes, which
// must give the policy the file gave (same digest).
func TestCorpus(t *testing.T) {
	dir := testenv.Corpus(t)
	servers := apiServers(t)
	files, docs := 0, 0
	var duplicates []string
	for _, e := range readValid(t, dir) {
		files++
		t.Run(e, func(t *testing.T) {
			path := filepath.Join(dir, e)
			fromFile := policy.LoadFile(path)
			if fromFile.Status() != policy.FileValid {
				t.Fatalf("package policy: %v", fromFile.Issues)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := utilyaml.NewYAMLReader(bufio.NewReader(f))
			i := 0
			for {
				doc, err := r.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				var tm metav1.TypeMeta
				if err := yaml.Unmarshal(doc, &tm); err != nil {
					t.Fatal(err)
				}
				obj := newObject(tm)
				if obj == nil {
					continue
				}
				docs++
				// The JSON kubectl sends: a key written twice in a mapping
				// keeps its last value, as package policy's loader does
				// too (some templates repeat action or matchPaths).
				js, err := yaml.YAMLToJSON(doc)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := yaml.YAMLToJSONStrict(doc); err != nil {
					duplicates = append(duplicates, e)
				}
				dec := json.NewDecoder(bytes.NewReader(js))
				dec.DisallowUnknownFields()
				if err := dec.Decode(obj); err != nil {
					t.Errorf("%s: strict unmarshal into %T: %v", tm.Kind, obj, err)
				}
				pruned, serr := servers[tm.Kind].admit(t, js)
				if serr != nil {
					t.Errorf("%s: the CRD's schema refuses it: %v", tm.Kind, serr)
				}
				if len(pruned) > 0 {
					t.Errorf("%s: the API server would drop %q", tm.Kind, pruned)
				}
				fromJSON := policy.LoadBytes(e, js)
				if fromJSON.Status() != policy.FileValid || len(fromJSON.Policies) != 1 {
					t.Errorf("%s: its JSON does not load: %v", tm.Kind, fromJSON.Issues)
				} else if i >= len(fromFile.Policies) || fromJSON.Policies[0].Digest != fromFile.Policies[i].Digest {
					t.Errorf("%s: its JSON loads as another policy than the file's document %d", tm.Kind, i)
				}
				i++
			}
			if i != len(fromFile.Policies) {
				t.Errorf("%d KubeArmor documents, package policy loaded %d policies", i, len(fromFile.Policies))
			}
		})
	}
	t.Logf("%d valid files, %d KubeArmor documents; %d files repeat a key in a mapping (the last value counts): %v", files, docs, len(duplicates), duplicates)
	if files == 0 || docs == 0 {
		t.Fatal("no valid file in the corpus")
	}
}

// readValid returns the corpus paths expectations.tsv marks valid.
func readValid(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "expectations.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, line := range strings.Split(string(bytes.TrimSpace(b)), "\n") {
		cols := strings.SplitN(line, "\t", 3)
		if i == 0 || len(cols) != 3 {
			continue // header
		}
		if cols[1] == "valid" {
			out = append(out, cols[0])
		}
	}
	return out
}
