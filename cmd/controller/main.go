// Command controller runs reroll: it rolls workloads when the content they
// consume from ConfigMaps and Secrets changes. This file is wiring only:
// flags are in flags.go, and every policy lives in a package named for it.
package main

import (
	// The zone database, so that rollout windows name IANA zones in a
	// distroless image, which has none.
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/controller"
	"github.com/reroll/reroll/pkg/gctune"
	"github.com/reroll/reroll/pkg/health"
	"github.com/reroll/reroll/pkg/kubeclient"
	"github.com/reroll/reroll/pkg/leader"
	"github.com/reroll/reroll/pkg/metrics"
	"github.com/reroll/reroll/pkg/plan"
	"github.com/reroll/reroll/pkg/preflight"
	"github.com/reroll/reroll/pkg/signals"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// fieldManager names reroll in the managedFields of everything it writes.
const fieldManager = "reroll"

// serviceAccountNamespaceFile holds the pod's namespace when in a cluster.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// maxPendingEvents bounds how many Events may wait for the events client's
// rate limit at once: a fan-out to 1,000 workloads still gets an Event on
// each, and a roll rate above that limit, sustained, drops Events instead of
// piling up goroutines. client-go's broadcaster queues as many.
const maxPendingEvents = 1000

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

// clients are reroll's connections to the API server.
type clients struct {
	config *rest.Config
	client kubernetes.Interface
	// events sends Events under its own rate limit.
	events       kubernetes.Interface
	eventsConfig *rest.Config
	// probe asks the API server whether it is ready, for /healthz.
	probe rest.Interface
	// failFast does not wait for a refusing API server: for the start-up
	// check, and for leader election, whose renewals and release must end
	// within their deadlines.
	failFast kubernetes.Interface
}

// apiProbeTimeout bounds /healthz's question to the API server, under the
// kubelet's default probe timeout of 1s.
const apiProbeTimeout = 800 * time.Millisecond

// connect builds the clients and checks that the API server answers.
func connect(ctx context.Context, o options) (clients, error) {
	base, err := kubeclient.Config(o.master, o.kubeconfig)
	if err != nil {
		return clients{}, err
	}
	cfg := kubeclient.Tune(base, float32(o.qps), o.burst, "reroll/"+version)
	// The informers and workers wait out an API server outage (see
	// WaitForServer); Events, probes and the start-up check fail fast.
	c := clients{config: kubeclient.WaitForServer(cfg), eventsConfig: kubeclient.EventsConfig(cfg)}
	if c.client, err = kubernetes.NewForConfig(c.config); err != nil {
		return clients{}, fmt.Errorf("building the client: %w", err)
	}
	if c.events, err = kubernetes.NewForConfig(c.eventsConfig); err != nil {
		return clients{}, fmt.Errorf("building the events client: %w", err)
	}
	probe, err := kubernetes.NewForConfig(kubeclient.ProbeConfig(cfg, apiProbeTimeout))
	if err != nil {
		return clients{}, fmt.Errorf("building the probe client: %w", err)
	}
	c.probe = probe.Discovery().RESTClient()
	if c.failFast, err = kubernetes.NewForConfig(cfg); err != nil {
		return clients{}, fmt.Errorf("building the client: %w", err)
	}
	return c, kubeclient.CheckServer(ctx, c.failFast, cfg.Host)
}

// controllerOptions wires the flags, as parseFlags parsed them, into the
// controller's Options; the hash key comes later, from the cluster.
func controllerOptions(o options, reg *metrics.Registry) controller.Options {
	return controller.Options{
		FieldManager:           fieldManager,
		Debounce:               o.debounce,
		AutoAll:                o.autoAll,
		ReloaderAnnotations:    o.reloaderAnnotations,
		RollOnAdopt:            o.rollOnAdopt,
		DryRun:                 o.dryRun,
		Metrics:                reg,
		Namespaces:             o.parsed.namespaces,
		ConfigSelector:         o.configSelector,
		NamespaceSelector:      o.namespaceSelector,
		IgnoreNamespaces:       o.parsed.ignoreNamespaces,
		ResyncPeriod:           o.resync,
		BuiltinResources:       o.parsed.kinds,
		ExtraKinds:             o.parsed.extraKinds,
		DiscoveryRecheckPeriod: o.discoveryRecheck,
		Waves:                  o.parsed.waves,
		RolloutTimeout:         o.rolloutTimeout,
		MaxRolloutsPerSecond:   o.maxRolloutsPerSecond,
		MaxInflightRollouts:    o.maxInflightRollouts,
		MaxRollsPerWorkload:    o.parsed.rollLimit,
		SecretsStoreCSI:        o.secretsStoreCSI,
		IgnoreConfigTypes:      o.parsed.ignoreTypes,
		RollOnDelete:           o.reloadOnDelete,
		WebhookURL:             o.webhookURL,
		RolloutWindow:          o.parsed.rolloutWindow,
	}
}

// preflightSettings says what the configured controller needs, for the
// preflight check.
func preflightSettings(o options, copts controller.Options, ns string) preflight.ControllerSettings {
	extra := make([]schema.GroupResource, len(copts.ExtraKinds))
	for i, k := range copts.ExtraKinds {
		extra[i] = k.GroupResource()
	}
	builtin := make([]schema.GroupVersionResource, len(copts.BuiltinResources))
	for i, r := range copts.BuiltinResources {
		builtin[i] = controller.BuiltinResource(r)
	}
	return preflight.ControllerSettings{
		Namespaces:           copts.Namespaces,
		SkipNamespaceObjects: copts.SkipNamespaceObjects,
		BuiltinResources:     builtin,
		ExtraKinds:           extra,
		DryRun:               copts.DryRun,
		ControllerNamespace:  ns,
		HashKeySecret:        o.hashKeySecret,
		PendingChangesSecret: copts.PendingChangesSecret,
		LeaderElect:          o.leaderElect,
		LeaseNamespace:       leaseNamespace(o, ns),
		RecreatesJobs:        slices.Contains(copts.BuiltinResources, controller.JobsKind),
		SecretsStoreCSI:      copts.SecretsStoreCSI,
		IgnoreConfigMaps:     slices.Contains(copts.IgnoreConfigTypes, plan.TypeConfigMap),
		IgnoreSecrets:        slices.Contains(copts.IgnoreConfigTypes, plan.TypeSecret),
	}
}

// namespaceObjectsDenied reports whether reroll, watching the namespaces
// watched (none: all), may not read those Namespaces, as with a Role in
// each and no ClusterRole. It then runs without their reroll.dev
// annotations and says so; watching all namespaces, it reports false and
// the preflight check requires the access.
func namespaceObjectsDenied(ctx context.Context, client kubernetes.Interface, watched []string) (bool, error) {
	if len(watched) == 0 {
		return false, nil
	}
	denied, err := preflight.Denied(ctx, client, preflight.NamespaceAccess(watched))
	if err != nil || len(denied) == 0 {
		return false, err
	}
	klog.FromContext(ctx).Info("Not reading the watched Namespaces: their reroll.dev annotations (paused, rollout-window) do not apply; grant list and watch on them by name to use them",
		"missing", denied[0].String())
	return true, nil
}

// run connects to the cluster and runs the controller until ctx is done.
func run(ctx context.Context, o options) error {
	reg := metrics.NewRegistry()
	reg.RegisterProcessMetrics()
	reg.RegisterClientGoMetrics() // before any client is built
	cs, err := connect(ctx, o)
	if err != nil {
		return err
	}
	ns := controllerNamespace(o.controllerNamespace)
	copts := controllerOptions(o, reg)
	copts.ControllerNamespace = ns
	if !o.dryRun {
		copts.PendingChangesSecret = o.pendingSecret
	}
	if copts.SkipNamespaceObjects, err = namespaceObjectsDenied(ctx, cs.client, copts.Namespaces); err != nil {
		return err
	}
	if o.preflight {
		settings := preflightSettings(o, copts, ns)
		if err := preflight.Check(ctx, cs.client, preflight.ControllerRequirements(settings)); err != nil {
			return err
		}
	}
	if copts.HashKey, err = controller.LoadOrCreateHashKey(ctx, cs.client, ns, o.hashKeySecret, fieldManager, o.dryRun); err != nil {
		return err
	}
	klog.FromContext(ctx).Info("Using hash key", "secret", klog.KRef(ns, o.hashKeySecret), "keyID", copts.HashKey.ID())
	if o.leaderElect {
		copts.MayWrite = leader.StillLeading
	}
	factory := controller.NewInformerFactories(cs.client, copts)

	recorder, stopEvents, err := startEvents(ctx, cs, reg)
	if err != nil {
		return err
	}
	defer stopEvents()
	c, err := controller.NewController(ctx, cs.client, factory, recorder, copts)
	if err != nil {
		return err
	}
	var watchdog *leaderelection.HealthzAdaptor
	if o.leaderElect {
		watchdog = leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)
	}
	serversDone, err := startServers(ctx, o, healthChecks(c, cs.probe, watchdog), reg.Handler())
	if err != nil {
		return err
	}
	defer serversDone()
	stopInformers, err := startInformers(ctx, cs, factory, c, len(copts.ExtraKinds) > 0 || copts.SecretsStoreCSI)
	if err != nil {
		return err
	}
	defer stopInformers()
	return runWorkers(ctx, o, cs.failFast, c, watchdog, leaseNamespace(o, ns), reg)
}

