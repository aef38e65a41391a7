package charts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/nri-armor/nri-armor/internal/testenv"
)

// skipHelmVar lets the tests that need helm skip where it is not built.
// make unit builds it (hack/k8s/helm.sh), and CI sets no such variable.
const skipHelmVar = "NRI_ARMOR_SKIP_HELM"

// helm runs hack/k8s/helm.sh with args in the repository's root, once the
// pinned helm is there; it never builds it (minutes) inside a test.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if os.Getenv(skipHelmVar) == "1" {
		t.Skipf("%s=1: helm not used", skipHelmVar)
	}
	root := testenv.RepoRoot(t)
	script := filepath.Join(root, "hack", "k8s", "helm.sh")
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^HELM_VERSION=(\S+)$`).FindSubmatch(src)
	if m == nil {
		t.Fatal("hack/k8s/helm.sh pins no HELM_VERSION")
	}
	cache := os.Getenv("NRI_ARMOR_K8S_CACHE")
	if cache == "" {
		cache = filepath.Join(root, ".cache", "k8s")
	}
	if v, _ := os.ReadFile(filepath.Join(cache, "bin", ".helm.version")); strings.TrimSpace(string(v)) != string(m[1]) {
		t.Fatalf("helm %s is not built in %s: run hack/k8s/helm.sh version (make unit does), or set %s=1 to skip", m[1], cache, skipHelmVar)
	}
	cmd := exec.Command(script, args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out), nil
}

// A set of values the chart is rendered with, and the release.
type valueSet struct {
	name, release, namespace string
	sets                     []string
	appArmor                 bool // webhook.appArmor is set
	seccompLocalhost         bool // webhook.seccompLocalhost is set
}

var (
	defaults = valueSet{name: "defaults", release: "nri-armor", namespace: "nri-armor"}
	// Everything optional turned on, under another release name and
	// namespace: a name the templates hard-code shows there.
	extras = valueSet{name: "extras", release: "sec", namespace: "armor-system", sets: []string{
		"webhook.certManager.enabled=true", "webhook.replicas=2", "metrics.serviceMonitor.enabled=true",
		"agent.config.weakenNamespaces={trusted,armor-system}", "createNamespace=true", "webhook.appArmor=true",
		"webhook.seccompLocalhost=true",
	}, appArmor: true, seccompLocalhost: true}
	filesOnly = valueSet{name: "files-only", release: "nri-armor", namespace: "nri-armor", sets: []string{"policies.fromKubernetes=false"}}
)

func chartPath(t *testing.T) string {
	return filepath.Join(testenv.RepoRoot(t), "charts", "nri-armor")
}

func setArgs(v valueSet) []string {
	var args []string
	for _, s := range v.sets {
		args = append(args, "--set", s)
	}
	return args
}

// TestLint: helm lint --strict passes with the defaults and with every
// option on.
func TestLint(t *testing.T) {
	for _, v := range []valueSet{defaults, extras, filesOnly} {
		t.Run(v.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartPath(t), "--namespace", v.namespace}, setArgs(v)...)
			if out, err := helm(t, args...); err != nil {
				t.Fatal(err)
			} else if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint: %s", out)
			}
		})
	}
}

// TestRendered: deploy/nri-armor.yaml is the chart rendered now
// (hack/k8s/render.sh --check).
func TestRendered(t *testing.T) {
	helm(t, "version") // skips, or fails when helm is missing
	cmd := exec.Command(filepath.Join(testenv.RepoRoot(t), "hack", "k8s", "render.sh"), "--check")
	cmd.Env = append(os.Environ(), "NRI_ARMOR_K8S_CACHE="+os.Getenv("NRI_ARMOR_K8S_CACHE"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}

// TestRuntimeFiles: the node's files the chart ships are config/'s, their
// one source, through symlinks that stay inside the repository; and the
// ConfigMap holds them as they are.
func TestRuntimeFiles(t *testing.T) {
	root := testenv.RepoRoot(t)
	files := []string{"containerd-nri.toml", "containerd-base-spec.json", "crio-nri.conf", "crio-hook.json"}
	for _, f := range files {
		link := filepath.Join(root, "charts", "nri-armor", "files", f)
		if target, err := os.Readlink(link); err != nil || target != "../../../config/"+f {
			t.Errorf("charts/nri-armor/files/%s: link to %q (%v), want ../../../config/%s", f, target, err, f)
		}
	}
	cm := render(t, defaults).get(t, "ConfigMap", "nri-armor-runtime").(*corev1.ConfigMap)
	for _, f := range files {
		src, err := os.ReadFile(filepath.Join(root, "config", f))
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data[f] != string(src) {
			t.Errorf("ConfigMap nri-armor-runtime: %s is not config/%s", f, f)
		}
	}
}

// rendered is one rendering: every object, typed, by "Kind/name".
type rendered struct {
	v    valueSet
	objs map[string]runtime.Object
}

func (r rendered) get(t *testing.T, kind, name string) runtime.Object {
	t.Helper()
	o, ok := r.objs[kind+"/"+name]
	if !ok {
		t.Fatalf("%s: no %s/%s among %v", r.v.name, kind, name, slices.Sorted(mapKeys(r.objs)))
	}
	return o
}

func (r rendered) has(kind, name string) bool {
	_, ok := r.objs[kind+"/"+name]
	return ok
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// The kinds of other projects' APIs that the chart renders, held to the
// fields it sets (their Go modules would bring far more than the types):
// strict decoding still refuses a misspelt field.
type (
	certManagerIssuer struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			SelfSigned *struct{} `json:"selfSigned"`
		} `json:"spec"`
	}
	certManagerCertificate struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			SecretName  string   `json:"secretName"`
			Duration    string   `json:"duration"`
			RenewBefore string   `json:"renewBefore"`
			DNSNames    []string `json:"dnsNames"`
			IssuerRef   struct {
				Name  string `json:"name"`
				Kind  string `json:"kind"`
				Group string `json:"group"`
			} `json:"issuerRef"`
		} `json:"spec"`
	}
	serviceMonitor struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			Selector          metav1.LabelSelector `json:"selector"`
			NamespaceSelector struct {
				MatchNames []string `json:"matchNames"`
			} `json:"namespaceSelector"`
			Endpoints []struct {
				Port     string `json:"port"`
				Path     string `json:"path"`
				Interval string `json:"interval"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
)

