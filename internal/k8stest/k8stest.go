// Package k8stest runs a real etcd and kube-apiserver for tests: the
// binaries hack/k8s/build.sh builds from the Go module proxy at pinned
// versions (no envtest download, no fake API server: nothing else can be
// fetched here, and the tests must see what a cluster does). Everything
// listens on loopback ports only, with certificates generated per cluster.
//
// Tests that use it carry the build tag k8s (make k8s). A test that cannot
// run because the binaries are missing fails, naming hack/k8s/build.sh; it
// skips only when NRI_ARMOR_SKIP_K8S=1 says so explicitly.
package k8stest

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// SkipVar names the variable that lets tests needing the API server skip
// where its binaries are missing. CI sets none: there they must run.
const SkipVar = "NRI_ARMOR_SKIP_K8S"

// CacheVar names the variable that overrides the cache hack/k8s/build.sh
// builds into (default .cache/k8s in the repository); binaries are in its bin/.
const CacheVar = "K8S_CACHE"

// AdminUser is the user name in the admin client certificate (group
// system:masters).
const AdminUser = "nri-armor-admin"

// ErrNotBuilt is returned (wrapped) by Start when a binary is missing.
var ErrNotBuilt = errors.New("kubernetes test binaries not built")

const (
	// The Service IP range only feeds the API server's allocator: nothing
	// routes to it. The first address is the kubernetes Service's.
	serviceCIDR = "10.0.0.0/24"
	serviceIP   = "10.0.0.1"
	// Tokens this API server issues name it; any URL will do for tests.
	serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
)

// Options configure Start. The zero value is a working cluster.
type Options struct {
	// CacheDir holds bin/ with etcd, kube-apiserver and kubectl; default
	// $K8S_CACHE, else .cache/k8s in the repository above the working
	// directory.
	CacheDir string
	// Dir receives certificates, etcd's data, the logs (etcd.log,
	// kube-apiserver.log) and the kubeconfig; default a new temporary
	// directory, removed by Stop unless KeepDir.
	Dir     string
	KeepDir bool
	// APIServerArgs are appended to the fixed flags (a later flag wins).
	APIServerArgs []string
	// Timeout bounds the wait for etcd and /readyz; default 90 s.
	Timeout time.Duration
	// Logf, when set, receives progress lines (t.Logf, log.Printf).
	Logf func(format string, args ...any)
}

// Cluster is a running etcd and kube-apiserver.
type Cluster struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Kubeconfig is the path of the same admin identity as a kubeconfig.
	Kubeconfig string
	// Dir holds certificates, etcd's data, logs and the kubeconfig.
	Dir string
	// Host is the API server's URL (https://127.0.0.1:PORT).
	Host string
	// EtcdURL is etcd's client URL (http://127.0.0.1:PORT).
	EtcdURL string
	// ReadyAfter is how long Start took until /readyz answered ok.
	ReadyAfter time.Duration
	// CAData is the PEM of the cluster CA (it signed the serving and admin
	// certificates).
	CAData []byte

	bin       string
	pki       *pki
	removeDir bool
	etcd, kas *process
	clientset *kubernetes.Clientset
	stopOnce  sync.Once
	logf      func(format string, args ...any)
}

// process is a started child and the channel closed when it exits.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// Binaries are the names hack/k8s/build.sh builds by default.
var Binaries = []string{"etcd", "kube-apiserver", "kubectl"}

// BinDir returns where the binaries are looked up for opts, and an error
// wrapping ErrNotBuilt, naming hack/k8s/build.sh, when one is missing.
func BinDir(opts Options) (string, error) {
	cache := opts.CacheDir
	if cache == "" {
		cache = os.Getenv(CacheVar)
	}
	if cache == "" {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(root, ".cache", "k8s")
	}
	bin := filepath.Join(cache, "bin")
	var missing []string
	for _, name := range Binaries {
		if fi, err := os.Stat(filepath.Join(bin, name)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return bin, fmt.Errorf("%w: %s missing in %s: run hack/k8s/build.sh (or make k8s) to build them (set %s=1 to skip these tests explicitly)",
			ErrNotBuilt, strings.Join(missing, ", "), bin, SkipVar)
	}
	return bin, nil
}

// repoRoot is the directory holding go.mod above the working directory
// (a package's directory under go test).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("k8stest: go.mod not found above the working directory; set %s", CacheVar)
		}
		dir = parent
	}
}

