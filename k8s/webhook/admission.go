// Package webhook is nri-armor's admission webhooks, served by
// nri-armor-webhook: /validate-policy refuses an invalid KubeArmor policy at
// `kubectl apply`, with the errors `armorctl validate` gives for a file
// (the same loader decides), and /mutate-pod names, in a pod whose
// policies need it, the AppArmor profile the node's agent loads. certs.go
// makes the serving certificate and puts its CA in the webhook
// configurations, so that no one has to.
package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/sirupsen/logrus"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxReview bounds the body of an AdmissionReview read. The API server's
// own request limit is 3 MiB (etcd's object limit); a pod or policy review
// is well below it.
const maxReview = 3 << 20

// Paths the webhook configurations name.
const (
	PathValidatePolicy = "/validate-policy"
	PathMutatePod      = "/mutate-pod"
)

// Server answers the API server's admission reviews.
type Server struct {
	Log logrus.FieldLogger
	// Mutate answers a pod's review; nil serves no /mutate-pod.
	Mutate func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse
}

// Handler serves the webhook paths.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PathValidatePolicy, s.review(ValidatePolicy))
	if s.Mutate != nil {
		mux.HandleFunc(PathMutatePod, s.review(s.Mutate))
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return mux
}

// review decodes an AdmissionReview, lets decide answer its request, and
// writes the review back with the response. A review that cannot be read
// is answered 400: the API server then applies the failure policy, which
// is Fail for both webhooks.
func (s *Server) review(decide func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxReview+1))
		if err != nil || len(body) > maxReview {
			http.Error(w, fmt.Sprintf("reading the review: %v (limit %d bytes)", err, maxReview), http.StatusBadRequest)
			return
		}
		var rev admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &rev); err != nil || rev.Request == nil {
			http.Error(w, fmt.Sprintf("not an AdmissionReview with a request: %v", err), http.StatusBadRequest)
			return
		}
		resp := decide(rev.Request)
		resp.UID = rev.Request.UID
		if !resp.Allowed && s.Log != nil {
			s.Log.Infof("refused %s %s %s/%s: %s", rev.Request.Operation, rev.Request.Kind.Kind, rev.Request.Namespace, rev.Request.Name, resp.Result.Message)
		}
		out := admissionv1.AdmissionReview{TypeMeta: rev.TypeMeta, Response: resp}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

// deny is a refusal with message, as kubectl prints it after "denied the
// request: ".
func deny(code int32, message string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: metav1.StatusReasonInvalid, Message: message}}
}
