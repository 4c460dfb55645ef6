package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/controller"
	"github.com/reroll/reroll/pkg/flags"
	"github.com/reroll/reroll/pkg/plan"
)

// options are the command-line flags, as the table (flagTable) binds them.
type options struct {
	kubeconfig, master  string
	namespace           []string
	workers             int
	qps                 float64
	burst               int
	debounce, resync    time.Duration
	dryRun              bool
	hashKeySecret       string
	pendingSecret       string
	controllerNamespace string
	showVersion         bool
	webhookURL          string
	discoveryRecheck    time.Duration
	preflight           bool

	leaderElect                               bool
	leaseName, leaseNamespace                 string
	leaseDuration, renewDeadline, retryPeriod time.Duration
	metricsBindAddress                        string
	healthProbeBindAddress                    string
	profiling                                 bool

	// decisions are the settings the kubectl plugin shares
	// (controller.DecisionFlags), and published their values, as reroll
	// publishes them for the plugin.
	decisions controller.Decisions
	published map[string]string

	// reloader are Reloader's names for reroll's flags, so that its
	// command line works as it is (docs/migrating-from-reloader.md).
	reloader reloaderFlags
}

// reloaderFlags are Reloader's flags that name one of reroll's.
type reloaderFlags struct {
	resourceLabelSelector, namespacesToIgnore, ignoredWorkloadTypes string
	autoReloadAll, isArgoRollouts, enableCSI, reloadOnCreate        bool
}

// The sections of the flag reference (docs/flags.md).
const (
	sectionConnect  = "Connecting"
	sectionWatch    = "What reroll watches and how workloads opt in"
	sectionSafety   = "Rolling safely"
	sectionProcess  = "The process"
	sectionLeader   = "Several replicas"
	sectionReloader = "Reloader's names"
)

