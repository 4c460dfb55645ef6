// Command controller runs reroll: it rolls workloads when the content they
// consume from ConfigMaps and Secrets changes. This file is wiring only.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/controller"
	"github.com/reroll/reroll/pkg/health"
	"github.com/reroll/reroll/pkg/leader"
	"github.com/reroll/reroll/pkg/metrics"
	"github.com/reroll/reroll/pkg/preflight"
	"github.com/reroll/reroll/pkg/signals"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// fieldManager names reroll in the managedFields of everything it writes.
const fieldManager = "reroll"

// serviceAccountNamespaceFile holds the pod's namespace when in a cluster.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

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
}

// parseFlags parses and validates the command line, klog's flags included.
func parseFlags(args []string, output io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("reroll", flag.ContinueOnError)
	fs.SetOutput(output)
	klog.InitFlags(fs)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Empty: in-cluster config, else $KUBECONFIG or ~/.kube/config.")
	fs.StringVar(&o.master, "master", "", "Address of the Kubernetes API server; overrides the kubeconfig's.")
	fs.StringVar(&o.namespace, "namespace", "", "Watch only this namespace. Empty: all namespaces.")
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
	fs.StringVar(&o.controllerNamespace, "controller-namespace", "reroll-system", "reroll's own namespace when neither POD_NAMESPACE nor the in-cluster namespace file says.")
	fs.BoolVar(&o.showVersion, "version", false, "Print the version and exit.")
	fs.StringVar(&o.kinds, "kinds", strings.Join(controller.BuiltinKinds(), ","), "Built-in workload kinds to watch, comma-separated.")
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
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
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
	if o.leaderElect && !(o.leaseDuration > o.renewDeadline && float64(o.renewDeadline) > 1.2*float64(o.retryPeriod) && o.retryPeriod > 0) {
		errs = append(errs, fmt.Errorf("leader election timings must satisfy lease duration (%v) > renew deadline (%v) > 1.2 x retry period (%v) > 0",
			o.leaseDuration, o.renewDeadline, o.retryPeriod))
	}
	if _, err := parseKinds(o.kinds); err != nil {
		errs = append(errs, err)
	}
	if _, err := controller.ParseExtraKinds(o.extraKinds); err != nil {
		errs = append(errs, err)
	}
	if o.discoveryRecheck < time.Second {
		errs = append(errs, fmt.Errorf("--discovery-recheck-period must be at least 1s, not %v", o.discoveryRecheck))
	}
	if o.profiling && o.metricsBindAddress == "0" {
		errs = append(errs, errors.New("--profiling needs --metrics-bind-address"))
	}
	return o, errors.Join(errs...)
}

// parseKinds parses --kinds: known built-in kinds, no duplicates.
func parseKinds(value string) ([]string, error) {
	known := controller.BuiltinKinds()
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

// main parses flags and runs until SIGINT or SIGTERM.
func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "reroll: %v\n", err)
		os.Exit(1)
	}
	if o.showVersion {
		fmt.Println("reroll", version)
		return
	}
	ctx := signals.SetupSignalHandler()
	logger := klog.FromContext(ctx)
	if err := run(ctx, o); err != nil {
		logger.Error(err, "reroll stopped")
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	klog.Flush()
}

