package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reroll/reroll/pkg/controller"
	"github.com/reroll/reroll/pkg/plan"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// connector builds the clients from the options; tests replace it.
type connector func(o *options) (*rest.Config, kubernetes.Interface, string, error)

// options are the flags every command takes: kubectl's, and the settings
// the plugin must share with the controller to decide as it does.
type options struct {
	kubeconfig, context, namespace string
	allNamespaces                  bool
	output                         string

	controllerNamespace, hashKeySecret string
	extraKinds                         string
	reloaderAnnotations, autoAll       bool
	waves                              string
	rolloutWindow                      string

	// parsedExtraKinds and parsedWaves are --extra-kinds and --waves as
	// validate parsed them.
	parsedExtraKinds []controller.ExtraKind
	parsedWaves      []plan.WaveStep
	parsedWindow     plan.Windows

	// dryRun is --dry-run of the commands that write.
	dryRun bool
	// file is impact's -f.
	file  string
	stdin io.Reader
	// connector builds the clients.
	connector connector
}

// define defines the common flags, with kubectl's short forms.
func (o *options) define(fs *flag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file. Default: $KUBECONFIG or ~/.kube/config.")
	fs.StringVar(&o.context, "context", "", "The kubeconfig context to use.")
	for _, name := range []string{"namespace", "n"} {
		fs.StringVar(&o.namespace, name, "", "The namespace. Default: the context's.")
	}
	for _, name := range []string{"all-namespaces", "A"} {
		fs.BoolVar(&o.allNamespaces, name, false, "Every namespace.")
	}
	for _, name := range []string{"output", "o"} {
		fs.StringVar(&o.output, name, "table", "Output format: table, json or yaml.")
	}
	fs.StringVar(&o.controllerNamespace, "controller-namespace", "", "reroll's namespace, where its hash key Secret is. Default: found by the labels reroll gives that Secret.")
	fs.StringVar(&o.hashKeySecret, "hash-key-secret", "reroll-hash-key", "The Secret holding reroll's hash key.")
	fs.StringVar(&o.extraKinds, "extra-kinds", "", "reroll's --extra-kinds: custom kinds with a pod template.")
	fs.BoolVar(&o.reloaderAnnotations, "reloader-annotations", false, "reroll's --reloader-annotations.")
	fs.BoolVar(&o.autoAll, "auto-all", false, "reroll's --auto-all.")
	fs.StringVar(&o.waves, "waves", "", "reroll's --waves.")
	fs.StringVar(&o.rolloutWindow, "rollout-window", "", "reroll's --rollout-window.")
}

// validate checks the flags, and keeps the values it parses.
func (o *options) validate() error {
	if !slices.Contains([]string{"table", "json", "yaml"}, o.output) {
		return fmt.Errorf("-o must be table, json or yaml, not %q", o.output)
	}
	var err error
	if o.parsedExtraKinds, err = controller.ParseExtraKinds(o.extraKinds); err != nil {
		return err
	}
	if o.parsedWaves, err = plan.ParseWaves(o.waves); err != nil {
		return fmt.Errorf("--waves: %w", err)
	}
	if o.parsedWindow, err = plan.ParseWindows(o.rolloutWindow); err != nil {
		return fmt.Errorf("--rollout-window: %w", err)
	}
	return nil
}

// clientConfig returns the kubeconfig as kubectl reads it, with --context.
func (o *options) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.context})
}

// connect returns the REST config, a client, and the namespace to use
// ("" with -A).
func (o *options) connect() (*rest.Config, kubernetes.Interface, string, error) {
	return o.connector(o)
}

// connectKubeconfig is the connector of kubectl's kubeconfig rules.
func connectKubeconfig(o *options) (*rest.Config, kubernetes.Interface, string, error) {
	cc := o.clientConfig()
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, nil, "", errors.New("no kubeconfig: set --kubeconfig or $KUBECONFIG")
		}
		return nil, nil, "", err
	}
	cfg.UserAgent = "kubectl-reroll/" + version
	cfg.QPS, cfg.Burst = 50, 100
	// Protobuf decodes several times faster than JSON, and status -A reads
	// every ConfigMap and Secret of the cluster.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, "", err
	}
	ns := o.namespace
	if o.allNamespaces {
		return cfg, client, "", nil
	}
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil {
			return nil, nil, "", err
		}
	}
	return cfg, client, ns, nil
}