// The DeepCopyObject that runtime.Object asks for; these are only read.
func (o *certManagerIssuer) DeepCopyObject() runtime.Object      { c := *o; return &c }
func (o *certManagerCertificate) DeepCopyObject() runtime.Object { c := *o; return &c }
func (o *serviceMonitor) DeepCopyObject() runtime.Object         { c := *o; return &c }

func newObject(gvk schema.GroupVersionKind) (runtime.Object, error) {
	switch gvk {
	case apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"):
		return &apiextensionsv1.CustomResourceDefinition{}, nil
	case schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Issuer"}:
		return &certManagerIssuer{}, nil
	case schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"}:
		return &certManagerCertificate{}, nil
	case schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}:
		return &serviceMonitor{}, nil
	}
	return scheme.Scheme.New(gvk)
}

// parse splits a rendering into documents and decodes each strictly into
// its type: an unknown field, a duplicate key or a wrong type is an error.
func parse(t *testing.T, v valueSet, text string) rendered {
	t.Helper()
	r := rendered{v: v, objs: map[string]runtime.Object{}}
	rd := k8syaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: %v\n%s", v.name, err, doc)
		}
		if tm.Kind == "" {
			continue // only comments
		}
		gvk := schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind)
		obj, err := newObject(gvk)
		if err != nil {
			t.Errorf("%s: %v: no type for it", v.name, gvk)
			continue
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Errorf("%s: %s: %v", v.name, gvk, err)
			continue
		}
		meta := obj.(metav1.Object)
		key := tm.Kind + "/" + meta.GetName()
		if _, dup := r.objs[key]; dup {
			t.Errorf("%s: %s rendered twice", v.name, key)
		}
		r.objs[key] = obj
	}
	return r
}

func render(t *testing.T, v valueSet) rendered {
	t.Helper()
	args := append([]string{"template", v.release, chartPath(t), "--namespace", v.namespace, "--include-crds"}, setArgs(v)...)
	out, err := helm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, v, out)
}

