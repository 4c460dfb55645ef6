// Package controller is reroll's controller: it watches the ConfigMaps and
// Secrets that workloads consume and rolls each affected workload once when
// the content it consumes changes.
//
// Data flows one way: an informer event becomes a workload key in a
// rate-limited queue (handlers.go); a worker (run.go) syncs the key
// (sync.go: plan, judge, apply, report) by reading current state from the
// informers' caches, and makes at most one write (a patch of reroll's
// annotations). The decisions are pkg/plan's pure functions: this package
// gathers their inputs (input.go, gather.go), asks, and carries out the
// answer. The caches hold digests of ConfigMap and Secret values, never the
// values (cache.go). NewController (wiring.go) puts it together.
//
// Its files depend on each other one way too, lowest layer first: options,
// the cache and the workload kinds; the per-workload memories (burst.go,
// changes.go, limits.go, inflight.go, memory.go); the Controller itself;
// then the steps of a sync and the handlers that start them. `make lint`
// fails on any cycle, and `cd hack/tools && go run ./cmd/filedeps -graph
// -dir=$PWD/../.. ./pkg/controller` prints the layers.
package controller

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"

	"github.com/reroll/reroll/pkg/plan"
)

// Controller rolls workloads whose consumed ConfigMap and Secret content
// changed.
type Controller struct {
	opts Options
	// client re-creates Jobs and keeps their re-creations in Secrets; every
	// other write goes through a workload adapter.
	client kubernetes.Interface

	// adapters are the workload kinds watched, by group kind. Custom kinds
	// are added and removed while running, hence the lock.
	adaptersMu sync.RWMutex
	adapters   map[string]workloadAdapter
	// csi is the Secrets Store CSI driver's statuses' informer, while it
	// runs (csi.go).
	csi *csiWatch
	// inputs builds the inputs of the plan and of the rules from the
	// caches, reading the digested config objects through the listers.
	inputs             inputBuilder
	configMapsInformer informerGroup
	secretsInformer    informerGroup
	// namespaces holds the Namespaces' labels, for the namespace selector,
	// and their reroll.dev annotations; empty when they are not read
	// (Options.SkipNamespaceObjects).
	namespaces indexerGroup
	// namespaceSelector is Options.NamespaceSelector, parsed.
	namespaceSelector labels.Selector
	// cachesSynced reports whether every informer has synced; workers start
	// only then, so a sync never mistakes a not-yet-listed object for a
	// missing one.
	cachesSynced []cache.InformerSynced
	// informers are checked for health.
	informers []informerGroup

	// queue holds workload keys, never objects.
	queue    workqueue.TypedRateLimitingInterface[workloadKey]
	recorder events.EventRecorder
	metrics  *controllerMetrics

	// What the controller remembers of workloads between syncs (memory.go):
	// when each running sync started, for health checks; reroll's own
	// writes not yet in the cache; the digests each workload read at its
	// last sync, so Rolled Events can name changed keys; under --dry-run,
	// the consumed state reroll would have written; and the holds.
	syncStarts   *keyedMemory[time.Time]
	writes       ownWrites
	lastDigests  *keyedMemory[map[plan.ConfigRef]map[string]string]
	dryRunStates *keyedMemory[string]
	holds        holdBook
	// bursts holds each workload's pending burst of config changes, so a
	// sync queued early by anything else cannot cut the burst short.
	bursts *burstTracker
	// changes holds each workload's pending consumed change: it makes the
	// workload urgent in the queue, and keeps a baseline for one not
	// adopted yet (changes.go).
	changes *changeTracker
	// pending writes down the changes whose baselines the change tracker
	// keeps for workloads not adopted yet, so a crash keeps them too
	// (pendingstore.go).
	pending *pendingStore
	// flaps remembers the rolls of each workload, for the flap breaker;
	// slots are the in-flight places and pacing slots rolls claim
	// (limits.go, inflight.go).
	flaps *flapBreaker
	slots rollSlots
	// consumerFacts remembers the facts of the consumers of the changes
	// judged last, so a fan-out of one change does not read every consumer
	// in every sync (factsmemo.go).
	consumerFacts *consumerFactsMemo

	// syncHandler syncs one key; a field so tests can replace it.
	syncHandler func(ctx context.Context, key workloadKey) error
}

// namespaceSelected reports whether workloads in namespace may be synced:
// it is not ignored, and its labels match the namespace selector. A
// Namespace that is not cached (yet) is not selected.
func (c *Controller) namespaceSelected(namespace string) bool {
	if slices.Contains(c.opts.IgnoreNamespaces, namespace) {
		return false
	}
	if c.namespaceSelector.Empty() {
		return true
	}
	ns, ok := c.namespace(namespace)
	return ok && c.namespaceSelector.Matches(labels.Set(ns.Labels))
}

// namespace returns the cached Namespace name.
func (c *Controller) namespace(name string) (*corev1.Namespace, bool) {
	obj, _, _ := c.namespaces.GetByKey(name)
	ns, ok := obj.(*corev1.Namespace)
	return ns, ok
}

// adapterFor returns the adapter of the watched workload kind groupKind.
func (c *Controller) adapterFor(groupKind string) (workloadAdapter, bool) {
	c.adaptersMu.RLock()
	defer c.adaptersMu.RUnlock()
	a, ok := c.adapters[groupKind]
	return a, ok
}

// adapterList returns the adapters of the watched workload kinds.
func (c *Controller) adapterList() []workloadAdapter {
	c.adaptersMu.RLock()
	defer c.adaptersMu.RUnlock()
	return slices.Collect(maps.Values(c.adapters))
}

// forget drops what the controller remembers of a workload that is gone or
// no longer opted in.
func (c *Controller) forget(key workloadKey) {
	c.writes.from.forget(key)
	c.lastDigests.forget(key)
	c.dryRunStates.forget(key)
	c.holds.forget(key)
	c.bursts.forget(key)
	c.changes.forget(key)
	c.pending.settled()
	c.slots.pacer.forget(key)
	c.flaps.forget(key)
}
