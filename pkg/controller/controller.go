// Package controller is reroll's controller: it watches the ConfigMaps and
// Secrets that workloads consume and rolls each affected workload once when
// the content it consumes changes.
//
// Data flows one way: an informer event becomes a workload key in a
// rate-limited queue; a worker syncs the key by reading current state from
// the informers' caches, and makes at most one write (a patch of two
// annotations). The caches hold digests of ConfigMap and Secret values,
// never the values.
package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/reroll/reroll/pkg/metrics"
)

// Event reasons reroll reports on workloads, besides the problem reasons of
// calculateState.
const (
	// ReasonRolled: consumed content changed and the workload was rolled.
	ReasonRolled = "Rolled"
	// ReasonRebaselined: the recorded state could not be compared (another
	// hash key, or unreadable); a new baseline was recorded without rolling.
	ReasonRebaselined = "Rebaselined"
	// ReasonDryRun: what reroll would have written under --dry-run.
	ReasonDryRun = "DryRun"
	// ReasonTooManyReferences: the workload consumes more than MaxReferences
	// objects and is left alone.
	ReasonTooManyReferences = "TooManyReferences"
	// ReasonPatchRejected: the API server rejected reroll's patch as invalid;
	// retrying the same patch cannot help.
	ReasonPatchRejected = "PatchRejected"
	// ReasonInvalidTemplate: a custom workload has no usable pod template at
	// its kind's template path.
	ReasonInvalidTemplate = "InvalidTemplate"
)

// consumersIndex indexes workloads by the ConfigMaps and Secrets they
// consume, so a config event finds its consumers without a scan.
const consumersIndex = "reroll.dev/consumers"

// Retry schedule of a failing key: 5ms, 10ms, 20ms, ... doubling up to 5
// minutes (the 17th retry), per key. Keys are never dropped after some
// number of retries: a dropped key is a missed roll, and the backoff already
// keeps a persistent failure from running hot. There is no overall bucket on
// top, as client-go's default controller limiter has: every retry that
// writes goes through the client's own QPS limit (--kube-api-qps), which
// already bounds what many failing keys can send together.
const (
	retryBaseDelay = 5 * time.Millisecond
	retryMaxDelay  = 5 * time.Minute
)

// syncTimeout bounds one sync. It is shorter than the usual 30s termination
// grace period, so in-flight syncs finish before the kubelet kills us.
const syncTimeout = 20 * time.Second

// Options configure a Controller.
type Options struct {
	// HashKey is the key of every hash reroll writes.
	HashKey HashKey
	// FieldManager names reroll in the managedFields of what it writes.
	FieldManager string
	// Debounce delays syncs caused by config changes, so that a burst of
	// changes within it rolls a workload once. Zero syncs at once.
	Debounce time.Duration
	// AutoAll treats every workload as annotated reroll.dev/auto: "true".
	AutoAll bool
	// RollOnAdopt rolls a workload the first time it is seen, instead of
	// recording a baseline.
	RollOnAdopt bool
	// DryRun computes, logs and reports what would be written, and writes
	// nothing but Events.
	DryRun bool
	// Clock drives the queue's delays; nil means the real clock. Tests
	// inject a fake one to step through the debounce.
	Clock clock.WithTicker
	// Metrics is where the controller and its queue register their
	// metrics; nil keeps them private.
	Metrics *metrics.Registry
	// Kinds are the built-in workload kinds watched (see BuiltinKinds);
	// nil means all of them.
	Kinds []string
	// ResyncPeriod is the workload informers' resync period, for the
	// informers of custom kinds (NewInformerFactory sets the built-ins').
	ResyncPeriod time.Duration
}

