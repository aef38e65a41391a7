package webhook

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/nri-armor/nri-armor/k8s"
	"github.com/nri-armor/nri-armor/policy"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ValidatePolicy answers the review of a KubeArmor policy being created or
// updated: refused, with each error's field and what is wrong with it,
// when the policy loader (the one the agents and `armorctl validate` use)
// rejects it; allowed, with its warnings, otherwise. The CRD's schema has
// already refused what it can express; this is everything else (rule
// paths and globs, selectors, a kind's fields, KubeArmor's raw AppArmor
// text …).
func ValidatePolicy(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if req.Operation == admissionv1.Delete {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(req.Object.Raw); err != nil {
		return deny(http.StatusBadRequest, fmt.Sprintf("not a policy object: %v", err))
	}
	name := k8s.DocumentName(u.GetKind(), u.GetNamespace(), u.GetName())
	doc, err := k8s.Document(&u)
	if err != nil {
		return deny(http.StatusBadRequest, err.Error())
	}
	res := policy.LoadBytes(name, doc)
	if errs := res.Errors(); len(errs) > 0 {
		return deny(http.StatusUnprocessableEntity, Explain(errs))
	}
	var warnings []string
	for _, is := range res.Warnings() {
		warnings = append(warnings, fieldMessage(is))
	}
	return &admissionv1.AdmissionResponse{Allowed: true, Warnings: warnings}
}

// Explain is the refusal text of a policy's errors: FIELD: MESSAGE each,
// as `armorctl validate` prints them after the file and line (an object has
// no lines worth naming).
func Explain(errs []*policy.Issue) string {
	parts := make([]string, len(errs))
	for i, is := range errs {
		parts[i] = fieldMessage(is)
	}
	return strings.Join(parts, "; ")
}

func fieldMessage(is *policy.Issue) string {
	if is.Field == "" {
		return is.Message
	}
	return is.Field + ": " + is.Message
}
