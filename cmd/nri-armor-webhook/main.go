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
	"time"

	"github.com/nri-armor/nri-armor/enforce/apparmor"
	"github.com/nri-armor/nri-armor/internal/cli"
	"github.com/nri-armor/nri-armor/k8s/source"
	"github.com/nri-armor/nri-armor/k8s/webhook"
	"github.com/nri-armor/nri-armor/policy"
	"github.com/nri-armor/nri-armor/store"
	"k8s.io/client-go/dynamic"
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
	agentConfig := fs.String("agent-config", "", "the agents' nri-armor.yaml, for the nodes' defaults (empty: nri-armor's defaults)")
	appArmor := fs.Bool("apparmor", false, "the nodes enforce with AppArmor: pods whose rules need it get the profile their node's agent loads")
	seccompLocalhost := fs.Bool("seccomp-localhost", false, "the nodes' runtimes take syscall rules through a Localhost seccomp profile (CRI-O, containerd < 2.3): pods with syscall rules get the profile their node's agent writes")
	nodeSelector := fs.String("node-selector", "", "k=v,... where the agents run: added to the pods given a profile")
	syncTimeout := fs.Duration("sync-timeout", time.Minute, "longest wait for the first list of the policy objects")
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
	defaults := policy.DefaultDefaults()
	if *agentConfig != "" {
		if defaults, err = policy.ReadNodeDefaults(*agentConfig, "--agent-config"); err != nil {
			return cli.Fail(stderr, "nri-armor-webhook", err)
		}
	}
	sel, err := cli.KeyValues(*nodeSelector)
	if err != nil {
		return cli.Fail(stderr, "nri-armor-webhook", fmt.Errorf("--node-selector: %w", err))
	}
	// Policies' raw AppArmor rules are checked as the agents check them.
	policy.SetAppArmorChecker(apparmor.Parser{}.RawChecker())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The pods' policies, watched as the agents watch them.
	policies, err := store.New(nil, store.Options{Logger: log})
	if err != nil {
		return cli.Fail(stderr, "nri-armor-webhook", err)
	}
	defer policies.Close()
	// Each policy's verdict goes in its status, written from here only.
	// client-go's default rate (5 requests/s) would take a minute over a
	// few hundred policies applied at once.
	statusCfg := rest.CopyConfig(cfg)
	statusCfg.QPS, statusCfg.Burst = 50, 100
	dyn, err := dynamic.NewForConfig(statusCfg)
	if err != nil {
		return cli.Fail(stderr, "nri-armor-webhook", err)
	}
	status := &webhook.Status{Client: dyn, Log: log}
	go status.Run(ctx)
	src, err := source.New(source.Options{Config: cfg, Logger: log, Observe: status.Observe,
		Sink: func(put map[string][]byte, removed []string, changed time.Time) error {
			return policies.UpdateDocuments("kubernetes", put, removed, changed)
		}})
	if err == nil {
		err = src.Start(ctx, *syncTimeout)
	}
	if err != nil {
		log.Errorf("%v", err)
		return 1
	}
	mutator := &webhook.PodMutator{Catalog: policies.Catalog, Defaults: defaults, AppArmor: *appArmor, SeccompLocalhost: *seccompLocalhost, NodeSelector: sel, Compiler: policy.NewCompiler(0)}
	err = webhook.Serve(ctx, webhook.Options{
		Listen: *listen, Config: cfg, TLSDir: *tlsDir, Hosts: h, WebhookConfig: *webhookConfig,
		Log: log, Server: &webhook.Server{Log: log, Mutate: mutator.Review},
	})
	if err != nil && ctx.Err() == nil {
		log.Errorf("%v", err)
		return 1
	}
	return 0
}