// Controller rolls workloads whose consumed ConfigMap and Secret content
// changed.
type Controller struct {
	opts Options

	// kinds are the workload kinds watched, by Kind. Custom kinds are added
	// and removed while running, hence the lock.
	kindsMu sync.RWMutex
	kinds   map[string]workloadKind
	// configMaps and secrets read the digested config objects.
	configMaps         corelisters.ConfigMapLister
	secrets            corelisters.SecretLister
	configMapsInformer cache.SharedIndexInformer
	secretsInformer    cache.SharedIndexInformer
	// cachesSynced reports whether every informer has synced; workers start
	// only then, so a sync never mistakes a not-yet-listed object for a
	// missing one.
	cachesSynced []cache.InformerSynced

	// queue holds workload keys, never objects.
	queue    workqueue.TypedRateLimitingInterface[workloadKey]
	recorder events.EventRecorder
	metrics  *controllerMetrics

	// informers are checked for health.
	informers []cache.SharedIndexInformer

	// mu guards the maps below. lastDigests and dryRunStates only improve
	// messages and dry runs; losing them (a restart) loses no correctness.
	mu sync.Mutex
	// inFlight holds when each running sync started, for health checks.
	inFlight map[workloadKey]time.Time
	// patchedFrom holds, per workload reroll patched, the resourceVersion
	// it patched, until the cache shows a newer one (cacheBehindOwnWrite).
	patchedFrom map[workloadKey]string
	// lastDigests remembers, per workload, the cached digests of each object
	// it consumed at its last sync, so Rolled Events can name changed keys.
	// The maps are shared with the cache and never written.
	lastDigests map[workloadKey]map[configRef]map[string]string
	// dryRunStates stands in for the consumed annotation under --dry-run, so
	// that a dry run reports rolls after its first (would-be) baseline.
	dryRunStates map[workloadKey]string

	// bursts holds each workload's pending burst of config changes, so a
	// sync queued early by anything else cannot cut the burst short.
	bursts *burstTracker

	// syncHandler syncs one key; a field so tests can replace it.
	syncHandler func(ctx context.Context, key workloadKey) error
}

// NewController returns a Controller that watches workloads, ConfigMaps
// and Secrets through factory, which must come from NewInformerFactory and
// must be started after this call.
func NewController(ctx context.Context, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder events.EventRecorder, opts Options) (*Controller, error) {
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
	c := &Controller{
		opts:       opts,
		metrics:    newControllerMetrics(reg),
		kinds:      map[string]workloadKind{},
		configMaps: factory.Core().V1().ConfigMaps().Lister(),
		secrets:    factory.Core().V1().Secrets().Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[workloadKey](retryBaseDelay, retryMaxDelay),
			workqueue.TypedRateLimitingQueueConfig[workloadKey]{Name: "reroll", Clock: opts.Clock, MetricsProvider: reg.WorkqueueMetricsProvider()},
		),
		recorder:     recorder,
		inFlight:     map[workloadKey]time.Time{},
		patchedFrom:  map[workloadKey]string{},
		lastDigests:  map[workloadKey]map[configRef]map[string]string{},
		dryRunStates: map[workloadKey]string{},
		bursts:       newBurstTracker(opts.Clock, opts.Debounce),
	}
	c.syncHandler = c.syncWorkload

	logger := klog.FromContext(ctx)
	handlerOpts := cache.HandlerOptions{Logger: &logger}
	kinds := opts.Kinds
	if kinds == nil {
		kinds = BuiltinKinds()
	}
	for _, name := range kinds {
		k, err := builtinKind(name, client, factory)
		if err != nil {
			return nil, err
		}
		if err := c.addWorkloadKind(ctx, k, handlerOpts); err != nil {
			return nil, err
		}
		// Built-in kinds gate readiness and health; custom kinds, which come
		// and go with their CRDs, do not.
		c.cachesSynced = append(c.cachesSynced, k.informer().HasSynced)
		c.informers = append(c.informers, k.informer())
	}
	cmInformer := factory.Core().V1().ConfigMaps().TypedInformer()
	if _, err := cmInformer.AddTypedEventHandler(configHandler[*corev1.ConfigMap](ctx, c, kindConfigMap), handlerOpts); err != nil {
		return nil, err
	}
	secretInformer := factory.Core().V1().Secrets().TypedInformer()
	if _, err := secretInformer.AddTypedEventHandler(configHandler[*corev1.Secret](ctx, c, kindSecret), handlerOpts); err != nil {
		return nil, err
	}
	c.configMapsInformer, c.secretsInformer = cmInformer, secretInformer
	c.cachesSynced = append(c.cachesSynced, cmInformer.HasSynced, secretInformer.HasSynced)
	c.informers = append(c.informers, cmInformer, secretInformer)
	c.registerCacheGauge(reg)
	return c, nil
}

