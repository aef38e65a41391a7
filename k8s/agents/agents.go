// Package agents reaches the nri-armor agents of a cluster through its API
// server, for armorctl: the agent pods (the chart's DaemonSet), and a port
// of one forwarded to this machine as `kubectl port-forward` does —
// armor-tracer serves its alert stream on its pod's loopback only
// (docs/security.md), so the API server's port-forward, through the
// kubelet into the pod's network namespace, is the one way in from
// outside the node.
package agents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
)

// The chart's defaults (charts/nri-armor): its namespace and the labels of
// the agent DaemonSet's pods.
const (
	DefaultNamespace = "nri-armor"
	DefaultSelector  = "app.kubernetes.io/name=nri-armor,app.kubernetes.io/component=agent"
)

// Config loads a client configuration as kubectl does: kubeconfig when
// given, else $KUBECONFIG or ~/.kube/config, else the in-cluster one;
// context "" is the current one.
func Config(kubeconfig, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
}

// Pods lists the agent pods in namespace matching selector, only those on
// node when node is not "", sorted by node. It is an error when none
// matches, or when one that matches is not running (its node's alerts
// would be missing without a word).
func Pods(ctx context.Context, cs kubernetes.Interface, namespace, selector, node string) ([]corev1.Pod, error) {
	opts := metav1.ListOptions{LabelSelector: selector}
	if node != "" {
		opts.FieldSelector = "spec.nodeName=" + node
	}
	list, err := cs.CoreV1().Pods(namespace).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("listing the agent pods in namespace %s: %w", namespace, err)
	}
	where := fmt.Sprintf("namespace %s with labels %s", namespace, selector)
	if node != "" {
		where += " on node " + node
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("no nri-armor agent pod in %s", where)
	}
	var errs []error
	for _, p := range list.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			errs = append(errs, fmt.Errorf("agent pod %s/%s on node %q is %s, not running", p.Namespace, p.Name, p.Spec.NodeName, phase(&p)))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	pods := list.Items
	slices.SortFunc(pods, func(a, b corev1.Pod) int {
		if a.Spec.NodeName != b.Spec.NodeName {
			if a.Spec.NodeName < b.Spec.NodeName {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return pods, nil
}

func phase(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "terminating"
	}
	if p.Status.Phase == "" {
		return "Pending"
	}
	return string(p.Status.Phase)
}

// Forward forwards port of pod to a free port on this machine's loopback
// until ctx ends, and returns that local address (host:port). As kubectl:
// a WebSocket tunnel first, SPDY when the API server cannot upgrade to it.
func Forward(ctx context.Context, cfg *rest.Config, pod *corev1.Pod, port int) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return "", err
	}
	ws, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, cfg)
	if err != nil {
		return "", err
	}
	dialer := portforward.NewFallbackDialerForStreaming(ws, spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, u),
		func(err error) bool { return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err) })
	ready := make(chan struct{})
	fw, err := portforward.NewOnAddressesForStreamingWithContext(ctx, dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, ready, io.Discard, io.Discard)
	if err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		if err == nil {
			err = errors.New("the port-forward ended before it was ready")
		}
		return "", fmt.Errorf("port-forward to pod %s/%s port %d: %w", pod.Namespace, pod.Name, port, err)
	case <-ctx.Done():
		return "", ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		return "", fmt.Errorf("port-forward to pod %s/%s port %d: no local port (%v)", pod.Namespace, pod.Name, port, err)
	}
	return "127.0.0.1:" + strconv.Itoa(int(ports[0].Local)), nil
}