// startEvents starts sending Events through the events client, behind a
// bounded backlog. Events keep flowing while in-flight syncs finish after a
// signal; the returned stop ends them, when run returns.
func startEvents(ctx context.Context, cs clients, reg *metrics.Registry) (events.EventRecorder, func(), error) {
	eventsCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.events.EventsV1()})
	if err := broadcaster.StartRecordingToSinkWithContext(eventsCtx); err != nil {
		cancel()
		return nil, nil, fmt.Errorf("starting events: %w", err)
	}
	recorder := controller.NewRateLimitedRecorder(broadcaster.NewRecorder(scheme.Scheme, "reroll.dev/reroll"),
		float64(cs.eventsConfig.QPS), maxPendingEvents, reg)
	return recorder, func() { broadcaster.Shutdown(); cancel() }, nil
}

// probeChecks are the checks of /healthz and /readyz.
type probeChecks struct {
	live, ready []health.Check
}

// healthChecks returns the controller's probes: alive while it is healthy
// and the API server is ready (and, with leader election, while a held
// Lease is renewed); ready once its caches synced.
func healthChecks(c *controller.Controller, api rest.Interface, watchdog *leaderelection.HealthzAdaptor) probeChecks {
	p := probeChecks{
		live: []health.Check{func(*http.Request) error { return c.Healthy() }, health.APIServer(api, apiProbeTimeout)},
		ready: []health.Check{func(*http.Request) error {
			if !c.HasSynced() {
				return errors.New("informer caches are not synced yet")
			}
			return nil
		}},
	}
	if watchdog != nil {
		p.live = append(p.live, watchdog.Check)
	}
	return p
}

