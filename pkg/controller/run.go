package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

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

// outageRetryDelay is when a sync that found the API server unreachable is
// tried again; the client already waited for it for up to syncTimeout
// (kubeclient.WaitForServer), so this only paces the next wait.
const outageRetryDelay = time.Second

// syncTimeout bounds one sync. It is shorter than the usual 30s termination
// grace period, so in-flight syncs finish before the kubelet kills us.
const syncTimeout = 20 * time.Second

// Run waits for the caches to sync, then runs workers until ctx is done,
// and returns once the queue is drained and every worker has exited. It
// also runs, for as long, the side systems that only the leader runs: the
// custom kinds' and the CSI driver's discovery loops, the adapters'
// background work, the pending store's writer, and it publishes the
// decision settings for the kubectl plugin.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer utilruntime.HandleCrashWithContext(ctx)
	logger := klog.FromContext(ctx)
	logger.Info("Starting reroll controller", "workers", workers, "debounce", c.opts.Debounce, "dryRun", c.opts.DryRun)

	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.cachesSynced...) {
		c.queue.ShutDown()
		return fmt.Errorf("caches did not sync: %w", context.Cause(ctx))
	}
	if err := c.resumePendingChanges(ctx); err != nil {
		c.queue.ShutDown()
		return err
	}
	c.publisher.publish(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { c.pending.run(ctx) })
	wg.Go(func() { c.customKinds.run(ctx) })
	wg.Go(func() { c.csi.run(ctx) })
	wg.Go(func() { c.pods.run(ctx) })
	for _, a := range c.view.kinds.list() {
		if b, ok := a.(backgroundAdapter); ok {
			wg.Go(func() { b.runBackground(ctx) })
		}
	}
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
	c.memory.syncStarts.set(key, start)
	syncCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), syncTimeout)
	err := c.syncHandler(syncCtx, key)
	cancel()
	c.reporter.metrics.observeSync(key, start, err)
	c.memory.syncStarts.delete(key)
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
	if key, start, ok := longestSync(c.memory.syncStarts); ok {
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
	if utilnet.IsConnectionRefused(err) {
		// The API server is out: not the workload's fault, so its backoff
		// must not grow with the outage's length, or the roll would wait
		// that long again after the server's return.
		logger.Info("API server unreachable, retrying", "workload", key, "after", outageRetryDelay, "err", err)
		c.queue.Forget(key)
		c.queue.AddAfter(key, outageRetryDelay)
		return
	}
	if apierrors.IsConflict(err) {
		// The cache was behind the server: the next sync reads newer state.
		logger.V(2).Info("Conflict, retrying", "workload", key, "retries", c.queue.NumRequeues(key))
	} else {
		utilruntime.HandleErrorWithContext(ctx, err, "Sync failed, retrying", "workload", key, "retries", c.queue.NumRequeues(key))
	}
	c.queue.AddRateLimited(key)
}
