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

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/controller"
	"github.com/reroll/reroll/pkg/plan"
)

// options are the command-line flags.
type options struct {
	kubeconfig          string
	master              string
	namespace           string
	workers             int
	qps                 float64
	burst               int
	debounce            time.Duration
	resync              time.Duration
	autoAll             bool
	rollOnAdopt         bool
	dryRun              bool
	configSelector      string
	hashKeySecret       string
	pendingSecret       string
	controllerNamespace string
	showVersion         bool

	leaderElect            bool
	leaseName              string
	leaseNamespace         string
	leaseDuration          time.Duration
	renewDeadline          time.Duration
	retryPeriod            time.Duration
	metricsBindAddress     string
	healthProbeBindAddress string
	profiling              bool
	kinds                  string
	extraKinds             string
	discoveryRecheck       time.Duration
	preflight              bool

	reloaderAnnotations  bool
	namespaceSelector    string
	ignoreNamespaces     string
	namespaces           string
	waves                string
	rolloutTimeout       time.Duration
	maxRolloutsPerSecond float64
	maxInflightRollouts  int
	maxRollsPerWorkload  string
	secretsStoreCSI      bool
	reloadOnDelete       bool
	webhookURL           string
	rolloutWindow        string
	resourcesToIgnore    string

	// Reloader's names for reroll's flags, so that its command line works
	// as it is (docs/migrating-from-reloader.md).
	reloader reloaderFlags

	// parsed holds the values validate parsed out of the string flags, so
	// that nothing parses a flag twice.
	parsed parsedFlags
}

// reloaderFlags are Reloader's flags that name one of reroll's.
type reloaderFlags struct {
	resourceLabelSelector, namespacesToIgnore, ignoredWorkloadTypes string
	autoReloadAll, isArgoRollouts, enableCSI, reloadOnCreate        bool
}

// parsedFlags are the string flags that validate parses, in their parsed
// form.
type parsedFlags struct {
	kinds            []string
	extraKinds       []controller.ExtraKind
	ignoreNamespaces []string
	namespaces       []string
	ignoreTypes      []plan.ConfigType
	waves            []plan.WaveStep
	rollLimit        plan.RollLimit
	rolloutWindow    plan.Windows
}