// addWorkloadKind indexes a workload kind by what it consumes and enqueues
// its workloads on their own events.
func (c *Controller) addWorkloadKind(ctx context.Context, k workloadKind, handlerOpts cache.HandlerOptions) error {
	inf := k.informer()
	if err := inf.AddIndexers(cache.Indexers{consumersIndex: c.consumersIndexFunc(k)}); err != nil {
		return fmt.Errorf("indexing %s: %w", k.kind(), err)
	}
	_, err := inf.AddEventHandlerWithOptions(c.workloadHandler(ctx, k), handlerOpts)
	if err != nil {
		return fmt.Errorf("watching %s: %w", k.kind(), err)
	}
	c.kindsMu.Lock()
	defer c.kindsMu.Unlock()
	c.kinds[k.kind()] = k
	return nil
}

// removeWorkloadKind stops syncing a kind whose informer is going away.
func (c *Controller) removeWorkloadKind(k workloadKind) {
	c.kindsMu.Lock()
	defer c.kindsMu.Unlock()
	delete(c.kinds, k.kind())
}

// kind returns the watched workload kind named name.
func (c *Controller) kind(name string) (workloadKind, bool) {
	c.kindsMu.RLock()
	defer c.kindsMu.RUnlock()
	k, ok := c.kinds[name]
	return k, ok
}

// kindList returns the watched workload kinds.
func (c *Controller) kindList() []workloadKind {
	c.kindsMu.RLock()
	defer c.kindsMu.RUnlock()
	return slices.Collect(maps.Values(c.kinds))
}

// workloadHandler returns the event handler of a workload kind: it enqueues
// a workload when it appears or goes (at once), or changes in a way a sync
// could act on (after the debounce delay).
func (c *Controller) workloadHandler(ctx context.Context, k workloadKind) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			c.enqueueWorkload(ctx, k, obj, 0)
		},
		UpdateFunc: func(oldObj, newObj any) {
			// Debounced like config changes: an update (often reroll's own
			// write) must not cut a burst of config changes in two.
			if workloadChanged(oldObj, newObj) {
				c.enqueueWorkload(ctx, k, newObj, c.opts.Debounce)
			}
		},
		DeleteFunc: func(obj any) {
			// The sync finds it gone and forgets it.
			if name, err := cache.DeletionHandlingObjectToName(obj); err == nil {
				c.queue.Add(workloadKey{kind: k.kind(), name: name})
			}
		},
	}
}

// consumersIndexFunc indexes a workload under every ConfigMap and Secret it
// consumes (see configIndexValue). Workloads that are not opted in are not
// indexed, so config events never reach them.
func (c *Controller) consumersIndexFunc(k workloadKind) cache.IndexFunc {
	return func(obj any) ([]string, error) {
		w, err := viewWorkload(k, obj)
		if err != nil {
			return nil, err
		}
		// A malformed annotation still indexes what parsed: the sync reports
		// the problem, and fixing it must not depend on another event.
		o, _ := parseOptIn(w.meta.GetAnnotations(), c.opts.AutoAll)
		if !o.enabled() {
			return nil, nil
		}
		consumed := calculateConsumption(w.spec, o)
		values := make([]string, len(consumed))
		for i, u := range consumed {
			values[i] = configIndexValue(w.meta.GetNamespace(), u.ref)
		}
		return values, nil
	}
}

// configIndexValue is the consumersIndex value of a config object.
func configIndexValue(namespace string, ref configRef) string {
	return string(ref.kind) + "/" + namespace + "/" + ref.name
}

// wantsSync reports whether a workload is opted in, or carries opt-in
// annotations so malformed that the user must be told.
func (c *Controller) wantsSync(meta metav1.Object) bool {
	o, err := parseOptIn(meta.GetAnnotations(), c.opts.AutoAll)
	return err != nil || o.enabled()
}

