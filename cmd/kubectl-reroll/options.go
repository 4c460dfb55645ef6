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
	"github.com/reroll/reroll/pkg/flags"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// connector builds the clients from the options; tests replace it.
type connector func(o *options) (*rest.Config, kubernetes.Interface, string, error)

// options are the flags every command takes: kubectl's, where to find
// reroll, and reroll's decision settings, each an override of the value
// reroll published.
type options struct {
	kubeconfig, context, namespace string
	allNamespaces                  bool
	output                         string

	controllerNamespace, hashKeySecret string
	// overrides are the decision flags given on the command line, by name:
	// they replace what reroll published (see decisionsOf).
	overrides map[string]string

	// dryRun is --dry-run of the commands that write.
	dryRun bool
	// file is impact's -f.
	file  string
	stdin io.Reader
	// stderr receives the notes about the settings decided with.
	stderr io.Writer
	// connector builds the clients.
	connector connector
}

// define defines the common flags, with kubectl's short forms, and
// reroll's decision flags (controller.DecisionFlags), bound to a scratch
// value: what they were given is read back by givenOverrides.
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
	fs.StringVar(&o.hashKeySecret, "hash-key-secret", "reroll-hash-key", "The Secret holding reroll's hash key and its published settings.")
	decisionTable(&controller.Decisions{}).Register(fs)
}

// decisionTable returns the decision flags bound to d.
func decisionTable(d *controller.Decisions) *flags.Set {
	s := &flags.Set{}
	s.Section("reroll's settings", controller.DecisionFlags(d)...)
	return s
}

// givenOverrides records the decision flags given on the command line.
func (o *options) givenOverrides(fs *flag.FlagSet) {
	o.overrides = map[string]string{}
	names := map[string]bool{}
	for _, f := range controller.DecisionFlags(&controller.Decisions{}) {
		names[f.Name] = true
	}
	fs.Visit(func(f *flag.Flag) {
		if names[f.Name] {
			o.overrides[f.Name] = f.Value.String()
		}
	})
}

// validate checks the flags.
func (o *options) validate() error {
	if !slices.Contains([]string{"table", "json", "yaml"}, o.output) {
		return fmt.Errorf("-o must be table, json or yaml, not %q", o.output)
	}
	// The overrides alone, on the defaults: a bad value fails before any
	// request.
	_, _, err := decisionsOf(nil, o.overrides)
	return err
}

// decisionsOf builds reroll's decision settings from the values reroll
// published (nil: none) with overrides on top, through the same flag table
// reroll builds them with. It returns, for each override that changes a
// published value, a note "--waves=1,50% (reroll: 1,100%)", and the names
// reroll published that this plugin does not know.
func decisionsOf(published, overrides map[string]string) (controller.Decisions, []string, error) {
	var d controller.Decisions
	table := decisionTable(&d)
	unknown, err := table.Load(published)
	if err != nil {
		return d, nil, fmt.Errorf("reroll's published settings: %w", err)
	}
	if _, err := table.Load(overrides); err != nil {
		return d, nil, err
	}
	var notes []string
	for _, f := range table.All() {
		v, overridden := overrides[f.Name]
		was, ok := published[f.Name]
		if !ok {
			was = f.Default
		}
		if overridden && v != was {
			notes = append(notes, fmt.Sprintf("--%s=%s (reroll: %s)", f.Name, v, orEmpty(was)))
		}
	}
	for _, name := range unknown {
		notes = append(notes, fmt.Sprintf("reroll's --%s, which this kubectl-reroll does not know: upgrade it", name))
	}
	return d, notes, table.Validate()
}

// orEmpty returns v, or "empty" for "".
func orEmpty(v string) string {
	if v == "" {
		return "empty"
	}
	return v
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