// TestTemplate renders each set of values and checks that every object is
// well formed and that the objects agree with each other: names that refer
// to other objects resolve, selectors select what they must and no more,
// namespaced objects are in the release's namespace.
func TestTemplate(t *testing.T) {
	for _, v := range []valueSet{defaults, extras, filesOnly} {
		t.Run(v.name, func(t *testing.T) {
			r := render(t, v)
			full := "nri-armor"
			if v.release != "nri-armor" {
				full = v.release + "-nri-armor"
			}
			for key, o := range r.objs {
				m := o.(metav1.Object)
				clusterScoped := strings.HasPrefix(key, "Cluster") || strings.Contains(key, "WebhookConfiguration/") ||
					strings.HasPrefix(key, "Namespace/") || strings.HasPrefix(key, "CustomResourceDefinition/")
				if !clusterScoped && m.GetNamespace() != v.namespace {
					t.Errorf("%s in namespace %q, want the release's %q", key, m.GetNamespace(), v.namespace)
				}
				if !strings.HasPrefix(m.GetName(), full) && !clusterScoped {
					t.Errorf("%s: name not prefixed with %s", key, full)
				}
			}
			if got := r.has("Namespace", v.namespace); got != slices.Contains(v.sets, "createNamespace=true") {
				t.Errorf("Namespace rendered: %v, want it only with createNamespace", got)
			}
			checkAgent(t, r, full)
			checkWebhook(t, r, full)
			checkRBAC(t, r, full)
			checkMetrics(t, r, full)
		})
	}
}

func podLabels(t *testing.T, r rendered, kind, name string) labels.Set {
	switch o := r.get(t, kind, name).(type) {
	case *appsv1.DaemonSet:
		return o.Spec.Template.Labels
	case *appsv1.Deployment:
		return o.Spec.Template.Labels
	}
	t.Fatalf("%s/%s has no pod template", kind, name)
	return nil
}

// checkAgent: the DaemonSet's facts that do not depend on the values (the
// full set of deploy_test's checks runs on deploy/nri-armor.yaml, in
// package daemon): the pod is exempt from the required-plugin validator,
// sees host pids, both containers privileged and nothing else of the host
// than the six paths the daemon works with; its service account token
// only when it watches the API server; its ConfigMaps exist; the
// NetworkPolicy selects it and not the webhook's pods.
func checkAgent(t *testing.T, r rendered, full string) {
	ds := r.get(t, "DaemonSet", full).(*appsv1.DaemonSet)
	pod := ds.Spec.Template.Spec
	if ds.Spec.Template.Annotations["nri-armor.dev/tolerate-missing"] != "true" {
		t.Error("the agent's pod lacks nri-armor.dev/tolerate-missing: it could not start under the fail-closed runtime")
	}
	if !pod.HostPID || pod.HostNetwork || pod.HostIPC {
		t.Errorf("hostPID %v, hostNetwork %v, hostIPC %v: want host pids only", pod.HostPID, pod.HostNetwork, pod.HostIPC)
	}
	fromK8s := !slices.Contains(r.v.sets, "policies.fromKubernetes=false")
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken != fromK8s {
		t.Errorf("agent's automountServiceAccountToken %v, want %v (policies.fromKubernetes)", pod.AutomountServiceAccountToken, fromK8s)
	}
	if sa := pod.ServiceAccountName; !r.has("ServiceAccount", sa) {
		t.Errorf("agent's service account %q not rendered", sa)
	}
	hostPaths := map[string]string{}
	for _, vol := range pod.Volumes {
		switch {
		case vol.HostPath != nil:
			hostPaths[vol.Name] = vol.HostPath.Path
		case vol.ConfigMap != nil:
			if !r.has("ConfigMap", vol.ConfigMap.Name) {
				t.Errorf("volume %s: ConfigMap %s not rendered", vol.Name, vol.ConfigMap.Name)
			}
		default:
			t.Errorf("volume %s: neither a host path nor a ConfigMap", vol.Name)
		}
	}
	want := map[string]string{
		"bpffs": "/sys/fs/bpf", "securityfs": "/sys/kernel/security", "cgroup": "/sys/fs/cgroup",
		"nri": "/var/run/nri", "state": "/run/nri-armor", "gate-bin": "/opt/nri-armor/bin",
		"seccomp": "/var/lib/kubelet/seccomp/nri-armor", // the Localhost seccomp profiles, nothing else of the kubelet's
	}
	if !reflect.DeepEqual(hostPaths, want) {
		t.Errorf("host paths %v, want %v", hostPaths, want)
	}
	image := "nri-armor.local/nri-armor:" + chartAppVersion(t)
	for _, c := range pod.Containers {
		if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
			t.Errorf("container %s is not privileged", c.Name)
		}
		if c.Image != image || c.ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("container %s: image %s (%s), want %s (IfNotPresent)", c.Name, c.Image, c.ImagePullPolicy, image)
		}
	}
	var tracer *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "armor-tracer" {
			tracer = &pod.Containers[i]
		}
	}
	if tracer == nil {
		t.Fatal("no armor-tracer container")
	}
	for _, m := range tracer.VolumeMounts {
		if p, ok := hostPaths[m.Name]; ok && m.Name != "bpffs" && !m.ReadOnly {
			t.Errorf("armor-tracer mounts host path %s writable: it only reads the daemon's state", p)
		}
		if m.Name == "securityfs" || m.Name == "cgroup" || m.Name == "nri" || m.Name == "gate-bin" {
			t.Errorf("armor-tracer mounts %s, which only the daemon needs", m.Name)
		}
	}

	agent := labels.Set(ds.Spec.Template.Labels)
	if sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector); err != nil || !sel.Matches(agent) {
		t.Errorf("the DaemonSet's selector %v does not select its pods (%v)", ds.Spec.Selector, err)
	}
	if np, ok := r.objs["NetworkPolicy/"+full+"-metrics"].(*networkingv1.NetworkPolicy); !ok {
		t.Error("no NetworkPolicy for the agent")
	} else {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !sel.Matches(agent) {
			t.Errorf("the NetworkPolicy does not select the agent's pods: %v", err)
		}
		if r.has("Deployment", full+"-webhook") && sel.Matches(podLabels(t, r, "Deployment", full+"-webhook")) {
			t.Error("the NetworkPolicy selects the webhook's pods: the API server could not call it")
		}
	}
}

