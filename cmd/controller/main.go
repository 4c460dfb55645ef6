// Command controller runs reroll: it rolls workloads when the content they
// consume from ConfigMaps and Secrets changes. This file wires the parts
// together and nothing else: the flags are declared in flags.go, and every
// part lives in the package that owns it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	// The zone database, so that rollout windows name IANA zones in a
	// distroless image, which has none.
	_ "time/tzdata"

	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/controller"
	"github.com/reroll/reroll/pkg/gctune"
	"github.com/reroll/reroll/pkg/health"
	"github.com/reroll/reroll/pkg/kubeclient"
	"github.com/reroll/reroll/pkg/leader"
	"github.com/reroll/reroll/pkg/metrics"
	"github.com/reroll/reroll/pkg/preflight"
	"github.com/reroll/reroll/pkg/signals"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// fieldManager names reroll in the managedFields of everything it writes.
const fieldManager = "reroll"

// apiProbeTimeout bounds /healthz's question to the API server, under the
// kubelet's default probe timeout of 1s.
const apiProbeTimeout = 800 * time.Millisecond

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
	if err := run(ctx, o); err != nil {
		klog.FromContext(ctx).Error(err, "reroll stopped")
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	klog.Flush()
}

// run connects to the cluster and runs the controller until ctx is done.
//
// Long: the wiring, in the order it must happen: metrics before any
// client, the checks before the informers, the controller before they
// start, and the servers before the workers.
func run(ctx context.Context, o options) error {
	reg := metrics.NewRegistry()
	reg.RegisterProcessMetrics()
	reg.RegisterClientGoMetrics() // before any client is built
	cs, err := kubeclient.Connect(ctx, kubeclient.ConnectOptions{Master: o.master, Kubeconfig: o.kubeconfig,
		QPS: float32(o.qps), Burst: o.burst, UserAgent: "reroll/" + version, ProbeTimeout: apiProbeTimeout})
	if err != nil {
		return err
	}
	copts := controllerOptions(o, reg, kubeclient.ControllerNamespace(o.controllerNamespace))
	if copts.SkipNamespaceObjects, err = preflight.NamespaceObjectsDenied(ctx, cs.Client, copts.Namespaces); err != nil {
		return err
	}
	if o.preflight {
		if err := preflight.Check(ctx, cs.Client, preflight.ControllerRequirements(preflight.SettingsOf(copts, leaseNamespace(o, copts)))); err != nil {
			return err
		}
	}
	if copts.HashKey, err = controller.LoadOrCreateHashKey(ctx, cs.Client, copts.ControllerNamespace, o.hashKeySecret, fieldManager, o.dryRun); err != nil {
		return err
	}
	klog.FromContext(ctx).Info("Using hash key", "secret", klog.KRef(copts.ControllerNamespace, o.hashKeySecret), "keyID", copts.HashKey.ID())
	factories := controller.NewInformerFactories(cs.Client, copts)
	recorder, stopEvents, err := controller.StartEvents(ctx, cs.Events, cs.EventsConfig.QPS, reg)
	if err != nil {
		return err
	}
	defer stopEvents()
	c, err := controller.NewController(ctx, cs.Client, cs.Dynamic, factories, recorder, copts)
	if err != nil {
		return err
	}
	var watchdog *leaderelection.HealthzAdaptor
	live := []health.Check{func(*http.Request) error { return c.Healthy() }, health.APIServer(cs.Probe, apiProbeTimeout)}
	if o.leaderElect {
		watchdog = leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)
		live = append(live, watchdog.Check)
	}
	serversDone, err := health.Start(ctx, health.Servers{MetricsAddress: o.metricsBindAddress, ProbeAddress: o.healthProbeBindAddress,
		Metrics: reg.Handler(), Profiling: o.profiling, Live: live, Ready: []health.Check{health.Synced(c.HasSynced)}})
	if err != nil {
		return err
	}
	defer serversDone()
	// Standbys start the informers too, so that a takeover finds warm
	// caches.
	informerCtx, stopInformers := context.WithCancel(ctx)
	defer factories.Shutdown()
	defer stopInformers()
	gctune.Tune(informerCtx, c.HasSynced)
	factories.StartWithContext(informerCtx)
	election := leader.Config{Client: cs.FailFast, Namespace: leaseNamespace(o, copts), Name: o.leaseName,
		LeaseDuration: o.leaseDuration, RenewDeadline: o.renewDeadline, RetryPeriod: o.retryPeriod, WatchDog: watchdog}
	return leader.RunWorkers(ctx, o.leaderElect, election, reg, func(ctx context.Context) error { return c.Run(ctx, o.workers) })
}

// controllerOptions wires the flags, as parseFlags parsed them, into the
// controller's Options, for a controller in namespace ns; the hash key
// comes later, from the cluster.
func controllerOptions(o options, reg *metrics.Registry, ns string) controller.Options {
	copts := controller.Options{
		Decisions:              o.decisions,
		FieldManager:           fieldManager,
		ControllerNamespace:    ns,
		HashKeySecret:          o.hashKeySecret,
		Published:              o.published,
		Debounce:               o.debounce,
		DryRun:                 o.dryRun,
		Metrics:                reg,
		ResyncPeriod:           o.resync,
		DiscoveryRecheckPeriod: o.discoveryRecheck,
		WebhookURL:             o.webhookURL,
	}
	if !o.dryRun {
		copts.PendingChangesSecret = o.pendingSecret
	}
	if o.leaderElect {
		copts.MayWrite = leader.StillLeading
	}
	return copts
}

// leaseNamespace returns the Lease's namespace with leader election: the
// flag's, else reroll's own; empty without leader election.
func leaseNamespace(o options, copts controller.Options) string {
	switch {
	case !o.leaderElect:
		return ""
	case o.leaseNamespace != "":
		return o.leaseNamespace
	}
	return copts.ControllerNamespace
}