// startInformers starts the informers, the custom kinds' discovery loop
// (with extraKinds) and the GC policy. Standbys start them too, so a takeover finds warm caches.
// The returned stop cancels them all and waits for them.
func startInformers(ctx context.Context, cs clients, factory controller.InformerFactories, c *controller.Controller, extraKinds bool) (func(), error) {
	informerCtx, cancel := context.WithCancel(ctx)
	var extraDone sync.WaitGroup
	stop := func() {
		cancel() // before waiting: the informers stop on the context
		extraDone.Wait()
		factory.Shutdown()
	}
	gctune.Tune(informerCtx, c.HasSynced)
	factory.StartWithContext(informerCtx)
	if extraKinds {
		dyn, err := dynamic.NewForConfig(cs.config)
		if err != nil {
			stop()
			return nil, fmt.Errorf("building the dynamic client: %w", err)
		}
		extraDone.Go(func() { c.RunExtraKinds(informerCtx, cs.client.Discovery(), dyn) })
		extraDone.Go(func() { c.RunSecretsStoreCSI(informerCtx, cs.client.Discovery(), dyn) })
	}
	return stop, nil
}

// runWorkers runs the controller's workers until ctx is done: at once, or
// with --leader-elect only while this replica holds the Lease.
func runWorkers(ctx context.Context, o options, client kubernetes.Interface, c *controller.Controller, watchdog *leaderelection.HealthzAdaptor, leaseNamespace string, reg *metrics.Registry) error {
	leaderGauge := reg.NewGaugeVec("reroll_leader", "1 while this replica runs the workers (leads), else 0.").WithLabelValues()
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
func startServers(ctx context.Context, o options, probes probeChecks, metricsHandler http.Handler) (wait func(), err error) {
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
		e.Live, e.Ready = probes.live, probes.ready
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

// leaseNamespace returns the Lease's namespace: the flag's, else reroll's.
func leaseNamespace(o options, controllerNamespace string) string {
	if o.leaseNamespace != "" {
		return o.leaseNamespace
	}
	return controllerNamespace
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