func chartAppVersion(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(chartPath(t), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil || c.AppVersion == "" {
		t.Fatalf("Chart.yaml: appVersion %q, %v", c.AppVersion, err)
	}
	return c.AppVersion
}

// checkWebhook: the Deployment runs the webhook unprivileged with the
// arguments that name its Service and configurations; the Service reaches
// it; the two configurations call that Service on their paths with the
// rules, failure policy and namespace selector the design says; with
// cert-manager, the certificate's secret is mounted and its CA injected.
func checkWebhook(t *testing.T, r rendered, full string) {
	cm := slices.Contains(r.v.sets, "webhook.certManager.enabled=true")
	dep := r.get(t, "Deployment", full+"-webhook").(*appsv1.Deployment)
	pod := dep.Spec.Template.Spec
	if pod.HostPID || pod.HostNetwork || len(pod.Containers) != 1 {
		t.Fatalf("webhook pod: hostPID %v, hostNetwork %v, %d containers", pod.HostPID, pod.HostNetwork, len(pod.Containers))
	}
	for _, vol := range pod.Volumes {
		if vol.HostPath != nil {
			t.Errorf("webhook pod mounts host path %s", vol.HostPath.Path)
		}
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Privileged != nil && *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("webhook container security context %+v: want unprivileged, no capabilities", sc)
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("the webhook may run as root")
	}
	svc := r.get(t, "Service", full+"-webhook").(*corev1.Service)
	wantArgs := []string{"--listen=:9443", "--namespace=$(POD_NAMESPACE)", "--service=" + svc.Name, "--agent-config=/etc/nri-armor/nri-armor.yaml"}
	if r.v.appArmor {
		wantArgs = append(wantArgs, "--apparmor")
	}
	if r.v.seccompLocalhost {
		wantArgs = append(wantArgs, "--seccomp-localhost")
	}
	if cm {
		wantArgs = append(wantArgs, "--tls-dir=/tls")
	} else {
		wantArgs = append(wantArgs, "--webhook-config="+full)
	}
	if !slices.Equal(c.Command, []string{"/usr/bin/nri-armor-webhook"}) || !slices.Equal(c.Args, wantArgs) {
		t.Errorf("webhook runs %v %v, want /usr/bin/nri-armor-webhook %v", c.Command, c.Args, wantArgs)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.String() != "https" ||
		len(c.Ports) != 1 || c.Ports[0].Name != "https" || c.Ports[0].ContainerPort != 9443 {
		t.Errorf("webhook Service ports %+v, container ports %+v: want 443 → 9443", svc.Spec.Ports, c.Ports)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Error("the webhook Service does not select the webhook's pods")
	}
	if labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels(t, r, "DaemonSet", full)) {
		t.Error("the webhook Service selects the agent's pods")
	}

	ref := func(cc admissionregistrationv1.WebhookClientConfig, path string) {
		s := cc.Service
		if s == nil || s.Name != svc.Name || s.Namespace != r.v.namespace || s.Path == nil || *s.Path != path || s.Port == nil || *s.Port != 443 || cc.URL != nil {
			t.Errorf("webhook client config %+v, want service %s/%s:443%s", cc, r.v.namespace, svc.Name, path)
		}
		if cc.CABundle != nil {
			t.Error("caBundle set in the chart: an upgrade would overwrite the webhook's own")
		}
	}
	wantAnn := map[string]string(nil)
	if cm {
		cert := r.get(t, "Certificate", full+"-webhook-tls").(*certManagerCertificate)
		wantAnn = map[string]string{"cert-manager.io/inject-ca-from": r.v.namespace + "/" + cert.Name}
		if !slices.Contains(cert.Spec.DNSNames, svc.Name+"."+r.v.namespace+".svc") {
			t.Errorf("certificate's names %v lack the Service's", cert.Spec.DNSNames)
		}
		iss := r.get(t, "Issuer", cert.Spec.IssuerRef.Name).(*certManagerIssuer)
		if iss.Spec.SelfSigned == nil || cert.Spec.IssuerRef.Kind != "Issuer" {
			t.Errorf("issuer %+v, ref %+v", iss.Spec, cert.Spec.IssuerRef)
		}
		mounted := false
		for _, vol := range pod.Volumes {
			mounted = mounted || vol.Secret != nil && vol.Secret.SecretName == cert.Spec.SecretName
		}
		if !mounted || len(c.VolumeMounts) != 2 || c.VolumeMounts[1].MountPath != "/tls" || !c.VolumeMounts[1].ReadOnly {
			t.Errorf("the certificate's secret %s is not mounted read-only at /tls", cert.Spec.SecretName)
		}
	} else if r.has("Certificate", full+"-webhook-tls") || len(pod.Volumes) != 1 {
		t.Error("self-managed TLS, yet a Certificate or a volume is rendered")
	}

	vwc := r.get(t, "ValidatingWebhookConfiguration", full).(*admissionregistrationv1.ValidatingWebhookConfiguration)
	if !reflect.DeepEqual(vwc.Annotations, wantAnn) || len(vwc.Webhooks) != 1 {
		t.Fatalf("validating configuration: annotations %v (want %v), %d webhooks", vwc.Annotations, wantAnn, len(vwc.Webhooks))
	}
	vw := vwc.Webhooks[0]
	ref(vw.ClientConfig, "/validate-policy")
	wantRules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{"CREATE", "UPDATE"},
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{"security.kubearmor.com"}, APIVersions: []string{"v1"},
			Resources: []string{"kubearmorpolicies", "kubearmorclusterpolicies", "kubearmorhostpolicies"},
		},
	}}
	if !reflect.DeepEqual(vw.Rules, wantRules) || deref(vw.FailurePolicy) != admissionregistrationv1.Fail ||
		deref(vw.SideEffects) != admissionregistrationv1.SideEffectClassNone || !slices.Equal(vw.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("validating webhook %+v", vw)
	}

	// One pod webhook, and a second for the namespaces the nodes trust
	// (weakenNamespaces) when there are any: both the same but for their
	// namespace selectors.
	trusted := slices.ContainsFunc(r.v.sets, func(s string) bool { return strings.HasPrefix(s, "agent.config.weakenNamespaces=") })
	mwc := r.get(t, "MutatingWebhookConfiguration", full).(*admissionregistrationv1.MutatingWebhookConfiguration)
	wantHooks := 1
	if trusted {
		wantHooks = 2
	}
	if !reflect.DeepEqual(mwc.Annotations, wantAnn) || len(mwc.Webhooks) != wantHooks {
		t.Fatalf("mutating configuration: annotations %v (want %v), %d webhooks, want %d", mwc.Annotations, wantAnn, len(mwc.Webhooks), wantHooks)
	}
	wantRules = []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{"CREATE"},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}}
	var sels []labels.Selector
	for _, mw := range mwc.Webhooks {
		ref(mw.ClientConfig, "/mutate-pod")
		if !reflect.DeepEqual(mw.Rules, wantRules) || deref(mw.FailurePolicy) != admissionregistrationv1.Fail ||
			deref(mw.SideEffects) != admissionregistrationv1.SideEffectClassNone || !slices.Equal(mw.AdmissionReviewVersions, []string{"v1"}) ||
			deref(mw.ReinvocationPolicy) != admissionregistrationv1.IfNeededReinvocationPolicy {
			t.Errorf("mutating webhook %+v", mw)
		}
		sel, err := metav1.LabelSelectorAsSelector(mw.NamespaceSelector)
		if err != nil {
			t.Fatal(err)
		}
		sels = append(sels, sel)
	}
	// Which namespaces' pods are reviewed, as the API server matches them:
	// the label opts out only a namespace the nodes trust; the release
	// namespace never goes (listed as trusted or not).
	for ns, l := range map[string]labels.Set{
		r.v.namespace:   {},
		"shop":          {},
		"shop-labelled": {"nri-armor.dev/webhook": "disabled"},
		"trusted":       {},
		"trusted-opted": {"nri-armor.dev/webhook": "disabled"},
	} {
		name, _, _ := strings.Cut(ns, "-opted")
		set := labels.Set{"kubernetes.io/metadata.name": name}
		for k, v := range l {
			set[k] = v
		}
		n := 0
		for _, sel := range sels {
			if sel.Matches(set) {
				n++
			}
		}
		want := 1
		if ns == r.v.namespace || ns == "trusted-opted" && trusted {
			want = 0
		}
		if n != want {
			t.Errorf("pods of namespace %s (%v) sent to %d pod webhooks, want %d", name, set, n, want)
		}
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// checkRBAC: the exact rules of both roles, and no Role, no wildcard, no
// Secrets, no way into pods anywhere; each binding binds its own role to
// its own service account.
func checkRBAC(t *testing.T, r rendered, full string) {
	fromK8s := !slices.Contains(r.v.sets, "policies.fromKubernetes=false")
	cm := slices.Contains(r.v.sets, "webhook.certManager.enabled=true")
	policyKinds := []string{"kubearmorpolicies", "kubearmorclusterpolicies", "kubearmorhostpolicies"}
	read := []string{"get", "list", "watch"}
	want := map[string][]rbacv1.PolicyRule{
		full + "-webhook": {
			{APIGroups: []string{"security.kubearmor.com"}, Resources: policyKinds, Verbs: read},
			{APIGroups: []string{"security.kubearmor.com"}, Resources: []string{"kubearmorpolicies/status", "kubearmorclusterpolicies/status", "kubearmorhostpolicies/status"}, Verbs: []string{"update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: read},
		},
	}
	if !cm {
		want[full+"-webhook"] = append(want[full+"-webhook"], rbacv1.PolicyRule{
			APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"validatingwebhookconfigurations", "mutatingwebhookconfigurations"},
			ResourceNames: []string{full}, Verbs: []string{"get", "update", "patch"},
		})
	}
	if fromK8s {
		want[full+"-agent"] = []rbacv1.PolicyRule{
			{APIGroups: []string{"security.kubearmor.com"}, Resources: policyKinds, Verbs: read},
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: read},
		}
	}
	got := map[string][]rbacv1.PolicyRule{}
	for key, o := range r.objs {
		switch o := o.(type) {
		case *rbacv1.Role, *rbacv1.RoleBinding:
			t.Errorf("%s: the chart needs no namespaced role", key)
		case *rbacv1.ClusterRole:
			got[o.Name] = o.Rules
			if o.AggregationRule != nil {
				t.Errorf("%s aggregates other roles", key)
			}
			for _, rule := range o.Rules {
				for _, s := range slices.Concat(rule.APIGroups, rule.Resources, rule.Verbs, rule.ResourceNames, rule.NonResourceURLs) {
					if strings.Contains(s, "*") {
						t.Errorf("%s: wildcard in %+v", key, rule)
					}
				}
				for _, res := range rule.Resources {
					if res == "secrets" || res == "pods/exec" || res == "pods/attach" || res == "pods/portforward" || res == "nodes/proxy" || res == "serviceaccounts/token" {
						t.Errorf("%s grants %s", key, res)
					}
				}
				for _, verb := range rule.Verbs {
					if verb == "escalate" || verb == "bind" || verb == "impersonate" {
						t.Errorf("%s grants %s", key, verb)
					}
				}
			}
		case *rbacv1.ClusterRoleBinding:
			if o.RoleRef.Kind != "ClusterRole" || o.RoleRef.Name != o.Name || len(o.Subjects) != 1 ||
				o.Subjects[0].Kind != "ServiceAccount" || o.Subjects[0].Name != o.Name || o.Subjects[0].Namespace != r.v.namespace {
				t.Errorf("%s binds %+v to %+v: want its own ClusterRole to its own service account", key, o.RoleRef, o.Subjects)
			}
			if !r.has("ServiceAccount", o.Name) || !r.has("ClusterRole", o.RoleRef.Name) {
				t.Errorf("%s: service account or role not rendered", key)
			}
		case *corev1.ServiceAccount:
			if o.AutomountServiceAccountToken == nil || *o.AutomountServiceAccountToken {
				t.Errorf("%s mounts its token by default: only the pods that use it ask for it", key)
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ClusterRoles:\n got %+v\nwant %+v", got, want)
	}
}

// checkMetrics: the metrics Service selects the agent's pods on both
// metrics ports, and the ServiceMonitor (when on) selects that Service.
func checkMetrics(t *testing.T, r rendered, full string) {
	svc := r.get(t, "Service", full+"-metrics").(*corev1.Service)
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels(t, r, "DaemonSet", full)) {
		t.Errorf("metrics Service %+v: want headless, selecting the agent's pods", svc.Spec)
	}
	var ports []string
	for _, p := range svc.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%s:%d", p.Name, p.Port))
	}
	if !slices.Equal(ports, []string{"metrics:9481", "tracer-metrics:9482"}) {
		t.Errorf("metrics Service ports %v", ports)
	}
	sm, ok := r.objs["ServiceMonitor/"+full].(*serviceMonitor)
	if on := slices.Contains(r.v.sets, "metrics.serviceMonitor.enabled=true"); ok != on {
		t.Fatalf("ServiceMonitor rendered: %v, want %v", ok, on)
	}
	if !ok {
		return
	}
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(svc.Labels)) || !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{r.v.namespace}) {
		t.Errorf("ServiceMonitor does not select Service %s: %+v (%v)", svc.Name, sm.Spec, err)
	}
	if len(sm.Spec.Endpoints) != 2 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[1].Port != "tracer-metrics" {
		t.Errorf("ServiceMonitor endpoints %+v", sm.Spec.Endpoints)
	}
}

