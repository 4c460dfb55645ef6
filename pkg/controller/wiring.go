package controller

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/reroll/reroll/pkg/metrics"
	"github.com/reroll/reroll/pkg/plan"
)

// NewController and the wiring of the Controller's parts: the file that
// uses every other, so that they need not know each other.

// NewController returns a Controller that watches workloads, ConfigMaps
// and Secrets through factories, which must come from NewInformerFactories
// with the same opts and must be started after this call. dyn serves the
// custom kinds and the Secrets Store CSI driver; nil when there are none.
//
// Long: it wires every part, one statement each.
func NewController(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, factories InformerFactories, recorder events.EventRecorder, opts Options) (*Controller, error) {
	if opts.FieldManager == "" {
		return nil, errors.New("a field manager is required")
	}
	if opts.HashKey.ID() == "" {
		return nil, errors.New("a hash key is required")
	}
	reg := opts.Metrics
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	view, err := newCacheView(opts.Decisions, opts.HashKey)
	if err != nil {
		return nil, fmt.Errorf("namespace selector: %w", err)
	}
	metrics := newControllerMetrics(reg)
	c := &Controller{opts: opts, view: view,
		webhook: &webhookNotifier{url: opts.WebhookURL, client: opts.WebhookClient, clock: opts.Clock}}
	c.memory = newWorkloadMemory(opts.Clock, opts.Decisions, func() { c.wake(c.memory.holds.heldFor(plan.HoldInflight)) })
	c.pods = newPodWatch(client, func(key workloadKey) { c.enqueue(key, 0) })
	c.memory.released = c.pods.release
	judge := &rolloutJudge{decisions: opts.Decisions, memory: c.memory.bakes}
	if opts.BakeTime > 0 {
		// Without --bake-time, reroll may not read pods (RBAC): a bake that
		// an annotation sets is judged from the status alone.
		judge.pods = c.pods
	}
	c.gatherer = &gatherer{view: view, memo: newConsumerFactsMemo(), judge: judge}
	c.queue = newWorkqueue(opts.Clock, reg, c.memory.changes.urgent)
	c.reporter = &reporter{recorder: recorder, metrics: metrics, lastDigests: c.memory.lastDigests, holds: c.memory.holds, workload: view.cachedWorkloadOf}
	c.pending = newPendingStore(client, opts.ControllerNamespace, opts.PendingChangesSecret, opts.FieldManager)
	c.pending.mayWrite, c.pending.stillPending, c.pending.writes = opts.MayWrite, c.memory.changes.waitsOn, metrics.pendingWrites.WithLabelValues().Inc
	c.memory.settled = c.pending.settled
	disc := client.Discovery()
	c.csi = &csiSource{opts: opts, disc: disc, dyn: dyn, kinds: view.kinds, warn: c.reporter.warn,
		changed: func(ctx context.Context, namespace string, ref plan.ConfigRef) {
			c.enqueueConsumers(ctx, namespace, ref, nil)
		}}
	view.providerClasses = c.csi.providerClass
	c.customKinds = &customKinds{opts: opts, disc: disc, dyn: dyn, add: c.addWorkloadKind, remove: view.kinds.remove, deploymentTemplate: view.deploymentTemplate}
	c.publisher = newSettingsPublisher(client, opts)
	c.syncHandler = c.syncWorkload
	if err := c.watchBuiltinKinds(ctx, client, factories); err != nil {
		return nil, err
	}
	if err := c.watchConfig(ctx, factories); err != nil {
		return nil, err
	}
	registerGauges(reg, c)
	return c, nil
}

// watchBuiltinKinds registers the built-in workload kinds of opts.
func (c *Controller) watchBuiltinKinds(ctx context.Context, client kubernetes.Interface, factories InformerFactories) error {
	names := c.opts.Kinds
	if names == nil {
		names = DefaultKindNames()
	}
	for _, name := range names {
		k, ok := KindNamed(name)
		if !ok {
			return unknownKindError(name)
		}
		var a workloadAdapter = newTypedAdapter(k, client, factories)
		if name == JobsKind {
			a = &jobAdapter{typedAdapter: a.(*typedAdapter), namespace: c.opts.ControllerNamespace, fieldManager: c.opts.FieldManager,
				warn: c.reporter.warn, resume: !c.opts.DryRun}
		}
		if err := c.addWorkloadKind(ctx, a); err != nil {
			return err
		}
		// Built-in kinds gate readiness and health; custom kinds, which come
		// and go with their CRDs, do not.
		c.cachesSynced = append(c.cachesSynced, a.informer().HasSynced)
		c.informers = append(c.informers, a.informer())
	}
	return nil
}