// run connects to the cluster and runs the controller until ctx is done.
func run(ctx context.Context, o options) error {
	logger := klog.FromContext(ctx)
	reg := metrics.NewRegistry()
	reg.RegisterProcessMetrics()
	reg.RegisterClientGoMetrics() // before any client is built
	leaderGauge := reg.NewGaugeVec("reroll_leader", "1 while this replica runs the workers (leads), else 0.").WithLabelValues()

	cfg, err := restConfig(o.master, o.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS = float32(o.qps)
	cfg.Burst = o.burst
	// Config values are often incompressible (keys, certificates), and
	// gunzipping the initial list cost a fifth of start-up CPU in the
	// benchmarks; the API server is usually one network hop away.
	cfg.DisableCompression = true
	cfg.WrapTransport = limitHTTP2StreamBuffer(cfg.WrapTransport)
	cfg = rest.AddUserAgent(cfg, "reroll/"+version)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building the client: %w", err)
	}
	// Events get their own, smaller rate limit, so that a fan-out of rolls
	// spends the main budget on the rolls themselves; Events trail behind.
	eventsCfg := rest.CopyConfig(cfg)
	eventsCfg.QPS, eventsCfg.Burst = max(cfg.QPS/4, 5), max(cfg.Burst/4, 10)
	eventsClient, err := kubernetes.NewForConfig(eventsCfg)
	if err != nil {
		return fmt.Errorf("building the events client: %w", err)
	}
	if err := checkServer(ctx, client, cfg.Host); err != nil {
		return err
	}

	ns := controllerNamespace(o.controllerNamespace)
	kinds, _ := parseKinds(o.kinds)                           // validated by parseFlags
	extraKinds, _ := controller.ParseExtraKinds(o.extraKinds) // validated by parseFlags
	leaseNamespace := o.leaseNamespace
	if leaseNamespace == "" {
		leaseNamespace = ns
	}
	if o.preflight {
		if err := preflight.Check(ctx, client, requirements(o, kinds, extraKinds, ns, leaseNamespace)); err != nil {
			return err
		}
	}
	key, err := controller.LoadOrCreateHashKey(ctx, client, ns, o.hashKeySecret, fieldManager, o.dryRun)
	if err != nil {
		return err
	}
	logger.Info("Using hash key", "secret", klog.KRef(ns, o.hashKeySecret), "keyID", key.ID())

	factory := controller.NewInformerFactory(client, controller.FactoryOptions{
		Namespace:      o.namespace,
		ConfigSelector: o.configSelector,
		ResyncPeriod:   o.resync,
	})
	// Events keep flowing while in-flight syncs finish after a signal; the
	// sink stops only when run returns.
	eventsCtx, stopEvents := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEvents()
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: eventsClient.EventsV1()})
	if err := broadcaster.StartRecordingToSinkWithContext(eventsCtx); err != nil {
		return fmt.Errorf("starting events: %w", err)
	}
	defer broadcaster.Shutdown()
	recorder := controller.NewRateLimitedRecorder(broadcaster.NewRecorder(scheme.Scheme, "reroll.dev/reroll"),
		float64(eventsCfg.QPS), maxPendingEvents, reg)

	c, err := controller.NewController(ctx, client, factory, recorder, controller.Options{
		HashKey:      key,
		FieldManager: fieldManager,
		Debounce:     o.debounce,
		AutoAll:      o.autoAll,
		RollOnAdopt:  o.rollOnAdopt,
		DryRun:       o.dryRun,
		Metrics:      reg,
		Kinds:        kinds,
		ResyncPeriod: o.resync,
	})
	if err != nil {
		return err
	}

	var watchdog *leaderelection.HealthzAdaptor
	live := []health.Check{func(*http.Request) error { return c.Healthy() }}
	if o.leaderElect {
		watchdog = leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)
		live = append(live, watchdog.Check)
	}
	ready := []health.Check{func(*http.Request) error {
		if !c.HasSynced() {
			return errors.New("informer caches are not synced yet")
		}
		return nil
	}}
	serversDone, err := startServers(ctx, o, live, ready, reg.Handler())
	if err != nil {
		return err
	}
	defer serversDone()

	// Cancel the informers before waiting for them: deferred calls run in
	// reverse, so Shutdown (registered first) runs after cancel. Standbys
	// start them too, so a takeover finds warm caches.
	defer factory.Shutdown()
	informerCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	tuneGC(informerCtx, c.HasSynced)
	factory.StartWithContext(informerCtx)
	if len(extraKinds) > 0 {
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return fmt.Errorf("building the dynamic client: %w", err)
		}
		var extraDone sync.WaitGroup
		defer extraDone.Wait()
		extraDone.Go(func() {
			c.RunExtraKinds(informerCtx, client.Discovery(), dyn, extraKinds, o.namespace, o.discoveryRecheck)
		})
	}

	if !o.leaderElect {
		leaderGauge.Set(1)
		return c.Run(ctx, o.workers)
	}
	hostname, _ := os.Hostname()
	identity, err := leader.Identity(os.Getenv("POD_NAME"), hostname, rand.Text()[:8])
	if err != nil {
		return err
	}
	return leader.Run(ctx, leader.Config{
		Client:        client,
		Namespace:     leaseNamespace,
		Name:          o.leaseName,
		Identity:      identity,
		LeaseDuration: o.leaseDuration,
		RenewDeadline: o.renewDeadline,
		RetryPeriod:   o.retryPeriod,
		WatchDog:      watchdog,
		OnLeading: func(leading bool) {
			if leading {
				leaderGauge.Set(1)
			} else {
				leaderGauge.Set(0)
			}
		},
	}, func(ctx context.Context) error {
		return c.Run(ctx, o.workers)
	})
}