// Start starts etcd and kube-apiserver on free loopback ports and returns
// when /readyz answers ok. On error nothing is left running.
func Start(opts Options) (_ *Cluster, err error) {
	begin := time.Now()
	bin, err := BinDir(opts)
	if err != nil {
		return nil, err
	}
	if opts.Timeout == 0 {
		opts.Timeout = 90 * time.Second
	}
	c := &Cluster{bin: bin, Dir: opts.Dir, logf: opts.Logf}
	if c.logf == nil {
		c.logf = func(string, ...any) {}
	}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "k8stest-"); err != nil {
			return nil, err
		}
		c.removeDir = !opts.KeepDir
	} else if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if tail := c.LogTail(30); tail != "" {
				err = fmt.Errorf("%w\n%s", err, tail)
			}
			c.Stop()
		}
	}()

	p, err := newPKI()
	if err != nil {
		return nil, fmt.Errorf("k8stest: certificates: %w", err)
	}
	files, err := p.write(c.Dir)
	if err != nil {
		return nil, err
	}
	c.CAData = p.caPEM
	c.pki = p

	// Ports are picked by listening on port 0 and closing; another process
	// could take one in between, which the start then reports.
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiserver := ports[0], ports[1], ports[2]
	c.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	c.Host = "https://127.0.0.1:" + strconv.Itoa(apiserver)

	// etcd: one member, plain HTTP on loopback (only this API server talks
	// to it), no fsync: a test's data need not survive a power cut, and
	// fsync dominates etcd's latency on a shared disk.
	c.etcd, err = c.spawn("etcd",
		"--name=k8stest",
		"--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+c.EtcdURL,
		"--advertise-client-urls="+c.EtcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=k8stest="+peerURL,
		"--initial-cluster-state=new",
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	if err := waitHTTP(ctx, c.etcd, http.DefaultClient, c.EtcdURL+"/health"); err != nil {
		return nil, fmt.Errorf("k8stest: etcd not healthy: %w", err)
	}

	args := []string{
		"--etcd-servers=" + c.EtcdURL,
		// Only loopback: the advertised address is the Service's endpoint,
		// which no reconciler writes (none: Endpoints may not hold
		// loopback addresses, and nothing routes to it anyway).
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(apiserver),
		"--tls-cert-file=" + files["serving.crt"],
		"--tls-private-key-file=" + files["serving.key"],
		"--cert-dir=" + filepath.Join(c.Dir, "apiserver-certs"),
		"--client-ca-file=" + files["ca.crt"],
		"--authorization-mode=Node,RBAC",
		// The default admission chain (it includes MutatingAdmissionWebhook
		// and ValidatingAdmissionWebhook, and ServiceAccount: see
		// Namespace for the default service account) plus NodeRestriction,
		// as kubeadm enables it, for a kubelet's requests.
		"--enable-admission-plugins=NodeRestriction",
		"--service-cluster-ip-range=" + serviceCIDR,
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + files["sa.pub"],
		"--service-account-signing-key-file=" + files["sa.key"],
		// The node agent's DaemonSet is privileged.
		"--allow-privileged=true",
		"--profiling=false",
		"--v=1",
	}
	args = append(args, opts.APIServerArgs...)
	c.kas, err = c.spawn("kube-apiserver", args...)
	if err != nil {
		return nil, err
	}

	c.Config = &rest.Config{
		Host: c.Host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   p.caPEM,
			CertData: p.adminCertPEM,
			KeyData:  p.adminKeyPEM,
		},
		// Tests create objects in bursts; client-go's default of 5 QPS
		// would make them wait on the client, not the server.
		QPS:   200,
		Burst: 400,
	}
	hc, err := rest.HTTPClientFor(c.Config)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, c.kas, hc, c.Host+"/readyz"); err != nil {
		return nil, fmt.Errorf("k8stest: kube-apiserver not ready: %w", err)
	}
	c.ReadyAfter = time.Since(begin)
	if c.clientset, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	if c.Kubeconfig, err = c.writeKubeconfig(p); err != nil {
		return nil, err
	}
	c.logf("k8stest: etcd %s, kube-apiserver %s ready after %v (dir %s)", c.EtcdURL, c.Host, c.ReadyAfter.Round(time.Millisecond), c.Dir)
	return c, nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// spawn starts bin/name with its output in Dir/name.log.
