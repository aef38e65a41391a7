package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/internal/cli"
	"github.com/nri-armor/nri-armor/k8s/webhook"
	"github.com/nri-armor/nri-armor/policy"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("nri-armor-webhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":9443", "HTTPS address of the webhooks")
	namespace := fs.String("namespace", os.Getenv("POD_NAMESPACE"), "namespace of the webhook's Service")
	service := fs.String("service", "nri-armor-webhook", "name of the webhook's Service")
	hosts := fs.String("hosts", "", "comma-separated names or IPs for the self-signed certificate (default: the Service's names)")
	webhookConfig := fs.String("webhook-config", "nri-armor", "name of the Validating- and MutatingWebhookConfiguration whose caBundle this process sets")
	tlsDir := fs.String("tls-dir", "", "directory with tls.crt and tls.key (cert-manager); empty makes a self-signed certificate")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file; empty means the in-cluster service account")
	logLevel := fs.String("log-level", "info", "log level")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := cli.Logger(stderr, *logLevel, "text")
	if err != nil {
		return cli.Fail(stderr, "nri-armor-webhook", err)
	}
	var cfg *rest.Config
	if *kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", *kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return cli.Fail(stderr, "nri-armor-webhook", fmt.Errorf("API server: %w", err))
	}
	h := webhook.ServiceHosts(*service, *namespace)
	if *hosts != "" {
		h = strings.Split(*hosts, ",")
	} else if *namespace == "" && *tlsDir == "" {
		return cli.Fail(stderr, "nri-armor-webhook", fmt.Errorf("--namespace (or POD_NAMESPACE) is needed to name the certificate"))
	}
	// Policies' raw AppArmor rules are checked as the agents check them.
	policy.SetAppArmorChecker(apparmor.Parser{}.RawChecker())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = webhook.Serve(ctx, webhook.Options{
		Listen: *listen, Config: cfg, TLSDir: *tlsDir, Hosts: h, WebhookConfig: *webhookConfig,
		Log: log, Server: &webhook.Server{Log: log},
	})
	if err != nil && ctx.Err() == nil {
		log.Errorf("%v", err)
		return 1
	}
	return 0
}