// parseFlags parses and validates the command line, klog's flags included.
func parseFlags(args []string, output io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("reroll", flag.ContinueOnError)
	fs.SetOutput(output)
	klog.InitFlags(fs)
	o.define(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	kindsSet := false
	fs.Visit(func(f *flag.Flag) { kindsSet = kindsSet || f.Name == "kinds" })
	if o.reloaderAnnotations && !kindsSet {
		// Reloader rolls Jobs by default; so does reroll under its
		// annotations, unless --kinds says otherwise.
		o.kinds += "," + controller.JobsKind
	}
	if err := o.applyReloaderFlags(); err != nil {
		return o, err
	}
	return o, o.validate()
}

// define defines every flag of o on fs, with its default.
//
// Long: one line per flag, in the order of the README's table.
func (o *options) define(fs *flag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Empty: in-cluster config, else $KUBECONFIG or ~/.kube/config.")
	fs.StringVar(&o.master, "master", "", "Address of the Kubernetes API server; overrides the kubeconfig's.")
	fs.StringVar(&o.namespace, "namespace", "", "Watch only this namespace. Empty: all namespaces.")
	fs.StringVar(&o.namespaces, "namespaces", "", "Watch only these namespaces, comma-separated, each on its own: a Role in each is enough. Empty: all namespaces.")
	fs.IntVar(&o.workers, "workers", 8, "Workloads synced in parallel.")
	fs.Float64Var(&o.qps, "kube-api-qps", 100, "Sustained requests per second to the API server.")
	fs.IntVar(&o.burst, "kube-api-burst", 200, "Burst of requests to the API server.")
	fs.DurationVar(&o.debounce, "debounce", time.Second, "Coalesce config changes arriving within this window into one roll. 0 disables it.")
	fs.DurationVar(&o.resync, "resync-period", 10*time.Minute, "Re-check every workload this often. 0 disables it.")
	fs.BoolVar(&o.autoAll, "auto-all", false, "Treat every workload as annotated reroll.dev/auto: \"true\" (\"false\" opts out).")
	fs.BoolVar(&o.rollOnAdopt, "roll-on-adopt", false, "Roll a workload the first time it is seen, instead of recording a baseline.")
	fs.BoolVar(&o.dryRun, "dry-run", false, "Log and report what would be written; write nothing but Events.")
	fs.StringVar(&o.configSelector, "config-selector", "", "Label selector narrowing which ConfigMaps and Secrets are watched.")
	fs.StringVar(&o.hashKeySecret, "hash-key-secret", "reroll-hash-key", "Secret holding the key of reroll's hashes, in the controller's namespace; created if missing.")
	fs.StringVar(&o.pendingSecret, "pending-changes-secret", "reroll-pending-changes", "Secret, in the controller's namespace, where a change made before some of its consumers were adopted is kept across a crash; created if missing.")
	fs.StringVar(&o.controllerNamespace, "controller-namespace", "reroll-system", "reroll's own namespace when neither POD_NAMESPACE nor the in-cluster namespace file says.")
	fs.BoolVar(&o.showVersion, "version", false, "Print the version and exit.")
	fs.StringVar(&o.kinds, "kinds", strings.Join(controller.BuiltinResources(), ","), "Built-in workload kinds to watch, comma-separated: deployments, statefulsets, daemonsets, cronjobs, jobs (re-created to roll; added by default with --reloader-annotations), and rollouts (Argo Rollouts, watched while their CRD exists).")
	fs.StringVar(&o.extraKinds, "extra-kinds", "", "Custom kinds with a pod template to roll, comma-separated: resource.version.group or resource.group, each optionally followed by :path.of.template (default spec.template).")
	fs.DurationVar(&o.discoveryRecheck, "discovery-recheck-period", 30*time.Second, "How often to re-check discovery for --extra-kinds whose CRDs come or go.")
	fs.BoolVar(&o.preflight, "preflight", true, "Check the API server and reroll's permissions before starting, and fail fast with every problem listed.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Run workers only while holding a Lease, for running several replicas.")
	fs.StringVar(&o.leaseName, "leader-elect-lease-name", "reroll", "Name of the leader election Lease.")
	fs.StringVar(&o.leaseNamespace, "leader-elect-namespace", "", "Namespace of the Lease. Empty: the controller's namespace.")
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a standby waits before taking over a Lease that is not renewed.")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader keeps trying to renew before it stops.")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", 2*time.Second, "How often candidates try to acquire or renew the Lease.")
	fs.StringVar(&o.metricsBindAddress, "metrics-bind-address", ":8080", "Address serving /metrics. \"0\" disables it.")
	fs.StringVar(&o.healthProbeBindAddress, "health-probe-bind-address", ":8081", "Address serving /healthz and /readyz; the metrics address to serve all on one. \"0\" disables it.")
	fs.BoolVar(&o.profiling, "profiling", false, "Serve Go's pprof under /debug/pprof/ on the metrics address.")
	fs.BoolVar(&o.reloaderAnnotations, "reloader-annotations", false, "Also read stakater/Reloader's annotations (docs/migrating-from-reloader.md).")
	fs.StringVar(&o.namespaceSelector, "namespace-selector", "", "Label selector on Namespaces: workloads in Namespaces that do not match are never synced; Namespaces that start or stop matching are picked up at run time. Empty: all.")
	fs.StringVar(&o.ignoreNamespaces, "ignore-namespaces", "", "Namespaces never watched, comma-separated; excluded server-side, so nothing of theirs is cached.")
	fs.StringVar(&o.waves, "waves", "", "Roll the consumers of a changed ConfigMap or Secret in waves, such as 1,10%,100%, unless it has reroll.dev/waves. Empty: all at once.")
	fs.DurationVar(&o.rolloutTimeout, "rollout-timeout", 10*time.Minute, "How long a StatefulSet or DaemonSet rollout may take before it counts as failed (Deployments use their progressDeadlineSeconds).")
	fs.Float64Var(&o.maxRolloutsPerSecond, "max-rollouts-per-second", 0, "Space rolls over all workloads to at most this many per second. 0: no limit.")
	fs.IntVar(&o.maxInflightRollouts, "max-inflight-rollouts", 0, "Roll nothing while this many opted-in workloads have an incomplete rollout. 0: no cap.")
	fs.BoolVar(&o.secretsStoreCSI, "secrets-store-csi", false, "Roll workloads whose Secrets Store CSI volumes' objects rotate, read from the driver's SecretProviderClassPodStatuses while their CRD exists.")
	fs.BoolVar(&o.reloadOnDelete, "reload-on-delete", false, "Roll the consumers of a deleted ConfigMap or Secret they consume (Reloader's --reload-on-delete); new pods cannot start until a required one is back.")
	fs.StringVar(&o.rolloutWindow, "rollout-window", "", "When rolls may start, unless the workload, the changed object or its Namespace has reroll.dev/rollout-window, such as \"Mon-Fri 02:00-05:00 Europe/Berlin; Sat-Sun 00:00-23:59 UTC\". Empty: any time.")
	fs.StringVar(&o.webhookURL, "webhook-url", "", "Send each roll as JSON to this http(s) URL instead of rolling; retried until it answers 2xx, across restarts (Reloader's --webhook-url).")
	fs.StringVar(&o.resourcesToIgnore, "resources-to-ignore", "", "configMaps or secrets: that type is neither watched nor cached, and never rolls anything (Reloader's --resources-to-ignore).")
	o.reloader.define(fs)
	fs.StringVar(&o.maxRollsPerWorkload, "max-rolls-per-workload", "", "Hold a workload rolled N times within DURATION, written N/DURATION such as 3/1m; it rolls once more, to the latest content, when the window allows. Empty: no limit.")
}