// flagTable declares every flag of o, each once: name, default, usage,
// checks, and the option it sets. The decision flags come from
// controller.DecisionFlags, which the plugin shares.
//
// Long: the table itself, one entry per flag.
func flagTable(o *options) *flags.Set {
	s := &flags.Set{}
	s.Section(sectionConnect,
		flags.String(&o.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Empty: in-cluster config, else $KUBECONFIG or ~/.kube/config."),
		flags.String(&o.master, "master", "", "Address of the Kubernetes API server; overrides the kubeconfig's."),
		flags.Bool(&o.preflight, "preflight", true, "Check the API server and reroll's permissions before starting, and fail fast with every problem listed."),
	)
	decisions := controller.DecisionFlags(&o.decisions)
	s.Section(sectionWatch, append([]*flags.Flag{
		flags.Parsed(&o.namespace, "namespace", "", "Watch only this namespace. Empty: all namespaces.", plan.ParseNamespaceList),
	}, flags.InGroup(decisions, controller.GroupWatch)...)...)
	s.Section(sectionWatch,
		flags.Duration(&o.discoveryRecheck, "discovery-recheck-period", 30*time.Second, "How often to re-check discovery for --extra-kinds whose CRDs come or go.", flags.AtLeast(time.Second)),
		flags.Duration(&o.resync, "resync-period", 10*time.Minute, "Re-check every workload this often. 0 disables it.", flags.NotNegative[time.Duration]()),
	)
	s.Section(sectionSafety, append([]*flags.Flag{
		flags.Duration(&o.debounce, "debounce", time.Second, "Coalesce config changes arriving within this window into one roll. 0 disables it.", flags.NotNegative[time.Duration]()),
	}, flags.InGroup(decisions, controller.GroupSafety)...)...)
	s.Section(sectionProcess,
		flags.Int(&o.workers, "workers", 8, "Workloads synced in parallel.", flags.AtLeast(1)),
		flags.Float(&o.qps, "kube-api-qps", 100, "Sustained requests per second to the API server.", flags.Positive[float64]()),
		flags.Int(&o.burst, "kube-api-burst", 200, "Burst of requests to the API server.", flags.AtLeast(1)),
		flags.Bool(&o.dryRun, "dry-run", false, "Log and report what would be written; write nothing but Events."),
		flags.String(&o.webhookURL, "webhook-url", "", "Send each roll as JSON to this http(s) URL instead of rolling; retried until it answers 2xx, across restarts (Reloader's --webhook-url).", webhookURL),
		flags.String(&o.controllerNamespace, "controller-namespace", "reroll-system", "reroll's own namespace when neither POD_NAMESPACE nor the in-cluster namespace file says."),
		flags.String(&o.hashKeySecret, "hash-key-secret", "reroll-hash-key", "Secret holding the key of reroll's hashes, in the controller's namespace; created if missing. reroll publishes its decision settings on it, for kubectl reroll.", flags.NotEmpty()),
		flags.String(&o.pendingSecret, "pending-changes-secret", "reroll-pending-changes", "Secret, in the controller's namespace, where a change made before some of its consumers were adopted is kept across a crash; created if missing."),
		flags.String(&o.metricsBindAddress, "metrics-bind-address", ":8080", "Address serving /metrics. \"0\" disables it."),
		flags.String(&o.healthProbeBindAddress, "health-probe-bind-address", ":8081", "Address serving /healthz and /readyz; the metrics address to serve all on one. \"0\" disables it."),
		flags.Bool(&o.profiling, "profiling", false, "Serve Go's pprof under /debug/pprof/ on the metrics address."),
		flags.Bool(&o.showVersion, "version", false, "Print the version and exit."),
	)
	s.Section(sectionLeader,
		flags.Bool(&o.leaderElect, "leader-elect", false, "Run workers only while holding a Lease, for running several replicas."),
		flags.String(&o.leaseName, "leader-elect-lease-name", "reroll", "Name of the leader election Lease."),
		flags.String(&o.leaseNamespace, "leader-elect-namespace", "", "Namespace of the Lease. Empty: the controller's namespace."),
		flags.Duration(&o.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a standby waits before taking over a Lease that is not renewed."),
		flags.Duration(&o.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader keeps trying to renew before it stops."),
		flags.Duration(&o.retryPeriod, "leader-elect-retry-period", 2*time.Second, "How often candidates try to acquire or renew the Lease."),
	)
	r := &o.reloader
	s.Section(sectionReloader,
		flags.String(&r.resourceLabelSelector, "resource-label-selector", "", "Reloader's name for --config-selector."),
		flags.String(&r.namespacesToIgnore, "namespaces-to-ignore", "", "Reloader's name for --ignore-namespaces."),
		flags.String(&r.ignoredWorkloadTypes, "ignored-workload-types", "", "Reloader's: jobs and/or cronjobs, dropped from --kinds."),
		flags.Bool(&r.autoReloadAll, "auto-reload-all", false, "Reloader's name for --auto-all."),
		flags.Bool(&r.isArgoRollouts, "is-Argo-Rollouts", false, "Reloader's: adds rollouts to --kinds."),
		flags.Bool(&r.enableCSI, "enable-csi-integration", false, "Reloader's name for --secrets-store-csi."),
		flags.Bool(&r.reloadOnCreate, "reload-on-create", true, "Reloader's; always on in reroll: creating an object a workload was missing rolls it once."),
	)
	return s
}

// webhookURL checks --webhook-url: empty, or an http or https URL.
func webhookURL(v string) string {
	if u, err := url.ParseRequestURI(v); v != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		return "must be an http or https URL"
	}
	return ""
}

// parseFlags parses and validates the command line, klog's flags included.
func parseFlags(args []string, output io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("reroll", flag.ContinueOnError)
	fs.SetOutput(output)
	klog.InitFlags(fs)
	table := flagTable(&o)
	table.Register(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := table.Validate(); err != nil {
		return o, err
	}
	// Reloader's names, folded into reroll's flags before the decisions are
	// built from them.
	if err := foldReloaderFlags(table, o.reloader, o.decisions.ReloaderAnnotations); err != nil {
		return o, err
	}
	if err := foldNamespace(table, o.namespace); err != nil {
		return o, err
	}
	if err := table.Validate(); err != nil {
		return o, err
	}
	o.published = map[string]string{}
	for _, f := range controller.DecisionFlags(&controller.Decisions{}) {
		o.published[f.Name] = table.Lookup(f.Name).Value()
	}
	return o, o.check(table)
}

// foldReloaderFlags sets reroll's flags that Reloader's names stand for. A
// Reloader flag and reroll's own that disagree are an error, never a guess.
// Under Reloader's annotations, Jobs are watched unless --kinds was given,
// as Reloader does.
func foldReloaderFlags(table *flags.Set, r reloaderFlags, reloaderAnnotations bool) error {
	for _, alias := range []struct{ reloader, reroll, value string }{
		{"resource-label-selector", "config-selector", r.resourceLabelSelector},
		{"namespaces-to-ignore", "ignore-namespaces", r.namespacesToIgnore},
	} {
		f := table.Lookup(alias.reroll)
		switch {
		case alias.value == "":
		case f.Value() != "" && f.Value() != alias.value:
			return fmt.Errorf("--%s=%q and --%s=%q disagree; give one", alias.reloader, alias.value, alias.reroll, f.Value())
		default:
			_ = f.Set(alias.value)
		}
	}
	if r.autoReloadAll {
		_ = table.Lookup("auto-all").Set("true")
	}
	if r.enableCSI {
		_ = table.Lookup("secrets-store-csi").Set("true")
	}
	kindsFlag := table.Lookup("kinds")
	kinds := strings.Split(kindsFlag.Value(), ",")
	if reloaderAnnotations && !kindsFlag.Given() {
		kinds = append(kinds, controller.JobsKind)
	}
	if r.isArgoRollouts && !slices.Contains(kinds, controller.ArgoRolloutsKind) {
		kinds = append(kinds, controller.ArgoRolloutsKind)
	}
	if r.ignoredWorkloadTypes != "" {
		for _, t := range strings.Split(r.ignoredWorkloadTypes, ",") {
			if t != controller.JobsKind && t != "cronjobs" {
				return fmt.Errorf("--ignored-workload-types: %q is not jobs or cronjobs", t)
			}
			kinds = slices.DeleteFunc(kinds, func(k string) bool { return k == t })
		}
	}
	if v := strings.Join(kinds, ","); v != kindsFlag.Value() {
		_ = kindsFlag.Set(v)
	}
	return nil
}

// foldNamespace folds --namespace, the watched namespace, into
// --namespaces, of which at most one may be given.
func foldNamespace(table *flags.Set, namespace []string) error {
	if len(namespace) == 0 {
		return nil
	}
	if table.Lookup("namespaces").Value() != "" {
		return errors.New("--namespace and --namespaces both name watched namespaces; give one")
	}
	return table.Lookup("namespaces").Set(strings.Join(namespace, ","))
}

// check applies the rules that tie flags together, and returns every
// problem.
func (o *options) check(table *flags.Set) error {
	var errs []error
	if o.pendingSecret == "" || o.pendingSecret == o.hashKeySecret {
		errs = append(errs, errors.New("--pending-changes-secret must be set, and not to --hash-key-secret"))
	}
	if o.leaderElect && !(o.leaseDuration > o.renewDeadline && float64(o.renewDeadline) > 1.2*float64(o.retryPeriod) && o.retryPeriod > 0) {
		errs = append(errs, fmt.Errorf("leader election timings must satisfy lease duration (%v) > renew deadline (%v) > 1.2 x retry period (%v) > 0",
			o.leaseDuration, o.renewDeadline, o.retryPeriod))
	}
	if len(o.decisions.Namespaces) > 0 && (table.Lookup("namespace-selector").Value() != "" || table.Lookup("ignore-namespaces").Value() != "") {
		errs = append(errs, errors.New("--namespace-selector and --ignore-namespaces choose among all namespaces; --namespace and --namespaces already name the watched ones"))
	}
	if o.profiling && o.metricsBindAddress == "0" {
		errs = append(errs, errors.New("--profiling needs --metrics-bind-address"))
	}
	return errors.Join(errs...)
}

// flagsReference is docs/flags.md: the table, as Markdown.
func flagsReference() string {
	var o options
	return "# reroll's flags\n\n" +
		"<!-- Written by `make flags-doc` from the flag table (cmd/controller/flags.go); TestFlagsReference fails when they differ. -->\n\n" +
		"Every flag of the controller, by what it is for. The flags marked `watch` or `safety` change\n" +
		"what reroll decides: reroll publishes their values on its hash-key Secret, and `kubectl reroll`\n" +
		"decides with them; the plugin takes each of them too, as an override, and says so.\n" +
		"klog's flags (`--v`, ...) come on top.\n\n" +
		flagTable(&o).Markdown()
}