// enqueueWorkload enqueues a workload, after delay, if it wants syncing.
func (c *Controller) enqueueWorkload(ctx context.Context, k workloadKind, obj any, delay time.Duration) {
	w, err := viewWorkload(k, obj)
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Unexpected object in workload informer", "kind", k.kind())
		return
	}
	if c.wantsSync(w.meta) {
		c.enqueue(workloadKey{kind: k.kind(), name: cache.MetaObjectToName(w.meta)}, delay)
	}
}

// enqueue adds a key after delay; the delaying queue keeps the earliest due
// time of a key, so repeated calls within delay sync it once.
func (c *Controller) enqueue(key workloadKey, delay time.Duration) {
	if delay > 0 {
		c.queue.AddAfter(key, delay)
	} else {
		c.queue.Add(key)
	}
}

// workloadChanged filters workload updates down to those a sync could act
// on: a new generation (the spec changed), changed annotations, or a resync
// (same resourceVersion), which re-checks the workload on purpose. Status
// updates, the bulk of Deployment traffic during rollouts, are dropped.
func workloadChanged(oldObj, newObj any) bool {
	o, err1 := metaOf(oldObj)
	n, err2 := metaOf(newObj)
	if err1 != nil || err2 != nil {
		return true
	}
	return o.GetResourceVersion() == n.GetResourceVersion() ||
		o.GetGeneration() != n.GetGeneration() ||
		!maps.Equal(o.GetAnnotations(), n.GetAnnotations())
}

// metaOf returns an object's metadata.
func metaOf(obj any) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

// configObject is a ConfigMap or a Secret.
type configObject interface {
	*corev1.ConfigMap | *corev1.Secret
	workloadObject
}

// configHandler returns the event handler of ConfigMaps or Secrets: it
// enqueues the workloads consuming an object when the object's content or
// ignore annotation changes, after the debounce delay.
func configHandler[T configObject](ctx context.Context, c *Controller, kind configKind) cache.TypedResourceEventHandler[T] {
	return cache.TypedResourceEventHandlerDetailedFuncs[T]{
		AddFunc: func(obj T, isInInitialList bool) {
			// The initial list needs nothing: every workload is synced on its
			// own initial add. Later adds are (re-)creations that can unblock
			// a workload or change what it consumes.
			if !isInInitialList {
				c.enqueueConsumers(ctx, obj.GetNamespace(), configRef{kind, obj.GetName()})
			}
		},
		UpdateFunc: func(oldObj, newObj T) {
			switch classifyConfigUpdate(oldObj, newObj) {
			case configUnchanged:
			case configIgnoredChange:
				c.metrics.skipped.WithLabelValues(skipIgnored).Inc()
			default:
				c.enqueueConsumers(ctx, newObj.GetNamespace(), configRef{kind, newObj.GetName()})
			}
		},
		DeleteFunc: func(d cache.DeletedObject[T]) {
			name := d.GetObjectName()
			c.enqueueConsumers(ctx, name.Namespace, configRef{kind, name.Name})
		},
	}
}

// configUpdate classifies an update of a ConfigMap or Secret.
type configUpdate int

const (
	// configUnchanged: labels, other metadata or a resync; cannot roll.
	configUnchanged configUpdate = iota
	// configIgnoredChange: content changed on an object that stays ignored.
	configIgnoredChange
	// configChanged: content or the ignore annotation changed.
	configChanged
)

// classifyConfigUpdate says whether an update of a ConfigMap or Secret can
// matter to its consumers.
func classifyConfigUpdate(oldObj, newObj any) configUpdate {
	o, err1 := metaOf(oldObj)
	n, err2 := metaOf(newObj)
	if err1 != nil || err2 != nil {
		return configChanged
	}
	oldIgnore, newIgnore := o.GetAnnotations()[AnnotationIgnore], n.GetAnnotations()[AnnotationIgnore]
	switch {
	case oldIgnore != newIgnore:
		return configChanged
	case maps.Equal(cachedDigests(oldObj), cachedDigests(newObj)):
		return configUnchanged
	case newIgnore == "true":
		return configIgnoredChange
	}
	return configChanged
}

