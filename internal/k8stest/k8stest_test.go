//go:build k8s

package k8stest_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nri-armor/nri-armor/internal/k8stest"
)

var cluster *k8stest.Cluster

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, &cluster)) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// The API server answers with the pinned version, over the admin identity.
func TestAPIServerAnswers(t *testing.T) {
	k8stest.Require(t, cluster)
	t.Logf("ready after %v", cluster.ReadyAfter)
	v, err := cluster.Clientset().Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.Major != "1" || !strings.HasPrefix(v.GitVersion, "v1.") {
		t.Errorf("server version %+v, want a v1.x release (hack/k8s/build.sh stamps it)", v)
	}
	if _, err := cluster.Clientset().CoreV1().Namespaces().Get(ctx(t), "kube-system", metav1.GetOptions{}); err != nil {
		t.Errorf("get namespace kube-system: %v", err)
	}
}

func TestKubectl(t *testing.T) {
	k8stest.Require(t, cluster)
	out, _, err := cluster.Kubectl(ctx(t), nil, "get", "ns", "default", "-o", "jsonpath={.metadata.name} {.status.phase}")
	if err != nil {
		t.Fatal(err)
	}
	if out != "default Active" {
		t.Errorf("kubectl get ns default: %q, want %q", out, "default Active")
	}
	// kubectl apply from stdin, as the tests of policies will.
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: smoke, namespace: default}\ndata: {a: b}\n"
	if _, stderr, err := cluster.Kubectl(ctx(t), []byte(cm), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v (%s)", err, stderr)
	}
	got, err := cluster.Clientset().CoreV1().ConfigMaps("default").Get(ctx(t), "smoke", metav1.GetOptions{})
	if err != nil || got.Data["a"] != "b" {
		t.Errorf("applied ConfigMap: %v, %v", got, err)
	}
	// A refusal is an error with the server's message on stderr.
	if _, stderr, err := cluster.Kubectl(ctx(t), nil, "get", "ns", "no-such-namespace"); err == nil || !strings.Contains(stderr, "not found") {
		t.Errorf("kubectl get of a missing namespace: err %v, stderr %q", err, stderr)
	}
}

// RBAC is in force: an unprivileged user is refused, both as kubectl auth
// can-i says and for a real request; a binding grants it.
func TestRBACDeniesUnprivileged(t *testing.T) {
	k8stest.Require(t, cluster)
	const user = "smoke-user"
	out, _, err := cluster.Kubectl(ctx(t), nil, "auth", "can-i", "list", "secrets", "-n", "default", "--as", user)
	// can-i prints no and exits 1 for a denial.
	if err == nil || strings.TrimSpace(out) != "no" {
		t.Errorf("kubectl auth can-i list secrets --as %s: %q, %v; want no", user, out, err)
	}
	cs, err := kubernetes.NewForConfig(cluster.Impersonate(user, "smoke-group"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Secrets("default").List(ctx(t), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("list secrets as %s: %v, want Forbidden", user, err)
	}
	if !strings.Contains(err.Error(), `"`+user+`"`) {
		t.Errorf("the refusal does not name the user: %v", err)
	}

	// A service account with a real token is refused the same way.
	if err := cluster.Namespace(ctx(t), "smoke", map[string]string{"k8stest": "smoke"}); err != nil {
		t.Fatal(err)
	}
	saCfg, err := cluster.ServiceAccountConfig("smoke", "agent")
	if err != nil {
		t.Fatal(err)
	}
	sacs, err := kubernetes.NewForConfig(saCfg)
	if err != nil {
		t.Fatal(err)
	}
	review, err := sacs.AuthenticationV1().SelfSubjectReviews().Create(ctx(t), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("self subject review with the token: %v", err)
	}
	if got := review.Status.UserInfo.Username; got != "system:serviceaccount:smoke:agent" {
		t.Errorf("token authenticates as %q", got)
	}
	if _, err := sacs.CoreV1().Pods("smoke").List(ctx(t), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("service account lists pods: %v, want Forbidden", err)
	}

	// Granting the user a Role makes the same request pass: the refusal was
	// RBAC's, not a broken identity.
	rbac := `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-pods, namespace: smoke}
rules: [{apiGroups: [""], resources: [pods], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: smoke}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-pods}
subjects: [{kind: ServiceAccount, name: agent, namespace: smoke}]
`
	if _, stderr, err := cluster.Kubectl(ctx(t), []byte(rbac), "apply", "-f", "-"); err != nil {
		t.Fatalf("%v (%s)", err, stderr)
	}
	sar := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "smoke", Verb: "list", Resource: "pods"}}}
	deadline := time.Now().Add(5 * time.Second)
	for {
		// RBAC reads bindings from an informer: allow it a moment.
		_, err := sacs.CoreV1().Pods("smoke").List(ctx(t), metav1.ListOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			res, _ := sacs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx(t), sar, metav1.CreateOptions{})
			t.Fatalf("list pods after the RoleBinding: %v (review %+v)", err, res.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A pod in a namespace Namespace set up passes the ServiceAccount
	// admission plugin (it needs the default service account).
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "smoke"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := cluster.Clientset().CoreV1().Pods("smoke").Create(ctx(t), pod, metav1.CreateOptions{}); err != nil {
		t.Errorf("create pod: %v", err)
	}
}

// Nothing the harness starts listens beyond loopback: every listening TCP
// socket of its etcd and kube-apiserver is on 127.0.0.1 or ::1.
func TestListensOnLoopbackOnly(t *testing.T) {
	k8stest.Require(t, cluster)
	bin, err := k8stest.BinDir(k8stest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Socket inodes of the processes running the cached binaries.
	inodes := map[string]string{}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		exe, err := os.Readlink(p + "/exe")
		if err != nil || filepath.Dir(exe) != bin {
			continue
		}
		fds, _ := filepath.Glob(p + "/fd/*")
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = filepath.Base(exe)
			}
		}
	}
	listening := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			// local_address st ... inode: state 0A is LISTEN.
			if len(fields) < 10 || fields[3] != "0A" {
				continue
			}
			name, ours := inodes[fields[9]]
			if !ours {
				continue
			}
			listening++
			addr := strings.Split(fields[1], ":")[0]
			// 0100007F is 127.0.0.1 (little-endian); ::1 in /proc/net/tcp6.
			if !strings.HasSuffix(addr, "7F") && addr != "00000000000000000000000001000000" {
				t.Errorf("%s listens on %s (%s), not loopback", name, fields[1], f)
			}
		}
	}
	t.Logf("%d listening sockets, all on loopback", listening)
	// etcd's client and peer ports and the API server's secure port at least.
	if listening < 3 {
		t.Errorf("found %d listening sockets of the cluster's processes, want at least 3", listening)
	}
}

// UserKubeconfig's certificate authenticates as the user in the groups:
// a kubelet's identity is what the API server's Node authorizer sees.
func TestUserKubeconfig(t *testing.T) {
	k8stest.Require(t, cluster)
	path, err := cluster.UserKubeconfig("node.kubeconfig", "system:node:n1", "system:nodes")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx(t), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := r.Status.UserInfo; u.Username != "system:node:n1" || !slices.Contains(u.Groups, "system:nodes") {
		t.Errorf("authenticated as %q in %v; want system:node:n1 in system:nodes", u.Username, u.Groups)
	}
	// The Node authorizer: a node may read its own Node, not list secrets.
	if _, err := cs.CoreV1().Secrets("default").List(ctx(t), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing secrets as a node: %v; want forbidden", err)
	}
}