// watchConfig registers the ConfigMap, Secret and Namespace informers. An
// ignored type (--resources-to-ignore) gets no informer: nothing of it is
// watched or cached, and no workload consumes it.
func (c *Controller) watchConfig(ctx context.Context, factories InformerFactories) error {
	logger := klog.FromContext(ctx)
	handlerOpts := cache.HandlerOptions{Logger: &logger}
	watch := func(t plan.ConfigType, add func(f informers.SharedInformerFactory) error, informerOf func(informers.SharedInformerFactory) cache.SharedIndexInformer) error {
		for _, f := range factories {
			if err := add(f); err != nil {
				return err
			}
		}
		g := factories.group(informerOf)
		c.view.configs[t] = g.GetIndexer()
		c.cachesSynced = append(c.cachesSynced, g.HasSynced)
		c.informers = append(c.informers, g)
		return nil
	}
	if !c.opts.ignores(plan.TypeConfigMap) {
		if err := watch(plan.TypeConfigMap, func(f informers.SharedInformerFactory) error {
			_, err := f.Core().V1().ConfigMaps().TypedInformer().AddTypedEventHandler(configHandler[*corev1.ConfigMap](ctx, c, plan.TypeConfigMap), handlerOpts)
			return err
		}, func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Core().V1().ConfigMaps().Informer()
		}); err != nil {
			return err
		}
	}
	if !c.opts.ignores(plan.TypeSecret) {
		if err := watch(plan.TypeSecret, func(f informers.SharedInformerFactory) error {
			_, err := f.Core().V1().Secrets().TypedInformer().AddTypedEventHandler(configHandler[*corev1.Secret](ctx, c, plan.TypeSecret), handlerOpts)
			return err
		}, func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Core().V1().Secrets().Informer()
		}); err != nil {
			return err
		}
	}
	if c.opts.SkipNamespaceObjects {
		return nil
	}
	for _, f := range factories {
		if _, err := f.Core().V1().Namespaces().TypedInformer().AddTypedEventHandler(namespaceHandler(ctx, c), handlerOpts); err != nil {
			return err
		}
	}
	nsInformers := factories.group(func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
		return f.Core().V1().Namespaces().Informer()
	})
	c.view.namespaces = nsInformers.GetIndexer()
	c.cachesSynced = append(c.cachesSynced, nsInformers.HasSynced)
	c.informers = append(c.informers, nsInformers)
	return nil
}

// registerGauges exposes how many objects each of c's informers caches, the
// rollouts held, by reason, and the rollouts in flight.
func registerGauges(reg *metrics.Registry, c *Controller) {
	reg.NewGaugeVecFunc("reroll_cached_objects", "Objects in the informer caches, by kind.", []string{"kind"},
		func(emit func(value float64, labelValues ...string)) {
			for _, typ := range []plan.ConfigType{plan.TypeConfigMap, plan.TypeSecret} {
				if store, ok := c.view.configs[typ]; ok {
					emit(float64(len(store.List())), string(typ))
				}
			}
			for _, a := range c.view.kinds.list() {
				emit(float64(len(a.informer().GetStore().ListKeys())), a.groupKind())
			}
		})
	reg.NewGaugeVecFunc("reroll_rollouts_held", "Workloads whose planned roll is held, by reason.", []string{"reason"},
		func(emit func(value float64, labelValues ...string)) {
			counts := c.memory.holds.counts()
			for _, r := range plan.HoldReasons() {
				emit(float64(counts[r]), string(r))
			}
		})
	reg.NewGaugeVecFunc("reroll_rollouts_inflight", "Opted-in workloads whose rollout has not completed, whoever started it.", nil,
		func(emit func(value float64, labelValues ...string)) {
			emit(float64(c.memory.slots.inflight.count()))
		})
	reg.NewGaugeVecFunc("reroll_rollouts_baking", "Workloads reroll rolled whose rollout completed and has not yet baked (--bake-time).", nil,
		func(emit func(value float64, labelValues ...string)) {
			n := 0
			c.memory.judged.each(func(_ workloadKey, s plan.RolloutState) {
				if s == plan.RolloutBaking {
					n++
				}
			})
			emit(float64(n))
		})
	reg.NewGaugeVecFunc("reroll_pod_watches", "Namespaces whose pods reroll watches: those with a workload whose bake is not over (--bake-time).", nil,
		func(emit func(value float64, labelValues ...string)) {
			emit(float64(c.pods.watching()))
		})
}

// newWorkqueue returns the controller's rate-limited, delaying workqueue
// with the priorityQueue store: keys for which isUrgent holds go first.
func newWorkqueue(clk clock.WithTicker, reg *metrics.Registry, isUrgent func(workloadKey) bool) workqueue.TypedRateLimitingInterface[workloadKey] {
	const name = "reroll"
	base := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[workloadKey]{
		Name: name, Clock: clk, MetricsProvider: reg.WorkqueueMetricsProvider(), Queue: newPriorityQueue(isUrgent),
	})
	delaying := workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[workloadKey]{
		Name: name, Clock: clk, MetricsProvider: reg.WorkqueueMetricsProvider(), Queue: base,
	})
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[workloadKey](retryBaseDelay, retryMaxDelay),
		workqueue.TypedRateLimitingQueueConfig[workloadKey]{Name: name, Clock: clk, DelayingQueue: delaying},
	)
}