// validate checks the flags' values together, returns every problem, and
// keeps the parsed values in o.parsed.
//
// Long: one check per flag, in the order they are defined, so that a new
// flag's check is added where a reader looks for it.
func (o *options) validate() error {
	var errs []error
	if o.workers < 1 {
		errs = append(errs, fmt.Errorf("--workers must be at least 1, not %d", o.workers))
	}
	if o.qps <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps must be positive, not %v", o.qps))
	}
	if o.burst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-burst must be at least 1, not %d", o.burst))
	}
	if o.debounce < 0 {
		errs = append(errs, fmt.Errorf("--debounce must not be negative, not %v", o.debounce))
	}
	if o.resync < 0 {
		errs = append(errs, fmt.Errorf("--resync-period must not be negative, not %v", o.resync))
	}
	if _, err := labels.Parse(o.configSelector); err != nil {
		errs = append(errs, fmt.Errorf("--config-selector: %w", err))
	}
	if o.hashKeySecret == "" {
		errs = append(errs, errors.New("--hash-key-secret must not be empty"))
	}
	if o.pendingSecret == "" || o.pendingSecret == o.hashKeySecret {
		errs = append(errs, errors.New("--pending-changes-secret must be set, and not to --hash-key-secret"))
	}
	if o.leaderElect && !(o.leaseDuration > o.renewDeadline && float64(o.renewDeadline) > 1.2*float64(o.retryPeriod) && o.retryPeriod > 0) {
		errs = append(errs, fmt.Errorf("leader election timings must satisfy lease duration (%v) > renew deadline (%v) > 1.2 x retry period (%v) > 0",
			o.leaseDuration, o.renewDeadline, o.retryPeriod))
	}
	var err error
	if o.parsed.kinds, err = parseKinds(o.kinds); err != nil {
		errs = append(errs, err)
	}
	if o.parsed.extraKinds, err = controller.ParseExtraKinds(o.extraKinds); err != nil {
		errs = append(errs, err)
	}
	if i := slices.Index(o.parsed.kinds, controller.ArgoRolloutsKind); i >= 0 {
		// Argo Rollouts come and go with their CRD, like custom kinds.
		o.parsed.kinds = slices.Delete(o.parsed.kinds, i, i+1)
		argo := controller.ArgoRollouts()
		if slices.ContainsFunc(o.parsed.extraKinds, func(k controller.ExtraKind) bool { return k.GroupResource() == argo.GR }) {
			errs = append(errs, errors.New("--kinds=rollouts and --extra-kinds both name Argo Rollouts; keep --kinds=rollouts, which reads Argo's own progress"))
		}
		o.parsed.extraKinds = append(o.parsed.extraKinds, argo)
	}
	if o.discoveryRecheck < time.Second {
		errs = append(errs, fmt.Errorf("--discovery-recheck-period must be at least 1s, not %v", o.discoveryRecheck))
	}
	if _, err := labels.Parse(o.namespaceSelector); err != nil {
		errs = append(errs, fmt.Errorf("--namespace-selector: %w", err))
	}
	if o.parsed.ignoreNamespaces, err = plan.ParseNamespaceList(o.ignoreNamespaces); err != nil {
		errs = append(errs, fmt.Errorf("--ignore-namespaces: %w", err))
	}
	if o.parsed.namespaces, err = parseWatchedNamespaces(o.namespace, o.namespaces); err != nil {
		errs = append(errs, err)
	}
	if (o.namespace != "" || o.namespaces != "") && (o.namespaceSelector != "" || o.ignoreNamespaces != "") {
		errs = append(errs, errors.New("--namespace-selector and --ignore-namespaces choose among all namespaces; --namespace and --namespaces already name the watched ones"))
	}
	if u, err := url.ParseRequestURI(o.webhookURL); o.webhookURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		errs = append(errs, fmt.Errorf("--webhook-url must be an http or https URL, not %q", o.webhookURL))
	}
	if o.parsed.ignoreTypes, err = parseResourcesToIgnore(o.resourcesToIgnore); err != nil {
		errs = append(errs, err)
	}
	if o.parsed.rolloutWindow, err = plan.ParseWindows(o.rolloutWindow); err != nil {
		errs = append(errs, fmt.Errorf("--rollout-window: %w", err))
	}
	if o.parsed.waves, err = plan.ParseWaves(o.waves); err != nil {
		errs = append(errs, fmt.Errorf("--waves: %w", err))
	}
	if o.rolloutTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--rollout-timeout must be positive, not %v", o.rolloutTimeout))
	}
	if o.maxRolloutsPerSecond < 0 {
		errs = append(errs, fmt.Errorf("--max-rollouts-per-second must not be negative, not %v", o.maxRolloutsPerSecond))
	}
	if o.maxInflightRollouts < 0 {
		errs = append(errs, fmt.Errorf("--max-inflight-rollouts must not be negative, not %d", o.maxInflightRollouts))
	}
	if o.parsed.rollLimit, err = plan.ParseRollLimit(o.maxRollsPerWorkload); err != nil {
		errs = append(errs, err)
	}
	if o.profiling && o.metricsBindAddress == "0" {
		errs = append(errs, errors.New("--profiling needs --metrics-bind-address"))
	}
	return errors.Join(errs...)
}

