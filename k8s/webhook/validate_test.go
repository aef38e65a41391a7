package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

func review(t *testing.T, h http.Handler, path, objYAML string) *admissionv1.AdmissionResponse {
	t.Helper()
	obj, err := yaml.YAMLToJSON([]byte(objYAML))
	if err != nil {
		t.Fatal(err)
	}
	in := admissionv1.AdmissionReview{Request: &admissionv1.AdmissionRequest{UID: "u1", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: obj}}}
	in.APIVersion, in.Kind = "admission.k8s.io/v1", "AdmissionReview"
	body, _ := json.Marshal(in)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", path, rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Response == nil || out.Response.UID != "u1" || out.Kind != "AdmissionReview" {
		t.Fatalf("review answered %+v", out)
	}
	return out.Response
}

const validKSP = `apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata: {name: block-apt, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  process:
    matchPaths:
    - path: /usr/bin/apt-get
  action: Block
`

// The review of a policy is the loader's verdict: allowed when valid;
// refused with each error's field and what is wrong, as armorctl validate
// says it, when not.
func TestValidatePolicy(t *testing.T) {
	h := (&Server{}).Handler()
	if r := review(t, h, PathValidatePolicy, validKSP); !r.Allowed {
		t.Fatalf("valid policy refused: %+v", r.Result)
	}
	bad := strings.Replace(validKSP, "path: /usr/bin/apt-get", "path: usr/bin/apt-get", 1)
	r := review(t, h, PathValidatePolicy, bad)
	if r.Allowed || r.Result == nil || !strings.HasPrefix(r.Result.Message, "spec.process.matchPaths[0].path: ") {
		t.Fatalf("relative path: %+v", r.Result)
	}
	twoErrs := strings.Replace(bad, "action: Block", "action: Deny", 1)
	r = review(t, h, PathValidatePolicy, twoErrs)
	if r.Allowed || !strings.Contains(r.Result.Message, "spec.action: must be Allow, Audit or Block") || !strings.Contains(r.Result.Message, "; spec.process.matchPaths[0].path: ") {
		t.Fatalf("two errors: %+v", r.Result)
	}
	// A kind's foreign field (a selector on a host policy) is the loader's
	// to refuse, which the CRD schema cannot.
	hsp := "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata: {name: h}\nspec:\n  selector: {matchLabels: {a: b}}\n  nodeSelector: {matchLabels: {a: b}}\n  process:\n    matchPaths: [{path: /bin/x}]\n  action: Block\n"
	if r := review(t, h, PathValidatePolicy, hsp); r.Allowed || !strings.Contains(r.Result.Message, "spec.selector") {
		t.Fatalf("selector on a host policy: %+v", r.Result)
	}
}

// Not a review, or too large: 400, and the API server applies the failure
// policy (Fail).
func TestReviewRejectsGarbage(t *testing.T) {
	h := (&Server{}).Handler()
	for _, body := range []string{"", "{}", "not json", `{"request":null}`} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathValidatePolicy, strings.NewReader(body)))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("body %q: HTTP %d", body, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathValidatePolicy, bytes.NewReader(make([]byte, maxReview+10))))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("oversized body: HTTP %d", rec.Code)
	}
}