// startServers binds the metrics and probe addresses (one server when they
// are equal; "0" disables one) and serves until ctx is done. The returned
// func waits for the servers to stop.
func startServers(ctx context.Context, o options, live, ready []health.Check, metricsHandler http.Handler) (wait func(), err error) {
	endpoints := map[string]*health.Endpoints{}
	if o.metricsBindAddress != "0" {
		endpoints[o.metricsBindAddress] = &health.Endpoints{Metrics: metricsHandler, Profiling: o.profiling}
	}
	if o.healthProbeBindAddress != "0" {
		e, ok := endpoints[o.healthProbeBindAddress]
		if !ok {
			e = &health.Endpoints{}
			endpoints[o.healthProbeBindAddress] = e
		}
		e.Live, e.Ready = live, ready
	}
	var wg sync.WaitGroup
	for addr, e := range endpoints {
		l, err := health.Listen(addr)
		if err != nil {
			return nil, err
		}
		wg.Go(func() {
			if err := health.Serve(ctx, l, health.NewMux(*e)); err != nil {
				klog.FromContext(ctx).Error(err, "Server failed", "address", addr)
			}
		})
	}
	return wg.Wait, nil
}

// maxPendingEvents bounds how many Events may wait for the events client's
// rate limit at once: a fan-out to 1,000 workloads still gets an Event on
// each, and a roll rate above that limit, sustained, drops Events instead of
// piling up goroutines. client-go's broadcaster queues as many.
const maxPendingEvents = 1000

// http2StreamReceiveBuffer is the HTTP/2 flow-control window reroll grants
// each stream: how much a watch may send ahead of what reroll has decoded.
// The transport's default is 4 MiB per stream. While the informers stream
// thousands of large ConfigMaps and Secrets, the API server fills it, and
// the benchmarks found 5 MB of reroll's start-up heap in those buffers. One
// MiB still allows 1 GB/s at a 1 ms round trip; a quarter of that slowed
// the initial sync measurably.
const http2StreamReceiveBuffer = 1 << 20

// limitHTTP2StreamBuffer returns a rest.Config WrapTransport that sets
// http2StreamReceiveBuffer on client-go's HTTP transport, then applies next
// (the config's own wrapper, if any). The HTTP/2 transport reads the setting
// when it opens a connection, and client-go wraps before the first request.
// The process-wide http.DefaultTransport, which client-go uses for plain
// HTTP, is left alone.
func limitHTTP2StreamBuffer(next transport.WrapperFunc) transport.WrapperFunc {
	return func(rt http.RoundTripper) http.RoundTripper {
		if t := innermostTransport(rt); t != nil && t != http.DefaultTransport && t.HTTP2 == nil {
			t.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: http2StreamReceiveBuffer}
		}
		if next != nil {
			return next(rt)
		}
		return rt
	}
}

// innermostTransport unwraps client-go's round-tripper wrappers down to the
// *http.Transport, or returns nil if there is none.
func innermostTransport(rt http.RoundTripper) *http.Transport {
	for {
		switch t := rt.(type) {
		case *http.Transport:
			return t
		case utilnet.RoundTripperWrapper:
			rt = t.WrappedRoundTripper()
		default:
			return nil
		}
	}
}

