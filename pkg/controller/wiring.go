package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
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

// NewController returns a Controller that watches workloads, ConfigMaps
// and Secrets through factories, which must come from NewInformerFactories
// with the same opts and must be started after this call.
func NewController(ctx context.Context, client kubernetes.Interface, factories InformerFactories, recorder events.EventRecorder, opts Options) (*Controller, error) {
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
	nsSelector, err := labels.Parse(opts.NamespaceSelector)
	if err != nil {
		return nil, fmt.Errorf("namespace selector: %w", err)
	}
	changes := newChangeTracker()
	c := &Controller{
		queue:    newWorkqueue(opts.Clock, reg, changes.urgent),
		opts:     opts,
		client:   client,
		metrics:  newControllerMetrics(reg),
		adapters: map[string]workloadAdapter{},
		inputs: inputBuilder{
			hashKey: opts.HashKey, rollOnAdopt: opts.RollOnAdopt,
			optIn:        plan.OptInSettings{AutoAll: opts.AutoAll, Reloader: opts.ReloaderAnnotations, IgnoreTypes: opts.IgnoreConfigTypes},
			rollOnDelete: opts.RollOnDelete,
		},
		namespaceSelector: nsSelector,
		recorder:          recorder,
		changes:           changes,
		syncStarts:        newKeyedMemory[time.Time](),
		writes:            ownWrites{from: newKeyedMemory[string]()},
		lastDigests:       newKeyedMemory[map[plan.ConfigRef]map[string]string](),
		dryRunStates:      newKeyedMemory[string](),
		holds:             newHoldBook(),
		bursts:            newBurstTracker(opts.Clock),
		flaps:             newFlapBreaker(opts.Clock, opts.MaxRollsPerWorkload),
		consumerFacts:     newConsumerFactsMemo(),
	}
	c.slots = rollSlots{inflight: newInflightSet(), pacer: newPacer(opts.Clock, opts.MaxRolloutsPerSecond),
		maxInflight: opts.MaxInflightRollouts, qps: opts.MaxRolloutsPerSecond,
		wakeHeld: func() { c.wake(c.holds.heldFor(plan.HoldInflight)) }}
	c.pending = c.newPendingStore(client)
	c.csi = &csiWatch{}
	c.inputs.providerClasses = c.providerClass
	c.syncHandler = c.syncWorkload
	if err := c.watchBuiltinKinds(ctx, client, factories); err != nil {
		return nil, err
	}
	if err := c.watchConfig(ctx, factories); err != nil {
		return nil, err
	}
	registerCacheGauge(reg, c)
	registerPolicyGauges(reg, c)
	return c, nil
}

// newPendingStore returns the store of the changes whose baselines the
// change tracker keeps (pendingstore.go), wired to it and to the metrics.
func (c *Controller) newPendingStore(client kubernetes.Interface) *pendingStore {
	s := newPendingStore(client, c.opts.ControllerNamespace, c.opts.PendingChangesSecret, c.opts.FieldManager)
	s.mayWrite, s.stillPending = c.opts.MayWrite, c.changes.waitsOn
	s.writes = c.metrics.pendingWrites.WithLabelValues().Inc
	return s
}

// watchBuiltinKinds registers the built-in workload kinds of opts.
func (c *Controller) watchBuiltinKinds(ctx context.Context, client kubernetes.Interface, factories InformerFactories) error {
	resources := c.opts.BuiltinResources
	if resources == nil {
		resources = BuiltinResources()
	}
	for _, name := range resources {
		a, err := builtinAdapter(name, client, factories)
		if err != nil {
			return err
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

// watchConfig registers the ConfigMap, Secret and Namespace informers.
func (c *Controller) watchConfig(ctx context.Context, factories InformerFactories) error {
	logger := klog.FromContext(ctx)
	handlerOpts := cache.HandlerOptions{Logger: &logger}
	c.inputs.configs = map[plan.ConfigType]configStore{}
	// An ignored type (--resources-to-ignore) gets no informer: nothing of
	// it is watched or cached, and no workload consumes it.
	if !slices.Contains(c.opts.IgnoreConfigTypes, plan.TypeConfigMap) {
		for _, f := range factories {
			inf := f.Core().V1().ConfigMaps().TypedInformer()
			if _, err := inf.AddTypedEventHandler(configHandler[*corev1.ConfigMap](ctx, c, plan.TypeConfigMap), handlerOpts); err != nil {
				return err
			}
		}
		c.configMapsInformer = factories.group(func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Core().V1().ConfigMaps().Informer()
		})
		c.watchedConfig(plan.TypeConfigMap, c.configMapsInformer)
	}
	if !slices.Contains(c.opts.IgnoreConfigTypes, plan.TypeSecret) {
		for _, f := range factories {
			inf := f.Core().V1().Secrets().TypedInformer()
			if _, err := inf.AddTypedEventHandler(configHandler[*corev1.Secret](ctx, c, plan.TypeSecret), handlerOpts); err != nil {
				return err
			}
		}
		c.secretsInformer = factories.group(func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Core().V1().Secrets().Informer()
		})
		c.watchedConfig(plan.TypeSecret, c.secretsInformer)
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
	c.namespaces = nsInformers.GetIndexer()
	c.cachesSynced = append(c.cachesSynced, nsInformers.HasSynced)
	c.informers = append(c.informers, nsInformers)
	return nil
}

// watchedConfig records the informers of a watched config type: the sync
// reads them, and readiness and health wait on them.
func (c *Controller) watchedConfig(t plan.ConfigType, g informerGroup) {
	c.inputs.configs[t] = g.GetIndexer()
	c.cachesSynced = append(c.cachesSynced, g.HasSynced)
	c.informers = append(c.informers, g)
}

// registerCacheGauge exposes how many objects each of c's informers caches.
func registerCacheGauge(reg *metrics.Registry, c *Controller) {
	reg.NewGaugeVecFunc("reroll_cached_objects", "Objects in the informer caches, by kind.", []string{"kind"},
		func(emit func(value float64, labelValues ...string)) {
			for typ, inf := range map[plan.ConfigType]informerGroup{plan.TypeConfigMap: c.configMapsInformer, plan.TypeSecret: c.secretsInformer} {
				if inf != nil {
					emit(float64(len(inf.GetStore().ListKeys())), string(typ))
				}
			}
			for _, a := range c.adapterList() {
				emit(float64(len(a.informer().GetStore().ListKeys())), a.groupKind())
			}
		})
}

// registerPolicyGauges exposes the rollouts held, by reason, and the
// rollouts in flight.
func registerPolicyGauges(reg *metrics.Registry, c *Controller) {
	reg.NewGaugeVecFunc("reroll_rollouts_held", "Workloads whose planned roll is held, by reason.", []string{"reason"},
		func(emit func(value float64, labelValues ...string)) {
			counts := c.holds.counts()
			for _, r := range plan.HoldReasons() {
				emit(float64(counts[r]), string(r))
			}
		})
	reg.NewGaugeVecFunc("reroll_rollouts_inflight", "Opted-in workloads whose rollout has not completed, whoever started it.", nil,
		func(emit func(value float64, labelValues ...string)) {
			emit(float64(c.slots.inflight.count()))
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

// wake syncs keys at once.
func (c *Controller) wake(keys []workloadKey) {
	for _, k := range keys {
		c.queue.Add(k)
	}
}