func (c *Cluster) spawn(name string, args ...string) (*process, error) {
	log, err := os.Create(filepath.Join(c.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = log, log
	// Killed with the test binary: a crashed or killed test leaves no
	// server behind holding its ports and files.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("k8stest: start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// waitHTTP polls url until it answers 200, the process exits or ctx ends.
func waitHTTP(ctx context.Context, p *process, hc *http.Client, url string) error {
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v) before %s answered", p.name, p.err, url)
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 in time; last: %s", url, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) writeKubeconfig(p *pki) (string, error) {
	return c.writeKubeconfigFor("kubeconfig", p.adminCertPEM, p.adminKeyPEM)
}

// writeKubeconfigFor writes Dir/name: this cluster, reached with the client
// certificate certPEM and its key.
func (c *Cluster) writeKubeconfigFor(name string, certPEM, keyPEM []byte) (string, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["k8stest"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["k8stest"] = &clientcmdapi.Context{Cluster: "k8stest", AuthInfo: "user", Namespace: "default"}
	cfg.CurrentContext = "k8stest"
	path := filepath.Join(c.Dir, name)
	return path, clientcmd.WriteToFile(*cfg, path)
}

// UserKubeconfig writes Dir/name, a kubeconfig authenticating as user in
// groups with a client certificate the cluster's CA signs: a kubelet's
// identity (system:node:NODE in system:nodes, which the Node authorizer and
// NodeRestriction check as in a real cluster) or any other user's.
func (c *Cluster) UserKubeconfig(name, user string, groups ...string) (string, error) {
	certPEM, keyPEM, err := c.pki.leaf(pkix.Name{CommonName: user, Organization: groups}, x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return "", fmt.Errorf("k8stest: a certificate for %s: %w", user, err)
	}
	return c.writeKubeconfigFor(name, certPEM, keyPEM)
}

// Stop ends kube-apiserver, then etcd (SIGTERM, SIGKILL after 10 s), and
// removes Dir if Start created it. Safe to call more than once.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		for _, p := range []*process{c.kas, c.etcd} {
			if p == nil {
				continue
			}
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if c.removeDir {
			os.RemoveAll(c.Dir)
		}
	})
}

// LogTail returns the last n lines of the kube-apiserver and etcd logs, each
// under a header, for a failure report.
func (c *Cluster) LogTail(n int) string {
	var b strings.Builder
	for _, name := range []string{"kube-apiserver", "etcd"} {
		data, err := os.ReadFile(filepath.Join(c.Dir, name+".log"))
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "--- last %d lines of %s ---\n%s\n", len(lines), filepath.Join(c.Dir, name+".log"), strings.Join(lines, "\n"))
	}
	return b.String()
}

// Clientset is a typed client with the admin identity.
func (c *Cluster) Clientset() *kubernetes.Clientset { return c.clientset }

// Kubectl runs the cached kubectl with the admin kubeconfig, stdin as its
// standard input (nil: none). err is non-nil when kubectl exits non-zero.
func (c *Cluster) Kubectl(ctx context.Context, stdin []byte, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "kubectl"), append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	// kubectl caches discovery under $HOME/.kube: keep it in Dir, never the
	// user's, and let no KUBECONFIG of the caller's environment leak in.
	cmd.Env = append(filteredEnv("KUBECONFIG", "HOME"), "HOME="+c.Dir)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), errb.String(), err
}

func filteredEnv(drop ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, d := range drop {
			if strings.HasPrefix(kv, d+"=") {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// Impersonate returns a copy of Config that acts as user in groups (the
// API server adds system:authenticated), for RBAC checks: the admin may
// impersonate anyone, and what the request may do is then the user's.
func (c *Cluster) Impersonate(user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}

// Namespace creates namespace name (if missing) with labels, and its
// default service account: kube-controller-manager creates that in a real
// cluster, and the ServiceAccount admission plugin refuses pods without it,
// but no controller manager runs here.
func (c *Cluster) Namespace(ctx context.Context, name string, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := c.clientset.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return c.ensureServiceAccount(ctx, name, "default")
}

func (c *Cluster) ensureServiceAccount(ctx context.Context, ns, name string) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	_, err := c.clientset.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// ServiceAccountConfig returns a client configuration authenticating as
// service account ns/name with a real token from the TokenRequest API (one
// hour), creating the service account if it is missing (the namespace must
// exist). Requests then pass the API server's own token authenticator, as
// an in-cluster client's would.
func (c *Cluster) ServiceAccountConfig(ns, name string) (*rest.Config, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.ensureServiceAccount(ctx, ns, name); err != nil {
		return nil, err
	}
	ttl := int64(3600)
	tr, err := c.clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("k8stest: token for %s/%s: %w", ns, name, err)
	}
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = tr.Status.Token
	return cfg, nil
}