// parseWatchedNamespaces parses --namespace and --namespaces, of which at
// most one may be given, into the watched namespaces (none: all).
func parseWatchedNamespaces(namespace, namespaces string) ([]string, error) {
	flag, value := "--namespaces", namespaces
	switch {
	case namespace != "" && namespaces != "":
		return nil, errors.New("--namespace and --namespaces both name watched namespaces; give one")
	case namespace != "":
		flag, value = "--namespace", namespace
	}
	list, err := plan.ParseNamespaceList(value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return list, nil
}

// parseKinds parses --kinds: known kinds, no duplicates.
func parseKinds(value string) ([]string, error) {
	known := controller.KindNames()
	var kinds []string
	for _, k := range strings.Split(value, ",") {
		switch {
		case !slices.Contains(known, k):
			return nil, fmt.Errorf("--kinds: unknown kind %q; the kinds are %s", k, strings.Join(known, ", "))
		case slices.Contains(kinds, k):
			return nil, fmt.Errorf("--kinds: %q is listed twice", k)
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

// define defines Reloader's names for reroll's flags on fs.
func (r *reloaderFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&r.resourceLabelSelector, "resource-label-selector", "", "Reloader's name for --config-selector.")
	fs.StringVar(&r.namespacesToIgnore, "namespaces-to-ignore", "", "Reloader's name for --ignore-namespaces.")
	fs.StringVar(&r.ignoredWorkloadTypes, "ignored-workload-types", "", "Reloader's: jobs and/or cronjobs, dropped from --kinds.")
	fs.BoolVar(&r.autoReloadAll, "auto-reload-all", false, "Reloader's name for --auto-all.")
	fs.BoolVar(&r.isArgoRollouts, "is-Argo-Rollouts", false, "Reloader's: adds rollouts to --kinds.")
	fs.BoolVar(&r.enableCSI, "enable-csi-integration", false, "Reloader's name for --secrets-store-csi.")
	fs.BoolVar(&r.reloadOnCreate, "reload-on-create", true, "Reloader's; always on in reroll: creating an object a workload was missing rolls it once.")
}

// applyReloaderFlags folds Reloader's names for reroll's flags into o. A
// Reloader flag and reroll's own that disagree are an error, never a guess.
func (o *options) applyReloaderFlags() error {
	r := o.reloader
	for _, alias := range []struct {
		reloader, reroll string
		value            string
		into             *string
	}{
		{"--resource-label-selector", "--config-selector", r.resourceLabelSelector, &o.configSelector},
		{"--namespaces-to-ignore", "--ignore-namespaces", r.namespacesToIgnore, &o.ignoreNamespaces},
	} {
		switch {
		case alias.value == "":
		case *alias.into != "" && *alias.into != alias.value:
			return fmt.Errorf("%s=%q and %s=%q disagree; give one", alias.reloader, alias.value, alias.reroll, *alias.into)
		default:
			*alias.into = alias.value
		}
	}
	o.autoAll = o.autoAll || r.autoReloadAll
	o.secretsStoreCSI = o.secretsStoreCSI || r.enableCSI
	kinds := strings.Split(o.kinds, ",")
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
	o.kinds = strings.Join(kinds, ",")
	return nil
}

// parseResourcesToIgnore parses --resources-to-ignore, as Reloader spells
// it: configMaps or secrets (case-insensitive); empty ignores nothing.
func parseResourcesToIgnore(v string) ([]plan.ConfigType, error) {
	switch strings.ToLower(v) {
	case "":
		return nil, nil
	case "configmaps":
		return []plan.ConfigType{plan.TypeConfigMap}, nil
	case "secrets":
		return []plan.ConfigType{plan.TypeSecret}, nil
	}
	return nil, fmt.Errorf("--resources-to-ignore must be configMaps or secrets, not %q", v)
}