// enqueueConsumers enqueues every workload that consumes ref, after the
// debounce delay, and marks the change in each consumer's pending burst:
// the queue alone keeps the earliest due time of a key, which an older
// entry can make too early (see burst.go).
func (c *Controller) enqueueConsumers(ctx context.Context, namespace string, ref configRef) {
	value := configIndexValue(namespace, ref)
	for _, k := range c.kindList() {
		objs, err := k.informer().GetIndexer().ByIndex(consumersIndex, value)
		if err != nil {
			utilruntime.HandleErrorWithContext(ctx, err, "Looking up consumers", "object", ref, "namespace", namespace)
			continue
		}
		for _, obj := range objs {
			name, err := cache.ObjectToName(obj)
			if err != nil {
				continue
			}
			key := workloadKey{kind: k.kind(), name: name}
			c.bursts.changed(key)
			c.enqueue(key, c.opts.Debounce)
		}
	}
}

// Run waits for the caches to sync, then runs workers until ctx is done,
// and returns once the queue is drained and every worker has exited.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer utilruntime.HandleCrashWithContext(ctx)
	logger := klog.FromContext(ctx)
	logger.Info("Starting reroll controller", "workers", workers, "debounce", c.opts.Debounce, "dryRun", c.opts.DryRun)

	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.cachesSynced...) {
		c.queue.ShutDown()
		return fmt.Errorf("caches did not sync: %w", context.Cause(ctx))
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			wait.UntilWithContext(ctx, c.runWorker, time.Second)
		})
	}
	<-ctx.Done()
	logger.Info("Stopping workers: finishing in-flight syncs")
	c.queue.ShutDownWithDrain()
	wg.Wait()
	logger.Info("Workers stopped")
	return nil
}

// runWorker processes keys until the queue shuts down.
func (c *Controller) runWorker(ctx context.Context) {
	for c.processNextWorkItem(ctx) {
	}
}

// processNextWorkItem syncs one key and reports whether to go on.
//
// Once ctx is done no new sync starts (the queue still hands out what it
// holds while draining; the next leader or start syncs everything anyway),
// but a sync already running finishes: it runs under its own deadline, not
// under ctx, so a shutdown never cuts a write in half.
func (c *Controller) processNextWorkItem(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	if ctx.Err() != nil {
		return false
	}
	start := time.Now()
	c.mu.Lock()
	c.inFlight[key] = start
	c.mu.Unlock()
	syncCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), syncTimeout)
	err := c.syncHandler(syncCtx, key)
	cancel()
	c.metrics.observeSync(key, start, err)
	c.mu.Lock()
	delete(c.inFlight, key)
	c.mu.Unlock()
	klog.FromContext(ctx).V(4).Info("Synced", "workload", key, "duration", time.Since(start), "err", err)
	c.handleErr(ctx, err, key)
	return true
}

// HasSynced reports whether every informer has synced, for readiness.
func (c *Controller) HasSynced() bool {
	for _, synced := range c.cachesSynced {
		if !synced() {
			return false
		}
	}
	return true
}

// Healthy returns an error when the controller is wedged: an informer has
// stopped, or a sync has run for twice its deadline.
func (c *Controller) Healthy() error {
	for _, inf := range c.informers {
		if inf.IsStopped() {
			return errors.New("an informer has stopped")
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, start := range c.inFlight {
		if d := time.Since(start); d > 2*syncTimeout {
			return fmt.Errorf("sync of %s has run for %v", key, d.Round(time.Second))
		}
	}
	return nil
}

// handleErr forgets a key's failures on success and retries it with backoff
// on error (see retryBaseDelay for the schedule).
func (c *Controller) handleErr(ctx context.Context, err error, key workloadKey) {
	if err == nil {
		c.queue.Forget(key)
		return
	}
	logger := klog.FromContext(ctx)
	if apierrors.IsConflict(err) {
		// The cache was behind the server: the next sync reads newer state.
		logger.V(2).Info("Conflict, retrying", "workload", key, "retries", c.queue.NumRequeues(key))
	} else {
		utilruntime.HandleErrorWithContext(ctx, err, "Sync failed, retrying", "workload", key, "retries", c.queue.NumRequeues(key))
	}
	c.queue.AddRateLimited(key)
}