// initialSyncGCPercent is the GOGC used while the informers list: the
// initial list is mostly garbage (every object is decoded several times and
// its values are dropped by the cache transform), so collecting it eagerly
// keeps the start-up peak near the cached size instead of twice it.
const initialSyncGCPercent = 25

// steadyGCPercent is the GOGC after the initial sync. reroll's live heap is
// almost all informer cache, which grows with the cluster, while its
// garbage is small watch events and patches. Go's default of 100 lets the
// heap reach twice the cache; 50 caps it at one and a half times, at the
// cost of collecting twice as often a heap that is cheap to collect.
const steadyGCPercent = 50

// tuneGC sets GOGC to initialSyncGCPercent until synced reports true, then
// to steadyGCPercent; if ctx ends first, it stays at initialSyncGCPercent
// until exit. A GOGC set in the environment is left alone.
func tuneGC(ctx context.Context, synced func() bool) {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(initialSyncGCPercent)
	go func() {
		if wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
			return synced(), nil
		}) == nil {
			debug.SetGCPercent(steadyGCPercent)
		}
	}()
}

// requirements lists what the configured controller needs of the API
// server and of RBAC, for the preflight check.
func requirements(o options, kinds []string, extraKinds []controller.ExtraKind, ns, leaseNamespace string) preflight.Requirements {
	var req preflight.Requirements
	need := func(group, version, resource string, verbs ...string) {
		req.Resources = append(req.Resources, schema.GroupVersionResource{Group: group, Version: version, Resource: resource})
		for _, v := range verbs {
			req.Access = append(req.Access, preflight.Access{Verb: v, Group: group, Resource: resource, Namespace: o.namespace})
		}
	}
	workloadVerbs := []string{"list", "watch", "patch"}
	if o.dryRun {
		workloadVerbs = workloadVerbs[:2]
	}
	need("", "v1", "configmaps", "list", "watch")
	need("", "v1", "secrets", "list", "watch")
	for _, k := range kinds {
		need("apps", "v1", k, workloadVerbs...)
	}
	need("events.k8s.io", "v1", "events", "create", "patch")
	for _, k := range extraKinds {
		// Its CRD may come later: check RBAC now, discovery at runtime.
		gr := k.GroupResource()
		for _, v := range workloadVerbs {
			req.Access = append(req.Access, preflight.Access{Verb: v, Group: gr.Group, Resource: gr.Resource, Namespace: o.namespace})
		}
	}
	req.Access = append(req.Access, preflight.Access{Verb: "get", Resource: "secrets", Namespace: ns, Name: o.hashKeySecret})
	if o.leaderElect {
		req.Resources = append(req.Resources, schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"})
		for _, v := range []string{"get", "create", "update"} {
			req.Access = append(req.Access, preflight.Access{Verb: v, Group: "coordination.k8s.io", Resource: "leases", Namespace: leaseNamespace})
		}
	}
	return req
}

// restConfig returns the client configuration: the in-cluster one when no
// flag is given and the process runs in a pod, else the kubeconfig (the
// --kubeconfig path, or $KUBECONFIG, or ~/.kube/config).
func restConfig(master, kubeconfig string) (*rest.Config, error) {
	if master == "" && kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err == nil {
			return cfg, nil
		}
		if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("in-cluster configuration: %w", err)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	overrides := &clientcmd.ConfigOverrides{}
	overrides.ClusterInfo.Server = master
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, errors.New("no cluster to connect to: not running in a pod, and no kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config)")
	}
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	return cfg, nil
}

// checkServer fails fast, with a clear message, when the API server cannot
// be reached, instead of letting informers retry forever.
func checkServer(ctx context.Context, client kubernetes.Interface, host string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := client.Discovery().ServerVersionWithContext(ctx)
	if err != nil {
		return fmt.Errorf("cannot reach the Kubernetes API server at %s: %w", host, err)
	}
	klog.FromContext(ctx).Info("Connected", "server", host, "version", v.GitVersion)
	return nil
}

// controllerNamespace returns reroll's own namespace: $POD_NAMESPACE, else
// the in-cluster namespace file, else the flag's value.
func controllerNamespace(flagValue string) string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return flagValue
}