// TestImageHoldsCommands: every program a rendered container runs is one
// the image recipe (hack/image/build.sh) puts in the image.
func TestImageHoldsCommands(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "hack", "image", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`NRI_ARMOR_IMAGE_BINARIES:-([^}]*)}`).FindSubmatch(src)
	if m == nil {
		t.Fatal("hack/image/build.sh: no default NRI_ARMOR_IMAGE_BINARIES")
	}
	inImage := map[string]bool{"/usr/bin/nsenter": true, "/usr/sbin/apparmor_parser": true}
	for _, b := range strings.Fields(string(m[1])) {
		inImage["/usr/bin/"+b] = true
	}
	r := render(t, extras)
	for key, o := range r.objs {
		var pod corev1.PodSpec
		switch o := o.(type) {
		case *appsv1.DaemonSet:
			pod = o.Spec.Template.Spec
		case *appsv1.Deployment:
			pod = o.Spec.Template.Spec
		default:
			continue
		}
		for _, c := range pod.Containers {
			cmd := slices.Clone(c.Command)
			if len(cmd) > 0 && filepath.Base(cmd[0]) == "nsenter" {
				if i := slices.Index(cmd, "--"); i >= 0 && i+1 < len(cmd) {
					cmd = []string{cmd[0], cmd[i+1]}
				}
			} else if len(cmd) > 1 {
				cmd = cmd[:1]
			}
			for _, p := range cmd {
				if !inImage[p] {
					t.Errorf("%s: container %s runs %s, which hack/image/build.sh does not put in the image", key, c.Name, p)
				}
			}
			if len(cmd) == 0 {
				t.Errorf("%s: container %s has no command (the image has no entrypoint)", key, c.Name)
			}
		}
	}
}
